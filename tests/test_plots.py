"""Run figures: which rows the curves keep after a resume, and that the PNGs are drawn."""

import json

from PIL import Image

from gan_jax import plots


def _write_run(workdir):
    rows = [
        {'step': 2, 'd_loss': 1.0, 'g_loss': 2.0, 'd_real_logit': 0.5, 'd_fake_logit': -0.5},
        {'step': 4, 'd_loss': 0.9, 'g_loss': 2.1, 'd_real_logit': 0.6, 'd_fake_logit': -0.6},
        {'step': 4, 'eval/FID': 50.0},
        # Interrupted after step 4, resumed from the checkpoint of step 2: step 4 again.
        {'step': 4, 'd_loss': 0.7, 'g_loss': 2.4, 'd_real_logit': 0.8, 'd_fake_logit': -0.8},
        {'step': 6, 'd_loss': 0.6, 'g_loss': 2.5, 'steps_per_sec': 3.0, 'ada_p': 0.1},
    ]
    (workdir / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    for name, metrics in (
        ('eval_4.json', {'FID': 50.0, 'IS': 2.0, 'IS_std': 0.1}),
        ('eval_4-2.json', {'FID': 45.0, 'IS': 2.2, 'IS_std': 0.1}),  # evaluate.py again.
        ('eval_10.json', {'FID': 30.0, 'IS': 3.0, 'IS_std': 0.2}),
        ('eval_6.json', {'FID': 40.0, 'IS': 2.5, 'IS_std': 0.1}),
    ):
        (workdir / name).write_text(json.dumps({'metrics': metrics, 'protocol': {}}))


def test_each_step_counts_once_the_last_row_winning(tmp_path):
    _write_run(tmp_path)
    scalars = plots.read_scalars(str(tmp_path))
    assert scalars['d_loss'] == {2: 1.0, 4: 0.7, 6: 0.6}
    assert scalars['d_fake_logit'] == {2: -0.5, 4: -0.8}
    assert 'eval/FID' not in scalars  # Metrics come from eval_*.json.
    metrics = plots.read_metrics(str(tmp_path))
    assert metrics['FID'] == {4: 45.0, 6: 40.0, 10: 30.0}
    assert metrics['IS_std'] == {4: 0.1, 6: 0.1, 10: 0.2}


def test_panels_group_losses_and_logits_and_show_each_metric(tmp_path):
    _write_run(tmp_path)
    panels = plots._panels(plots.read_scalars(str(tmp_path)), plots.read_metrics(str(tmp_path)))
    titles = [title for title, _, _ in panels]
    assert titles == ['losses', 'D logits', 'ada_p', 'FID', 'IS']  # Throughput left out.
    assert sorted(panels[0][1]) == ['d_loss', 'g_loss']
    assert panels[4][2] == {4: 0.1, 6: 0.1, 10: 0.2}  # IS drawn with its std.


def test_plot_run_writes_a_png_or_nothing(tmp_path):
    assert plots.plot_run(str(tmp_path)) is None
    _write_run(tmp_path)
    path = plots.plot_run(str(tmp_path))
    assert path == str(tmp_path / 'curves.png')
    width, height = Image.open(path).size
    assert width > 800 and height > 500  # 3 x 2 panels.


def test_truncation_curve_is_drawn(tmp_path):
    points = [(None, {'FID': 20.0, 'IS': 8.0}), (0.5, {'FID': 30.0, 'IS': 9.0})]
    out = plots.plot_truncation_curve(points, 'FID', 'IS', str(tmp_path / 'c.png'))
    assert Image.open(out).size[0] > 100
