"""The EMA generator's own statistics: standing BatchNorm statistics and power iterations,
checked against a numpy computation from the EMA weights."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import builder, parallel, standing
from gan_jax import evaluate as eval_lib
from gan_jax.models import stylegan2
from gan_jax.sampling import sample_latents
from tests import helpers

BATCH = 8
# PacGAN's 2-D G, shrunk: Dense (no bias) -> SlotBatchNorm -> ReLU, twice.
MLP = {
    'data.source': 'ring',
    'model.name': 'mlp',
    'model.z_dim': 2,
    'model.g_width': 6,
    'model.g_depth': 2,
    'model.g_batch_norm': True,
    'ema.name': 'decay',
    'eval.metrics': 'modes',
    'eval.extractor': 'lenet_mnist',
    'train.batch_size': BATCH,
    'eval.seed': 3,
    'eval.best_metric': None,
}
SLOT_BN_EPSILON = 1e-4  # gan_jax.models.layers.SlotBatchNorm's.


def _setup(overrides, devices=None):
    config = helpers.tiny_config(**overrides)
    setup = builder.build(config)
    mesh = parallel.make_mesh(devices or jax.devices()[:1])
    evaluator = eval_lib.Evaluator(config, setup.generator, setup.source, mesh, setup.num_classes)
    return config, setup, evaluator, jax.jit(setup.init_state)()


def _perturbed(tree, seed, scale=0.3):
    return helpers.perturbed(tree, seed, scale)


def _mlp_standing_by_hand(params, config):
    """Standing statistics of the MLP G, from its train-mode forward written in numpy."""
    layers = [(f'Dense_{i}', f'SlotBatchNorm_{i}') for i in range(config.model.g_depth)]
    sums = {bn: {'mean': 0.0, 'stdev': 0.0} for _, bn in layers}
    key = standing.latent_key(config.eval.seed)
    for k in range(standing.PASSES):
        x = np.asarray(sample_latents(key, jnp.arange(k * BATCH, (k + 1) * BATCH), 2), np.float64)
        for dense, bn in layers:
            pre = x @ np.asarray(params[dense]['kernel'], np.float64)
            mean, std = pre.mean(0), np.sqrt(pre.var(0) + SLOT_BN_EPSILON)
            sums[bn]['mean'] += mean / standing.PASSES
            sums[bn]['stdev'] += std / standing.PASSES
            scale, bias = (np.asarray(params[bn][n]) for n in ('scale', 'bias'))
            x = np.maximum((pre - mean) / std * scale + bias, 0.0)
    return sums


def _assert_tree_close(actual, expected, **tolerance):
    jax.tree.map(lambda a, e: np.testing.assert_allclose(a, e, **tolerance), actual, expected)


def test_ema_batchnorm_statistics_are_the_ema_generators_own():
    config, _, evaluator, state = _setup(MLP)
    ema = _perturbed(state.g_params, seed=1)
    state = state.replace(ema_params=ema, g_batch_stats=_perturbed(state.g_batch_stats, seed=2))
    variables = evaluator.generator_variables(state)
    assert variables['params'] is ema
    assert evaluator.protocol()['ema_statistics']['passes'] == standing.PASSES
    _assert_tree_close(
        variables['batch_stats'], _mlp_standing_by_hand(ema, config), rtol=2e-4, atol=2e-5
    )


def test_a_steps_sample_grid_and_evaluation_share_one_computation(monkeypatch):
    config, _, evaluator, state = _setup(MLP)
    statistics = evaluator._standing
    calls = []
    computed = statistics._standing
    monkeypatch.setattr(statistics, '_standing', lambda *a: calls.append(1) or computed(*a))
    ema = _perturbed(state.g_params, seed=1)
    first = statistics(ema, state.g_batch_stats)
    assert statistics(ema, state.g_batch_stats) is first and len(calls) == 1
    moved = _perturbed(state.g_params, seed=2)  # The next step's EMA: computed afresh.
    _assert_tree_close(
        statistics(moved, state.g_batch_stats),
        _mlp_standing_by_hand(moved, config),
        rtol=2e-4,
        atol=2e-5,
    )
    assert len(calls) == 2


def test_ema_equal_to_g_gives_g_samples():
    # G's stored statistics are the standing ones of its weights; the EMA holds G's weights.
    config, setup, evaluator, state = _setup(MLP)
    g_params = _perturbed(state.g_params, seed=1)
    by_hand = jax.tree.map(jnp.float32, _mlp_standing_by_hand(g_params, config))
    state = state.replace(g_params=g_params, ema_params=g_params, g_batch_stats=by_hand)
    z = jax.random.normal(jax.random.PRNGKey(5), (16, 2))
    g_variables = {'params': g_params, 'batch_stats': by_hand}
    ema_variables = evaluator.generator_variables(state)
    np.testing.assert_allclose(
        setup.generator.apply(ema_variables, z, train=False),
        setup.generator.apply(g_variables, z, train=False),
        rtol=1e-4,
        atol=1e-5,
    )


@pytest.mark.slow
def test_ema_spectral_norm_vectors_are_power_iterations_on_the_ema_weights():
    overrides = {
        'model.g_spectral_norm': True,
        'ema.name': 'decay',
        'eval.extractor': 'lenet_mnist',
        'train.batch_size': BATCH,
        'eval.best_metric': None,
    }
    _, _, evaluator, state = _setup(overrides)
    ema = _perturbed(state.g_params, seed=1, scale=0.05)
    variables = evaluator.generator_variables(state.replace(ema_params=ema))
    # DCGAN's G: spectral norm on its Dense and its two transposed convolutions, in order.
    wrapped = ['Dense_0', 'PhaseConvTranspose_0', 'PhaseConvTranspose_1']
    for i, layer in enumerate(wrapped):
        kernel = np.asarray(ema[layer]['kernel'], np.float64)
        matrix = kernel.reshape(-1, kernel.shape[-1])
        u = np.asarray(state.g_batch_stats[f'SpectralNorm_{i}']['kernel/u'], np.float64)
        for _ in range(standing.PASSES):  # One train-mode power iteration per pass.
            v = matrix @ u / np.linalg.norm(matrix @ u)
            u = matrix.T @ v / np.linalg.norm(matrix.T @ v)
        got = variables['batch_stats'][f'SpectralNorm_{i}']
        np.testing.assert_allclose(got['kernel/u'], u, atol=2e-5)
        np.testing.assert_allclose(got['kernel/v'], v, atol=2e-5)
    # The live G's vectors are not the EMA's.
    assert not np.allclose(
        variables['batch_stats']['SpectralNorm_0']['kernel/u'],
        state.g_batch_stats['SpectralNorm_0']['kernel/u'],
        atol=1e-3,
    )


def test_standing_statistics_leave_stylegan2s_w_average_alone():
    # The official code copies G's buffers (the w average) into its EMA generator; train-mode
    # passes of the EMA weights would move it (checked below).
    generator = stylegan2.StyleGAN2Generator(
        resolution=4, img_channels=1, w_dim=4, mapping_layers=1, channel_base=16, channel_max=2
    )
    variables = generator.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)), train=False)
    w_avg = jnp.asarray([0.5, -1.0, 2.0, 0.25])
    mesh = parallel.make_mesh(jax.devices()[:1])
    ema_statistics = standing.StandingStatistics(
        generator, mesh, z_dim=3, num_classes=None, batch_size=4, seed=0, passes=2
    )
    ema = _perturbed(variables['params'], seed=1)
    got = ema_statistics(ema, {'mapping': {'w_avg': w_avg}})
    np.testing.assert_array_equal(got['mapping']['w_avg'], w_avg)
    # A train-mode pass would have moved it.
    _, moved = generator.apply(
        {'params': ema, 'batch_stats': {'mapping': {'w_avg': w_avg}}},
        jnp.ones((4, 3)),
        train=True,
        mutable=['batch_stats'],
    )
    assert not np.allclose(moved['batch_stats']['mapping']['w_avg'], w_avg)


_FOUR_DEVICES = """
import json, sys
import jax
from tests import test_standing as t
assert jax.device_count() == 4, jax.device_count()
overrides = {**t.MLP, 'model.cross_replica_bn': True}
_, _, evaluator, state = t._setup(overrides, devices=jax.devices())
ema = t._perturbed(state.g_params, seed=1)
stats = evaluator.generator_variables(state.replace(ema_params=ema))['batch_stats']
json.dump(jax.tree.map(lambda x: x.tolist(), stats), sys.stdout)
"""


@pytest.mark.slow
def test_standing_statistics_on_4_devices_equal_the_numpy_ones():
    # Cross-replica BatchNorm: each pass's statistics are over the global batch, on 4
    # devices as on 1.
    stdout = helpers.run_python(_FOUR_DEVICES, devices=4)
    config, _, _, state = _setup({**MLP, 'model.cross_replica_bn': True})
    expected = _mlp_standing_by_hand(_perturbed(state.g_params, seed=1), config)
    got = jax.tree.map(np.asarray, json.loads(stdout), is_leaf=lambda x: isinstance(x, list))
    _assert_tree_close(got, expected, rtol=2e-4, atol=2e-5)
