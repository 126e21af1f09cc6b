"""reproduce.py's machinery: the plan of runs, resuming and skipping, the verdicts, the report."""

import json
import math
import os
import shutil
import subprocess

import pytest

from experiments import tables, unrolled_gan
from gan_jax import reproduction

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TABLE = tables.TABLES['pacgan_table1']


def test_plan_is_rows_times_seeds_in_their_own_folders(tmp_path):
    runs = reproduction.plan(TABLE, str(tmp_path), seeds=2, rows=['grid / PacGAN3', 'ring / GAN'])
    assert [(r.row.name, r.seed) for r in runs] == [
        ('ring / GAN', 0),
        ('ring / GAN', 1),
        ('grid / PacGAN3', 0),
        ('grid / PacGAN3', 1),
    ]
    assert runs[3].workdir == str(tmp_path / 'pacgan_table1' / 'grid-pacgan3' / 'seed1')
    argv = runs[3].argv()
    assert '--config=experiments/pacgan.py:grid' in argv
    assert '--config.train.pack=3' in argv and '--config.train.batch_size=300' in argv
    assert '--config.seed=1' in argv
    assert len(reproduction.plan(TABLE, str(tmp_path))) == 8 * TABLE.seeds


def test_unknown_row_names_the_rows():
    with pytest.raises(ValueError, match=r"\['ring / PacGAN9'\].*'ring / GAN'"):
        reproduction.plan(TABLE, '/tmp', rows=['ring / PacGAN9'])


def test_pacgan_table1_holds_the_published_numbers():
    # Lin et al. 2018, Table 1, as in the authors' repository (results/Table1.png).
    cells = {row.name: row.published for row in TABLE.rows}
    assert cells['ring / GAN']['modes-ring'] == (6.3, 0.5, 10)
    assert cells['ring / PacGAN2']['high_quality-ring'] == (0.956, 0.020, 10)
    assert cells['grid / GAN']['kl-grid'] == (0.70, 0.07, 10)
    assert cells['grid / PacGAN4']['modes-grid'] == (24.8, 0.2, 10)


def test_pacgan_tables_2_and_3_hold_the_published_numbers():
    # Lin et al. 2018, Tables 2 (10 trials) and 3 (50 trials).
    two = {row.name: row.published for row in tables.TABLES['pacgan_table2'].rows}
    assert two['DCGAN']['modes-StackedMNIST'] == (78.9, 6.46, 10)
    assert two['PacDCGAN2']['kl-StackedMNIST'] == (0.06, 0.003, 10)
    three = {row.name: row for row in tables.TABLES['pacgan_table3'].rows}
    assert three['D=1/4 G / PacDCGAN2'].published['modes-StackedMNIST'] == (484.5, 32.99, 50)
    assert three['D=1/2 G / DCGAN'].published['kl-StackedMNIST'] == (2.24, 0.15, 50)
    assert three['D=1/2 G / DCGAN'].config == 'experiments/pacgan.py:stacked_mnist_d_half_dcgan'


def _finished_run(run, steps, metrics, argv=None, config=None):
    """A run folder as launch.py leaves it at its end: its config (with the command line
    ``argv``, default the run's protocol; the resolved ``config``, default only its steps)
    and final evaluation."""
    os.makedirs(run.workdir, exist_ok=True)
    command = (argv or run.argv())[1:]  # From launch.py on, as launch.py saves it.
    saved = {'commands': [command], 'config': config or {'train': {'steps': steps}}}
    with open(os.path.join(run.workdir, 'config.json'), 'w') as f:
        json.dump(saved, f)
    with open(os.path.join(run.workdir, f'eval_{steps}.json'), 'w') as f:
        json.dump({'metrics': metrics, 'protocol': {'step': steps}}, f)


def _resolved(run, values):
    """The resolved config launch.py saves for ``run`` of an Unrolled GAN demo row (its
    preset today, the row's overrides and seed), with ``values`` ({'optim.b1': 0.8}) set."""
    path, variant = run.row.config.split(':')
    assert path == 'experiments/unrolled_gan.py'
    config = unrolled_gan.get_config(variant)
    for key, value in {**run.row.overrides, 'seed': run.seed, **values}.items():
        *parents, leaf = key.split('.')
        node = config
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    return json.loads(config.to_json_best_effort())


def test_a_table_without_published_numbers_reports_ours_over_seeds(tmp_path):
    table = tables.TABLES['unrolled_demo']._replace(figure='none')
    runs = reproduction.plan(table, str(tmp_path / 'runs'), seeds=2, rows=['plain GAN'])
    for run, modes in zip(runs, (5, 8), strict=True):
        _finished_run(run, 10, {'modes-ring': modes, 'high_quality-ring': 0.5, 'kl-ring': 0.1})
    report = reproduction.write_report(table, runs, str(tmp_path / 'out'), 'python reproduce.py')
    text = open(report).read()
    assert '| plain GAN | modes captured | not published | 6.5 ± 1.5 (2) |  |' in text
    assert '| unrolled (5 steps) |' not in text  # Neither planned nor run.
    record = json.load(open(tmp_path / 'out' / 'unrolled_demo.json'))
    cell = next(c for c in record['cells'] if c['metric'] == 'modes-ring')
    assert cell['published'] is None and 'consistent' not in cell
    # The record's JSON: a key a line, a curve on one line.
    text = open(tmp_path / 'out' / 'unrolled_demo.json').read()
    assert '\n    "modes-ring": [[10, 5]],\n' in text and '\n   "seed": 1,\n' in text


def test_the_report_keeps_finished_runs_whose_folders_are_gone(tmp_path, monkeypatch):
    table = tables.TABLES['unrolled_demo']._replace(figure='none')
    out = str(tmp_path / 'out')
    runs = reproduction.plan(table, str(tmp_path / 'runs'), seeds=2, rows=['plain GAN'])
    for run, modes in zip(runs, (5, 8), strict=True):
        _finished_run(run, 10, {'modes-ring': modes, 'high_quality-ring': 0.5, 'kl-ring': 0.1})
    reproduction.write_report(table, runs, out, 'python reproduce.py')
    shutil.rmtree(runs[0].workdir)  # The machine that ran seed 0 is gone.

    recorded = reproduction.load_recorded(table, out)
    assert sorted(recorded) == [('plain GAN', 0), ('plain GAN', 1)]
    assert recorded[('plain GAN', 0)]['series']['modes-ring'] == [[10, 5]]

    def no_launch(*args, **kwargs):
        raise AssertionError('a recorded run was launched again')

    monkeypatch.setattr(reproduction.subprocess, 'call', no_launch)
    reproduction.execute(runs[0], recorded=recorded)
    assert not os.path.exists(runs[0].workdir)

    # A report over seed 0 alone still counts both seeds, seed 1 as recorded beyond the plan.
    text = open(reproduction.write_report(table, runs[:1], out, 'python reproduce.py')).read()
    assert '1 of 1 planned runs finished (and 1 more recorded)' in text
    assert '| plain GAN | modes captured | not published | 6.5 ± 1.5 (2) |  |' in text

    # A run finished in its folder replaces its record.
    _finished_run(runs[0], 10, {'modes-ring': 7, 'high_quality-ring': 0.5, 'kl-ring': 0.1})
    text = open(reproduction.write_report(table, runs, out, 'python reproduce.py')).read()
    assert '2 of 2 planned runs finished.' in text
    assert '| plain GAN | modes captured | not published | 7.5 ± 0.5 (2) |  |' in text

    # With every folder gone the curves are drawn from the records alone.
    for run in runs:
        shutil.rmtree(run.workdir)
    os.remove(os.path.join(out, 'unrolled_demo_curves.png'))
    text = open(reproduction.write_report(table, runs, out, 'python reproduce.py')).read()
    assert '![metrics over training' in text and 'Not in the curves' not in text
    assert os.path.exists(os.path.join(out, 'unrolled_demo_curves.png'))


def test_each_run_records_the_commit_and_machine_of_its_stretches(tmp_path, monkeypatch):
    table = tables.TABLES['unrolled_demo']._replace(figure='none')
    out = str(tmp_path / 'out')
    runs = reproduction.plan(table, str(tmp_path / 'runs'), seeds=2, rows=['plain GAN'])
    metrics = {'modes-ring': 8, 'high_quality-ring': 0.5, 'kl-ring': 0.1}

    def launch(argv, **kwargs):  # launch.py finishing the run in one stretch.
        shutil.rmtree(runs[0].workdir)
        _finished_run(runs[0], 10, metrics)
        return 0

    monkeypatch.setattr(reproduction.subprocess, 'call', launch)
    reproduction.execute(runs[0])
    stretch = json.loads(open(os.path.join(runs[0].workdir, 'stretches.jsonl')).read())
    head = subprocess.run(
        ['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    assert stretch['exit'] == 0 and stretch['commit'].split('+')[0] == head
    assert stretch['machine']

    # Seed 1 ran in three stretches: one logged before stretches named them, then two machines.
    _finished_run(runs[1], 10, metrics)
    with open(os.path.join(runs[1].workdir, 'stretches.jsonl'), 'w') as f:
        for extra in (
            {},
            {'commit': 'abc1234', 'machine': 'CPU A x 2'},
            {'commit': 'abc1234', 'machine': 'CPU B x 8'},
        ):
            f.write(json.dumps({'start': 0, 'seconds': 60, 'exit': 0, **extra}) + '\n')
    text = open(reproduction.write_report(table, runs, out, 'python reproduce.py')).read()
    assert f'| plain GAN | 0 | 10 | 0 min | {stretch["commit"]} on {stretch["machine"]} |' in text
    assert (
        '| plain GAN | 1 | 10 | 3 min | not recorded; abc1234 on CPU A x 2; abc1234 on CPU B x 8 |'
        in text
    )

    # A record from before runs kept their stretches' machines says so.
    record = json.load(open(os.path.join(out, 'unrolled_demo.json')))
    del record['runs'][1]['trained_on']
    json.dump(record, open(os.path.join(out, 'unrolled_demo.json'), 'w'))
    shutil.rmtree(runs[1].workdir)
    text = open(reproduction.write_report(table, runs, out, 'python reproduce.py')).read()
    assert '| plain GAN | 1 | 10 | 3 min | not recorded |' in text


def test_a_stretch_killed_with_its_session_ends_at_its_last_log_write(tmp_path, monkeypatch):
    table = tables.TABLES['unrolled_demo']._replace(figure='none')
    out = str(tmp_path / 'out')
    runs = reproduction.plan(table, str(tmp_path / 'runs'), seeds=2, rows=['plain GAN'])
    metrics = {'modes-ring': 8, 'high_quality-ring': 0.5, 'kl-ring': 0.1}
    # Seed 0's first stretch was killed: logged at launch, never closed; launch.log last
    # written 600 s after it started.
    os.makedirs(runs[0].workdir)
    killed = {'start': 1000.0, 'commit': 'abc1234', 'machine': 'CPU A x 2'}
    with open(os.path.join(runs[0].workdir, 'stretches.jsonl'), 'w') as f:
        f.write(json.dumps(killed) + '\n')
    log = os.path.join(runs[0].workdir, 'launch.log')
    open(log, 'w').close()
    os.utime(log, (1600.0, 1600.0))

    def launch(argv, **kwargs):  # The next stretch: logged open while it runs, then finishes.
        stretches = [
            json.loads(line) for line in open(os.path.join(runs[0].workdir, 'stretches.jsonl'))
        ]
        assert len(stretches) == 2 and 'seconds' not in stretches[1]
        _finished_run(runs[0], 10, metrics)
        return 0

    monkeypatch.setattr(reproduction.subprocess, 'call', launch)
    reproduction.execute(runs[0])
    first, second = (
        json.loads(line) for line in open(os.path.join(runs[0].workdir, 'stretches.jsonl'))
    )
    assert first == {**killed, 'seconds': 600.0, 'exit': None, 'end': "launch.log's last write"}
    assert second['exit'] == 0 and 'end' not in second

    # A stretch killed before launch.py wrote its log lasted no time.
    os.remove(log)
    assert reproduction._close_killed(killed, runs[0].workdir)['seconds'] == 0

    # Seed 1's last stretch was killed after its final evaluation: ended at the report.
    _finished_run(runs[1], 10, metrics)
    with open(os.path.join(runs[1].workdir, 'stretches.jsonl'), 'w') as f:
        f.write(json.dumps({'start': 0.0, 'seconds': 60.0, 'exit': 0}) + '\n')
        f.write(json.dumps({'start': 5000.0}) + '\n')
    log = os.path.join(runs[1].workdir, 'launch.log')
    open(log, 'w').close()
    os.utime(log, (5000.0 + 1200, 5000.0 + 1200))
    text = open(reproduction.write_report(table, runs, out, 'python reproduce.py')).read()
    assert '| plain GAN | 0 | 10 | ~10 min |' in text
    assert '| plain GAN | 1 | 10 | ~21 min |' in text


def test_the_curves_have_a_line_of_panels_per_dataset(tmp_path):
    import matplotlib.image

    table = TABLE._replace(figure='none')
    runs = reproduction.plan(table, str(tmp_path / 'runs'), seeds=1, rows=['ring / GAN'])
    _finished_run(runs[0], 10, {'modes-ring': 8, 'high_quality-ring': 0.5, 'kl-ring': 0.1})
    out = str(tmp_path / 'out')
    reproduction.write_report(table, runs, out, 'python reproduce.py')
    one = matplotlib.image.imread(os.path.join(out, 'pacgan_table1_curves.png')).shape
    runs += reproduction.plan(table, str(tmp_path / 'runs'), seeds=1, rows=['grid / GAN'])
    _finished_run(runs[1], 10, {'modes-grid': 20, 'high_quality-grid': 0.5, 'kl-grid': 0.1})
    reproduction.write_report(table, runs, out, 'python reproduce.py')
    two = matplotlib.image.imread(os.path.join(out, 'pacgan_table1_curves.png')).shape
    assert two[0] == 2 * one[0] and two[1] == one[1]  # Ring and grid: two lines of 3 panels.


def test_a_preempted_run_fails_so_that_it_is_not_counted_done(tmp_path, monkeypatch):
    table = tables.TABLES['unrolled_demo']._replace(figure='none')
    (run,) = reproduction.plan(table, str(tmp_path / 'runs'), seeds=1, rows=['plain GAN'])

    def preempted(argv, **kwargs):  # launch.py after SIGTERM: a checkpoint, no final eval, 0.
        os.makedirs(run.workdir, exist_ok=True)
        with open(os.path.join(run.workdir, 'config.json'), 'w') as f:
            json.dump({'commands': [run.argv()[1:]], 'config': {'train': {'steps': 10}}}, f)
        return 0

    monkeypatch.setattr(reproduction.subprocess, 'call', preempted)
    with pytest.raises(RuntimeError, match='without its final evaluation'):
        reproduction.execute(run)
    stretch = json.loads(open(os.path.join(run.workdir, 'stretches.jsonl')).read())
    assert stretch['exit'] == 0 and stretch['seconds'] >= 0


def test_the_report_names_runs_that_left_the_protocol(tmp_path, monkeypatch):
    table = tables.TABLES['unrolled_demo']._replace(figure='none')
    runs = reproduction.plan(table, str(tmp_path / 'runs'), seeds=3, rows=['plain GAN'])
    metrics = {'modes-ring': 8, 'high_quality-ring': 0.5, 'kl-ring': 0.1}
    launched = iter(runs)

    def launch(argv, **kwargs):  # launch.py saving the command line it was given.
        run = next(launched)
        values = {'optim.b1': 0.2} if '--config.optim.b1=0.2' in argv else {}
        values.update({'train.steps': 10} if '--config.train.steps=10' in argv else {})
        config = _resolved(run, values)
        _finished_run(run, config['train']['steps'], metrics, argv, config)
        return 0

    monkeypatch.setattr(reproduction.subprocess, 'call', launch)
    reproduction.execute(runs[0], ['--config.optim.b1=0.2'])  # As reproduce.py --override.
    # The protocol's own value (the demo's Adam beta1 0.5) given again is no change.
    reproduction.execute(runs[1], ['--config.optim.b1=0.5'])
    reproduction.execute(runs[2], ['--config.optim.b1=0.2', '--config.train.steps=10'])
    out = str(tmp_path / 'out')
    text = open(reproduction.write_report(table, runs, out, 'python reproduce.py')).read()
    assert '**Not the published protocol**: `--config.optim.b1=0.2` in plain GAN seed 0.\n' in text
    assert (
        '**Not the published protocol**: `--config.optim.b1=0.2 --config.train.steps=10` in '
        'plain GAN seed 2.' in text
    )
    assert 'seed 1.' not in text
    record = json.load(open(os.path.join(out, 'unrolled_demo.json')))
    assert [r['changes'] for r in record['runs']] == [
        ['--config.optim.b1=0.2'],
        [],
        ['--config.optim.b1=0.2', '--config.train.steps=10'],
    ]


def test_the_report_names_what_a_run_trained_with_that_its_preset_has_changed_since(
    tmp_path, monkeypatch
):
    table = tables.TABLES['unrolled_demo']._replace(figure='none')
    runs = reproduction.plan(table, str(tmp_path / 'runs'), seeds=3, rows=['plain GAN'])
    metrics = {'modes-ring': 8, 'high_quality-ring': 0.5, 'kl-ring': 0.1}
    steps = _resolved(runs[0], {})['train']['steps']
    assert _resolved(runs[0], {})['optim']['b1'] == 0.5  # Today's protocol.
    # Saved before ema.kind was renamed ema.name and model.z_distribution (normal) added.
    config = _resolved(runs[0], {})
    config['ema']['kind'] = config['ema'].pop('name')
    assert config['model'].pop('z_distribution') == 'normal'
    _finished_run(runs[0], steps, metrics, config=config)
    # Trained when the preset's b1 was 0.8, with a key the preset no longer has and before
    # model.activation was added (so with ReLU, where the demo's preset now has tanh).
    config = {**_resolved(runs[1], {'optim.b1': 0.8}), 'retired': {'key': 3}}
    assert config['model'].pop('activation') == 'tanh'
    _finished_run(runs[1], steps, metrics, config=config)
    # Its command set b1 = 0.2: named once, as the command's.
    argv = runs[2].argv(['--config.optim.b1=0.2'])
    _finished_run(runs[2], steps, metrics, argv, _resolved(runs[2], {'optim.b1': 0.2}))
    out = str(tmp_path / 'out')
    text = open(reproduction.write_report(table, runs, out, 'python reproduce.py')).read()
    line = (
        '**Trained with values the protocol has changed since**: `model.activation=relu '
        'optim.b1=0.8` in plain GAN seed 1.\n'
    )
    assert line in text
    assert '**Not the published protocol**: `--config.optim.b1=0.2` in plain GAN seed 2.' in text
    record = json.load(open(os.path.join(out, 'unrolled_demo.json')))
    assert [(r['changes'], r['drifted']) for r in record['runs']] == [
        ([], {}),
        ([], {'model.activation': 'relu', 'optim.b1': 0.8}),
        (['--config.optim.b1=0.2'], {}),
    ]
    # Its folder gone, a run keeps what it trained with, checked against today's protocol.
    shutil.rmtree(runs[1].workdir)
    recorded = reproduction.load_recorded(table, out)
    assert reproduction.collect(table, runs, recorded)[0][1]['drifted'] == {
        'model.activation': 'relu',
        'optim.b1': 0.8,
    }
    # ... and no longer names a value that the protocol has taken up since.
    protocol = reproduction.protocol_config

    def moved(row, seed):
        return {**protocol(row, seed), 'optim.b1': 0.8}

    monkeypatch.setattr(reproduction, 'protocol_config', moved)
    per_run = reproduction.collect(table, runs, recorded)[0]
    assert per_run[1]['drifted'] == {'model.activation': 'relu'}


def test_a_value_is_a_change_only_when_it_differs_from_the_protocol():
    row = tables.TABLES['unrolled_demo'].rows[1]  # The demo's plain GAN: ring, on device, k = 0.

    def changes(*args):
        command = ' '.join(['launch.py', f'--config={row.config}', *args, '--workdir=w'])
        protocol = reproduction.protocol_config(row, 0)
        return reproduction._beyond_protocol(row, {'seed': 0, 'command': command}, protocol)

    same = (
        '--config.data.on_device=true',
        '--config.train.unroll_steps=0',
        '--config.data.source=ring',
    )
    assert changes(*same) == []
    other = (
        '--config.data.on_device=False',
        '--config.train.unroll_steps=5',
        '--config.data.source=grid',
    )
    assert changes(*other) == list(other)
    assert changes('--config.seed=0') == [] and changes('--config.seed=1') == ['--config.seed=1']
    # Where the data is read from is not the protocol (Stacked MNIST from a folder).
    location = ('--config.data.path=/data/mnist', '--config.data.tfds_data_dir=/data/tfds')
    assert changes(*location) == []
    assert changes(*location, '--config.data.num_threads=2') == ['--config.data.num_threads=2']


def test_mean_and_standard_error_and_the_two_error_rule():
    mean, error = reproduction.mean_and_standard_error([7.0, 8.0, 8.0])
    assert mean == pytest.approx(23 / 3)
    assert error == pytest.approx(math.sqrt(1 / 3) / math.sqrt(3))  # std (ddof 1) / sqrt(n)
    assert reproduction.mean_and_standard_error([5.0]) == (5.0, None)
    published = tables.Published(7.9, 0.1, 10)
    # Combined error sqrt(0.1^2 + 0.2^2) = 0.2236: within 2 of them is |diff| <= 0.447.
    assert reproduction.consistent(published, 7.5, 0.2)
    assert not reproduction.consistent(published, 7.4, 0.2)
    # One seed: its error is the published spread 0.1 sqrt(10), so the bound is
    # 2 sqrt(0.1^2 + 0.1^2 10) = 2 x 0.1 sqrt(11) = 0.663.
    assert reproduction.consistent(published, 7.25, None)
    assert not reproduction.consistent(published, 7.2, None)


@pytest.mark.heavy  # CI's 20 minutes; the report from run folders is tested above.
@pytest.mark.slow
def test_runs_resume_skip_when_finished_and_report(tmp_path):
    runs = reproduction.plan(TABLE, str(tmp_path / 'runs'), seeds=2, rows=['ring / PacGAN2'])
    short = [
        f'--config.{kv}'
        for kv in (
            'train.steps=200',
            'train.steps_per_call=100',
            'log.every_steps=100',
            'log.sample_every_steps=200',
            'checkpoint.every_steps=100',
            'eval.every_steps=100',
            'model.g_width=16',
            'model.d_width=8',
        )
    ]
    for run in runs:
        reproduction.execute(run, short)
    first = os.path.getmtime(os.path.join(runs[0].workdir, 'eval_200.json'))
    reproduction.execute(runs[0], short)  # Finished: skipped.
    assert os.path.getmtime(os.path.join(runs[0].workdir, 'eval_200.json')) == first
    report = reproduction.write_report(TABLE, runs, str(tmp_path / 'out'), 'python reproduce.py')
    text = open(report).read()
    assert '2 of 2 planned runs finished' in text
    assert '| ring / PacGAN2 | modes captured | 7.9 ± 0.1 (10) |' in text
    record = json.load(open(tmp_path / 'out' / 'pacgan_table1.json'))
    cell = next(c for c in record['cells'] if c['metric'] == 'modes-ring' and 'ours' in c)
    finals = [r['metrics']['modes-ring'] for r in record['runs']]
    assert cell['ours']['mean'] == pytest.approx(sum(finals) / 2) and cell['ours']['seeds'] == 2
    assert all(r['trained_on'] == [record['runs'][0]['trained_on'][0]] for r in record['runs'])
    assert record['runs'][0]['trained_on'][0].startswith(record['commit'] + ' on ')
    assert os.path.exists(tmp_path / 'out' / 'pacgan_table1_samples.png')
    series = reproduction.eval_series(runs[0].workdir)['modes-ring']
    assert [step for step, _ in series] == [100, 200]
