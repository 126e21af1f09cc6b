"""Using a trained generator: gan_jax.load_run, sample.py's exports, grids, interpolations,
the truncation sweep, on a tiny unconditional run and a tiny conditional one with EMA.

Expected images are computed by applying the generator by hand (``generator.apply`` on
``sampling.sample_latents``), not by the sharded sampler under test.
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import gan_jax
from gan_jax import builder, checkpoint, config, generation, parallel, sampling, train
from gan_jax import evaluate as eval_lib
from tests import helpers

pytestmark = pytest.mark.slow  # Each fixture trains a run (seconds on CPU).

EVAL = helpers.CHEAP_EVAL
CONDITIONAL = {
    'model.conditioning': 'projection',
    'ema.name': 'decay',
    'ema.decay': 0.9,
    'ema.start_step': 2,
}
SAMPLE = os.path.join(helpers.REPO, 'sample.py')


@pytest.fixture(scope='module')
def plain_run(tmp_path_factory):
    """The default DCGAN on digits, tiny: unconditional, no EMA, checkpoints at 3 and 6."""
    workdir = tmp_path_factory.mktemp('plain')
    train.train(helpers.tiny_config(**{'eval.batch_size': 8}), str(workdir))
    return str(workdir)


@pytest.fixture(scope='module')
def conditional_run(tmp_path_factory):
    """Class-conditional (projection D) with an EMA generator, evaluated (best checkpoint)."""
    workdir = tmp_path_factory.mktemp('conditional')
    cache = str(tmp_path_factory.mktemp('cache'))
    train.train(
        helpers.tiny_config(**CONDITIONAL, **EVAL, **{'eval.cache_dir': cache}), str(workdir)
    )
    return str(workdir)


def _by_hand(run, n, seed, labels=None, truncation=None):
    """uint8 samples of ``run`` computed directly: generator.apply on the sampled latents."""
    z = sampling.sample_latents(
        jax.random.PRNGKey(seed), jnp.arange(n), run.config.model.z_dim, truncation=truncation
    )
    out = run.generator.apply(run.variables, z, labels, train=False)
    return np.asarray(sampling.images_to_uint8(out))


def test_load_run_generates_what_the_generator_gives(plain_run):
    run = gan_jax.load_run(plain_run)
    assert run.step == 6 and run.num_classes is None and not run.ema
    images = run.generate(11, seed=3)  # Not a multiple of eval.batch_size (8): padded.
    assert images.shape == (11, 28, 28, 1) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, _by_hand(run, 11, 3))
    assert not np.array_equal(images, run.generate(11, seed=4))
    truncated = run.generate(5, seed=3, truncation=0.5)
    np.testing.assert_array_equal(truncated, _by_hand(run, 5, 3, truncation=0.5))


def test_load_run_reads_the_chosen_checkpoint_and_generator(conditional_run):
    best = json.loads(open(os.path.join(conditional_run, 'best.json')).read())
    run = gan_jax.load_run(conditional_run, step='best')
    assert run.step == best['step'] and run.ema  # eval.use_ema, and the run keeps an EMA.
    at_3 = gan_jax.load_run(conditional_run, step=3, ema=False)
    assert at_3.step == 3 and not at_3.ema
    mesh = parallel.make_mesh()
    setup = builder.build(config.load_run_config(conditional_run))
    state, _ = checkpoint.restore_from_run(conditional_run, '3', setup.init_state, mesh)
    for got, want in zip(
        jax.tree.leaves(at_3.variables['params']), jax.tree.leaves(parallel.to_host(state.g_params))
    ):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match=r'step=7: .*\[3, 6\]'):
        gan_jax.load_run(conditional_run, step=7)
    # The EMA generator: the checkpoint's EMA weights with the statistics the evaluator
    # gave it when it ranked the checkpoint (standing statistics, not the live G's).
    best_state, _ = checkpoint.restore_from_run(
        conditional_run, str(best['step']), setup.init_state, mesh
    )
    evaluator = eval_lib.Evaluator(
        run.config, setup.generator, setup.source, mesh, setup.num_classes
    )
    expected = parallel.to_host(evaluator.generator_variables(best_state))
    assert jax.tree.leaves(expected['batch_stats'])  # G has BatchNorm statistics.
    for got, want in zip(jax.tree.leaves(run.variables), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    live = jax.tree.leaves(parallel.to_host(best_state.g_batch_stats))
    assert not all(
        np.allclose(a, b) for a, b in zip(live, jax.tree.leaves(expected['batch_stats']))
    )


def test_load_run_refuses_an_ema_the_run_does_not_keep(plain_run):
    with pytest.raises(ValueError, match='keeps no EMA generator'):
        gan_jax.load_run(plain_run, ema=True)


def test_evaluate_best_with_and_without_ema(conditional_run, tmp_path):
    """evaluate.py --step best [--ema|--noema]: the best checkpoint, the generator asked for;
    with the EMA (as during training) it gives the value best.json recorded."""
    best = json.loads(open(os.path.join(conditional_run, 'best.json')).read())
    results = {}
    for flag in ('--ema', '--noema'):
        helpers.run_script(helpers.EVALUATE, f'--workdir={conditional_run}', '--step=best', flag)
        written = sorted(
            (p for p in os.listdir(conditional_run) if p.startswith(f'eval_{best["step"]}-')),
            key=lambda p: os.path.getmtime(os.path.join(conditional_run, p)),
        )
        results[flag] = json.loads(open(os.path.join(conditional_run, written[-1])).read())
    assert results['--ema']['protocol']['ema'] and not results['--noema']['protocol']['ema']
    assert results['--ema']['protocol']['step'] == best['step']
    value = results['--ema']['metrics'][best['metric']]
    assert value == pytest.approx(best['value'], rel=1e-5)
    assert results['--noema']['metrics'][best['metric']] != pytest.approx(value, rel=1e-3)


def test_conditional_generate_cycles_classes_or_takes_labels(conditional_run):
    run = gan_jax.load_run(conditional_run)
    labels = np.arange(12) % 10  # The default: every class in turn, as the evaluator.
    np.testing.assert_array_equal(run.generate(12, seed=1), _by_hand(run, 12, 1, labels))
    chosen = np.array([7, 7, 2, 9, 0])
    got = run.generate(5, seed=2, labels=chosen, truncation=1.0)
    np.testing.assert_array_equal(got, _by_hand(run, 5, 2, chosen, truncation=1.0))
    with pytest.raises(ValueError, match=r'classes=\[10\].*0\.\.9'):
        run.generate(2, labels=[10, 10])


def test_export_writes_pngs_and_npz_that_hold_the_samples(conditional_run, tmp_path):
    run = gan_jax.load_run(conditional_run)
    variables = run.device_variables
    folder = generation.export(
        run.sampler, variables, 7, str(tmp_path / 'pngs'), seed=5, classes=[4, 1]
    )
    files = sorted(os.listdir(folder))
    assert files == [f'{i:06d}.png' for i in range(7)]
    read = np.stack([np.asarray(Image.open(os.path.join(folder, f))) for f in files])
    labels = np.array([4, 1, 4, 1, 4, 1, 4])
    want = _by_hand(run, 7, 5, labels)
    np.testing.assert_array_equal(read, want[..., 0])  # Grey PNGs.
    generation.export(run.sampler, variables, 7, str(tmp_path / 's.npz'), seed=5, classes=[4, 1])
    with np.load(tmp_path / 's.npz') as saved:
        np.testing.assert_array_equal(saved['images'], want)
        np.testing.assert_array_equal(saved['labels'], labels)


def test_interpolations_start_and_end_at_their_endpoints(conditional_run, tmp_path):
    run = gan_jax.load_run(conditional_run)
    variables = run.device_variables
    z_dim = run.config.model.z_dim
    first = lambda seed: sampling.sample_latents(jax.random.PRNGKey(seed), jnp.arange(1), z_dim)  # noqa: E731
    apply = lambda z, labels: np.asarray(  # noqa: E731
        sampling.images_to_uint8(run.generator.apply(run.variables, z, labels, train=False))
    )
    frames = generation.interpolate(run.sampler, variables, 'seeds', [0, 3, 1], [6], steps=5)
    assert frames.shape == (2, 5, 28, 28, 1)  # A row per pair of seeds.
    six = jnp.array([6])
    np.testing.assert_array_equal(frames[0, 0], apply(first(0), six)[0])
    np.testing.assert_array_equal(frames[0, -1], apply(first(3), six)[0])
    np.testing.assert_array_equal(frames[1, -1], apply(first(1), six)[0])
    assert len({frames[0, k].tobytes() for k in range(5)}) > 2  # It moves in between.

    frames = generation.interpolate(run.sampler, variables, 'classes', [2], [1, 8, 3], steps=4)
    assert frames.shape == (2, 4, 28, 28, 1)  # Seed 2's latent from class 1 to 8, 8 to 3.
    for row, col, label in ((0, 0, 1), (0, -1, 8), (1, 0, 8), (1, -1, 3)):
        np.testing.assert_array_equal(frames[row, col], apply(first(2), jnp.array([label]))[0])

    grid, gif = tmp_path / 'i.png', tmp_path / 'i.gif'
    generation.write_grid_and_gif(frames, str(grid), str(gif))
    assert Image.open(grid).size == (4 * 30 + 2, 2 * 30 + 2)  # 28-pixel cells, 2-pixel gaps.
    animation = Image.open(gif)
    assert animation.n_frames == 2 * 4 - 2 and animation.size == (30 + 2, 2 * 30 + 2)


def test_interpolation_and_class_grid_reject_what_they_cannot_do(plain_run):
    run = gan_jax.load_run(plain_run)
    variables = run.device_variables
    with pytest.raises(ValueError, match='unconditional'):
        generation.interpolate(run.sampler, variables, 'classes', [0], [1, 2])
    with pytest.raises(ValueError, match=r'seeds=\[0\]'):
        generation.interpolate(run.sampler, variables, 'seeds', [0])
    with pytest.raises(ValueError, match='class-conditional'):
        generation.class_grid(run.sampler, variables)


def _sample_py(workdir, *args, devices=1):
    return helpers.run_script(SAMPLE, '--workdir', workdir, *args, devices=devices)


@pytest.mark.heavy  # CI's 20 minutes: about 70 s here; evaluate.py's 1-vs-4 run stays in CI.
def test_sample_py_gives_the_same_images_on_one_and_four_devices(conditional_run, tmp_path):
    """Byte-identical from G's own weights. The EMA generator's standing statistics are
    a float32 reduction over the devices, so there a pixel may differ by one level."""
    check = "import jax, os; assert jax.device_count() == int(os.environ['GAN_JAX_TEST_DEVICES'])"
    outputs = {}
    for devices in (1, 4):
        subprocess.run(
            [sys.executable, '-c', check], env=helpers.python_env(devices), check=True, timeout=120
        )
        for ema in ('--ema', '--noema'):
            out = str(tmp_path / f'{devices}{ema}.npz')
            args = ['--num', '13', '--out', out, '--seed', '7', '--batch_size', '8']
            _sample_py(conditional_run, *args, '--truncation', '1.5', ema, devices=devices)
            outputs[devices, ema] = dict(np.load(out))
    assert outputs[1, '--noema']['images'].shape == (13, 28, 28, 1)
    for key in ('images', 'labels'):
        np.testing.assert_array_equal(outputs[1, '--noema'][key], outputs[4, '--noema'][key])
    one, four = (outputs[d, '--ema']['images'].astype(int) for d in (1, 4))
    assert np.max(np.abs(one - four)) <= 1 and np.mean(one != four) < 0.1


@pytest.mark.heavy  # CI's 20 minutes.
def test_sample_py_writes_a_class_grid_with_a_row_per_class(conditional_run, tmp_path):
    grid = str(tmp_path / 'grid.png')
    _sample_py(conditional_run, '--grid', grid, '--classes', '9,0,4', '--per_class', '5')
    image = np.asarray(Image.open(grid))
    assert image.shape == (3 * 30 + 2, 5 * 30 + 2)
    run = gan_jax.load_run(conditional_run)
    want = _by_hand(run, 15, 0, np.repeat([9, 0, 4], 5))
    np.testing.assert_array_equal(image[2 + 30 : 2 + 30 + 28, 2 : 2 + 28], want[5, ..., 0])


def test_truncation_sweep_evaluates_each_threshold_and_draws_the_curve(plain_run, tmp_path):
    plot = tmp_path / 'sweep.png'
    from gan_jax import truncation_sweep

    result = truncation_sweep.run(
        plain_run, thresholds=[None, 1.0, 0.25], num_samples=64, plot_path=str(plot)
    )
    assert [p['truncation'] for p in result['points']] == [None, 1.0, 0.25]
    fids = [p['metrics']['FID-LeNet-MNIST'] for p in result['points']]
    assert len(set(fids)) == 3 and all(np.isfinite(fids))
    assert Image.open(plot).size[0] > 100
    assert json.loads((tmp_path / 'sweep.json').read_text()) == json.loads(json.dumps(result))
    # No truncation: what evaluate.py computes for the same checkpoint and settings.
    run_config = config.load_run_config(plain_run)
    run_config.eval.metrics, run_config.eval.num_samples = 'fid,is', 64
    setup = builder.build(run_config)
    mesh = parallel.make_mesh()
    state, step = checkpoint.restore_from_run(plain_run, 'latest', setup.init_state, mesh)
    direct = eval_lib.Evaluator(run_config, setup.generator, setup.source, mesh).evaluate(
        state, step
    )
    assert direct['metrics']['FID-LeNet-MNIST'] == fids[0]


def test_training_ends_by_plotting_its_curves(conditional_run):
    assert Image.open(os.path.join(conditional_run, 'curves.png')).size[0] > 100
