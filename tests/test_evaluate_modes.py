"""The 'modes' metric of the Evaluator: 2-D mixtures and Stacked MNIST, with known answers."""

import json
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import evaluate as eval_lib
from gan_jax import parallel, sampling, train
from gan_jax.data.idx import read_idx
from gan_jax.data.image_ops import center_crop_resize
from gan_jax.data.mixtures import MIXTURES, MixtureSource
from gan_jax.metrics import classifiers
from gan_jax.metrics.modes import mixture_mode_stats, stacked_mnist_mode_stats
from tests import helpers

MODES = {
    'eval.metrics': 'modes',
    'eval.num_samples': 2000,
    'eval.batch_size': 200,
    'eval.best_metric': None,
}


class MixtureGenerator:
    """G(z) = centre[argmax z[:M]] + std z[M:M+2]: an exact sample of the mixture per latent
    (argmax of M normals is uniform), or with ``mode`` set, of that one Gaussian only."""

    def __init__(self, mixture, mode=None):
        self.mixture, self.mode = mixture, mode

    def apply(self, variables, z, labels, train):
        del variables, labels, train
        centers = jnp.asarray(self.mixture.centers, jnp.float32)
        num_modes = len(centers)
        mode = z[:, :num_modes].argmax(axis=-1) if self.mode is None else self.mode
        return centers[mode] + self.mixture.std * z[:, num_modes : num_modes + 2]


class TableGenerator:
    """Sample i is row i of ``params['table']``: labels are the global indices when
    ``num_classes`` is the table's length."""

    def apply(self, variables, z, labels, train):
        del z, train
        return variables['params']['table'][labels]


def _state(params):
    return types.SimpleNamespace(g_params=params, ema_params=None, g_batch_stats={})


def _mixture_result(name, mode=None):
    """The Evaluator's result for MixtureGenerator on mixture ``name`` (any device count)."""
    config = helpers.tiny_config(
        **MODES, **{'data.source': name, 'model.name': 'mlp', 'model.z_dim': 32}
    )
    source = MixtureSource(MIXTURES[name], num_samples=10)
    generator = MixtureGenerator(MIXTURES[name], mode)
    evaluator = eval_lib.Evaluator(config, generator, source, parallel.make_mesh())
    return evaluator.evaluate(_state({}), 5)


@pytest.mark.parametrize('name', sorted(MIXTURES))
def test_exact_mixture_samples_cover_every_mode(name):
    mixture = MIXTURES[name]
    result = _mixture_result(name)
    # The same points generated directly, unsharded: latent i keyed by global index i.
    z = sampling.sample_latents(jax.random.PRNGKey(0), jnp.arange(2000), 32)
    want = mixture_mode_stats(
        MixtureGenerator(mixture).apply({}, z, None, False), mixture.centers, mixture.std
    )
    metrics = result['metrics']
    assert metrics == {
        f'modes-{name}': len(mixture.centers),
        f'high_quality-{name}': want['high_quality_fraction'],
        f'kl-{name}': want['reverse_kl'],
    }
    # Within 3 std: P(chi2_2 < 9) = 1 - exp(-4.5) = 0.989; KL ~ (M - 1) / 2N by sampling.
    assert metrics[f'high_quality-{name}'] == pytest.approx(0.989, abs=0.01)
    assert 0 <= metrics[f'kl-{name}'] < 0.03
    protocol = result['protocol']
    assert protocol['modes'] == {
        'dataset': name,
        'num_samples': 2000,
        'num_modes': len(mixture.centers),
        'std': mixture.std,
        'max_std': 3.0,
        'min_count': 1,
        'high_quality': 'nearest mode closer than max_std * std',
        'kl': 'KL(p || uniform), p the high-quality samples over their nearest modes',
    }
    assert protocol['num_generated'] == 2000 and 'reference' not in protocol


def test_collapse_to_one_mode_gives_log_m():
    metrics = _mixture_result('grid', mode=7)['metrics']
    assert metrics['modes-grid'] == 1
    assert metrics['kl-grid'] == pytest.approx(np.log(25), rel=1e-12)
    assert metrics['high_quality-grid'] == pytest.approx(0.989, abs=0.01)


class BatchModeGenerator(MixtureGenerator):
    """In training mode every sample of a batch is of one mode, the argmax of the batch's
    mean latent (G's batch statistics); in inference mode MixtureGenerator's samples."""

    def apply(self, variables, z, labels, train, mutable=False):
        exact = super().apply(variables, z, labels, train)
        if not train:
            return exact
        num_modes = len(self.mixture.centers)
        mode = z[:, :num_modes].mean(axis=0).argmax()
        centers = jnp.asarray(self.mixture.centers, jnp.float32)
        images = centers[mode] + self.mixture.std * z[:, num_modes : num_modes + 2]
        return (images, {}) if mutable else images


def test_g_batch_statistics_evaluates_g_in_training_mode_per_evaluation_batch():
    grid = MIXTURES['grid']

    def evaluate(batch_statistics):
        config = helpers.tiny_config(
            **MODES,
            **{
                'data.source': 'grid',
                'model.name': 'mlp',
                'model.z_dim': 32,
                'eval.g_batch_statistics': batch_statistics,
            },
        )
        source = MixtureSource(grid, num_samples=10)
        evaluator = eval_lib.Evaluator(
            config, BatchModeGenerator(grid), source, parallel.make_mesh()
        )
        return evaluator.evaluate(_state({}), 5)

    # By hand: the 2000 latents (keyed by index) in the 10 evaluation batches of 200.
    z = sampling.sample_latents(jax.random.PRNGKey(0), jnp.arange(2000), 32)
    batch_modes = {int(b[:, :25].mean(axis=0).argmax()) for b in np.split(np.asarray(z), 10)}
    trained = evaluate(True)
    assert trained['metrics']['modes-grid'] == len(batch_modes) < 25
    assert trained['protocol']['g_batch_statistics'] == {'batch_size': 200}
    inference = evaluate(False)
    assert (
        inference['metrics']['modes-grid'] == 25
        and 'g_batch_statistics' not in inference['protocol']
    )


@pytest.mark.parametrize(
    'overrides, message',
    [
        ({'train.pack': 3}, r'eval.batch_size=200 over 1 device\(s\) .* train.pack=3'),
        ({'eval.num_samples': 2100}, r'eval.num_samples=2100 must be a multiple of .*=200'),
        (
            {'data.source': 'stacked_mnist', 'eval.metrics': 'modes,intra_fid'},
            'cannot evaluate intra_fid',
        ),
    ],
)
def test_g_batch_statistics_refuses_batches_the_protocol_does_not_have(overrides, message):
    config = helpers.tiny_config(
        **{**MODES, 'data.source': 'grid', 'eval.g_batch_statistics': True, **overrides}
    )
    with pytest.raises(ValueError, match=message):
        eval_lib.Evaluator(config, None, None, parallel.make_mesh())


@pytest.mark.parametrize(
    'overrides, message',
    [
        (
            {'data.source': 'ring', 'eval.metrics': 'modes,fid'},
            r'fid needs images; data\.source="ring" gives 2-D points; use eval\.metrics="modes"',
        ),
        (
            {'eval.metrics': 'modes'},  # The default digits.
            r'modes is defined only for data\.source ring, grid, stacked_mnist .*"digits"',
        ),
        ({'data.source': 'grid', 'eval.best_metric': 'kl'}, r"best_metric='kl'.*NaN"),
        (
            {'data.source': 'stacked_mnist', 'eval.best_metric': 'high_quality'},
            r"'high_quality' exists for the 2-D mixtures only",
        ),
    ],
)
def test_metrics_the_data_cannot_give_fail_early(overrides, message):
    config = helpers.tiny_config(**{**MODES, **overrides})
    with pytest.raises(ValueError, match=message):
        eval_lib.Evaluator(config, None, None, parallel.make_mesh())


@pytest.mark.slow
def test_training_on_the_grid_and_the_cli_on_4_devices(tmp_path):
    # Inception is the extractor but its weights are absent: 'modes' must not load it.
    config = helpers.tiny_config(
        **{
            **MODES,
            'data.source': 'grid',
            'model.name': 'mlp',
            'eval.every_steps': 3,
            'eval.best_metric': 'modes',
            'eval.extractor': 'inception',
            'eval.inception_weights': str(tmp_path / 'absent.npz'),
        }
    )
    run = tmp_path / 'run'
    train.train(config, str(run))
    result = json.loads((run / 'eval_6.json').read_text())
    assert set(result['metrics']) == {'modes-grid', 'high_quality-grid', 'kl-grid'}
    # Some of the untrained G's points fall near the centre mode: a count that depends on
    # exactly which latents were drawn.
    assert 0 < result['metrics']['high_quality-grid'] < 1
    assert result['protocol']['modes']['num_samples'] == 2000
    best = json.loads((run / 'best.json').read_text())
    assert best['metric'] == 'modes-grid'
    cli = subprocess.run(
        [sys.executable, helpers.EVALUATE, f'--workdir={run}', '--step=latest', '--metrics=modes'],
        env=helpers.python_env(4),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=helpers.REPO,
    )
    assert cli.returncode == 0, cli.stderr[-3000:]
    again = json.loads((run / 'eval_6-2.json').read_text())
    # Sharded generation over 4 devices scores the same points.
    assert again['metrics'] == pytest.approx(result['metrics'], rel=1e-6)


# ---- Stacked MNIST: real digits with known labels ----------------------------------------


@pytest.fixture(scope='module')
def digit_pool(shared_data_dir):
    """20 MNIST test digits per class that LeNet-MNIST reads correctly, [10, 20, 28, 28]."""
    folder = shared_data_dir / 'mnist'
    if not (folder / 't10k-images-idx3-ubyte.gz').is_file():
        pytest.skip(f'real MNIST files not found in {folder} (set GAN_JAX_SHARED_DATA)')
    images = read_idx(folder / 't10k-images-idx3-ubyte.gz')[:2000]
    labels = read_idx(folder / 't10k-labels-idx1-ubyte.gz')[:2000]
    classify, _ = classifiers.load_classifier('lenet_mnist')
    read = np.asarray(classify(images[..., None])['logits']).argmax(axis=-1)
    return np.stack([images[(labels == d) & (read == d)][:20] for d in range(10)])


def _stacks(pool, triples, resolution):
    """uint8 RGB images whose channels are digits ``triples`` [N, 3], at ``resolution``
    (resized as the Stacked MNIST source resizes)."""
    instance = np.arange(len(triples)) % pool.shape[1]
    images = np.stack([pool[triples[:, c], instance] for c in range(3)], axis=-1)
    return np.stack([center_crop_resize(image, resolution) for image in images])


def _stacked_metrics(images, resolution):
    config = helpers.tiny_config(
        **{
            **MODES,
            'eval.num_samples': len(images),
            'data.source': 'stacked_mnist',
            'data.resolution': resolution,
        }
    )
    evaluator = eval_lib.Evaluator(
        config, TableGenerator(), None, parallel.make_mesh(), num_classes=len(images)
    )
    table = jnp.asarray(sampling.images_to_float(images))
    result = evaluator.evaluate(_state({'table': table}), 0)
    return result['metrics'], result['protocol']['modes']


@pytest.mark.parametrize('resolution', [28, 32])
def test_stacked_mnist_reads_every_mode_once(digit_pool, resolution):
    triples = np.indices((10, 10, 10)).reshape(3, -1).T  # (R, G, B) digits, each triple once.
    images = _stacks(digit_pool, triples, resolution)
    # The stats below are blind to how modes are numbered; the digits are not.
    classify, _ = classifiers.load_classifier('lenet_mnist')
    digits = jax.jit(lambda x: eval_lib._stacked_mnist_digits(classify, x))(images)
    np.testing.assert_array_equal(digits, triples)
    metrics, protocol = _stacked_metrics(images, resolution)
    assert metrics == {'modes-StackedMNIST': 1000, 'kl-StackedMNIST': pytest.approx(0, abs=1e-12)}
    assert protocol['classifier'] == 'lenet_mnist' and protocol['num_samples'] == 1000
    assert protocol['resize'] == ('none' if resolution == 28 else 'lanczos3_antialias_28')


def test_stacked_mnist_known_modes_and_collapse(digit_pool):
    triples = np.random.default_rng(0).integers(0, 10, (600, 3))
    images = _stacks(digit_pool, triples, 28)
    metrics, _ = _stacked_metrics(images, 28)
    want = stacked_mnist_mode_stats(triples)  # The statistics of the known labels.
    assert metrics == {
        'modes-StackedMNIST': want['modes_covered'],
        'kl-StackedMNIST': pytest.approx(want['kl_to_uniform'], rel=1e-12),
    }
    assert 400 < want['modes_covered'] < 600
    collapsed = _stacks(digit_pool, np.tile([[7, 2, 1]], (200, 1)), 28)
    metrics, _ = _stacked_metrics(collapsed, 28)
    assert metrics == {
        'modes-StackedMNIST': 1,
        'kl-StackedMNIST': pytest.approx(np.log(1000), rel=1e-12),
    }
