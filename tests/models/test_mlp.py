"""MLP toy models: shapes, parameter count and the shared trainer call pattern."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.models import count_params
from gan_jax.models.layers import Maxout, SlotBatchNorm
from gan_jax.models.mlp import MLPDiscriminator, MLPGenerator


def test_shapes_and_defaults():
    def run(key, z):
        generator, discriminator = MLPGenerator(), MLPDiscriminator()
        g_key, d_key = jax.random.split(key)
        samples = generator.apply(generator.init(g_key, z, train=False), z, train=False)
        d_vars = discriminator.init(d_key, samples, train=False)
        return samples, discriminator.apply(d_vars, samples, train=True)

    # Abstract evaluation: shapes and dtypes without compiling anything.
    samples, logits = jax.eval_shape(run, jax.random.key(0), jnp.zeros((5, 8)))
    assert samples.shape == (5, 2) and samples.dtype == jnp.float32
    assert logits.shape == (5,) and logits.dtype == jnp.float32


def _param_shapes(module, x):
    return jax.eval_shape(lambda: module.init(jax.random.key(0), x, train=False))['params']


def test_parameter_count():
    params = _param_shapes(MLPGenerator(out_dim=3, hidden=16, depth=2), jnp.zeros((1, 4)))
    # Dense 4 -> 16, Dense 16 -> 16, Dense 16 -> 3, all with bias.
    assert count_params(params) == (4 * 16 + 16) + (16 * 16 + 16) + (16 * 3 + 3)
    d_params = _param_shapes(MLPDiscriminator(hidden=16, depth=1), jnp.zeros((1, 3)))
    # Dense 3 -> 16, Dense 16 -> 1.
    assert count_params(d_params) == (3 * 16 + 16) + (16 + 1)


def test_trainer_call_pattern_without_batch_norm():
    # The trainer passes variables.get("batch_stats", {}) and asks for the
    # collection back; models without BatchNorm must accept both.
    x = jnp.ones((4, 2))
    discriminator = MLPDiscriminator(hidden=8)
    # RBG key: XLA on CPU compiles its sampling much faster than threefry's.
    variables = discriminator.init(jax.random.key(0, impl='rbg'), x, train=False)
    assert set(variables) == {'params'}
    batch_stats = variables.get('batch_stats', {})
    logits, updates = discriminator.apply(
        {'params': variables['params'], 'batch_stats': batch_stats},
        x,
        train=True,
        mutable=['batch_stats'],
    )
    assert logits.shape == (4,)
    assert updates.get('batch_stats', {}) == {}
    eval_logits = discriminator.apply(
        {'params': variables['params'], 'batch_stats': batch_stats}, x, train=False
    )
    assert jnp.allclose(logits, eval_logits)


def _pacgan_2d(pack):
    """PacGAN's 2-D networks as experiments/pacgan.py builds them."""
    return (
        MLPGenerator(
            out_dim=2, hidden=400, depth=4, batch_norm=True, slots=pack, weight_init='N02'
        ),
        MLPDiscriminator(hidden=200, depth=3, maxout_pieces=5, weight_init='N02'),
    )


@pytest.mark.parametrize('pack', [1, 2, 3, 4])
def test_pacgan_2d_parameter_counts_equal_the_authors(pack):
    # Counted from fjxmlzn/PacGAN synthetic_data_experiments/*/pacgan_task.py
    # (Blocks): G 2 -> 4 x [400, no bias, BatchNorm scale + shift] -> 2 with bias;
    # D 2m -> 3 x LinearMaxout(200 units x 5 pieces, bias) -> Linear(1, bias).
    generator, discriminator = _pacgan_2d(pack)
    g = _param_shapes(generator, jnp.zeros((pack, 2)))
    d = _param_shapes(discriminator, jnp.zeros((1, 2 * pack)))
    g_expected = (2 * 400 + 3 * 400 * 400 + 400 * 2) + 2 + 4 * (400 + 400)
    d_expected = (2 * pack * 1000 + 1000) + 2 * (200 * 1000 + 1000) + (200 + 1)
    assert count_params(g) == g_expected == 484_802
    assert count_params(d) == d_expected == 2000 * pack + 403_201


def test_pacgan_2d_initialisation_is_n02_with_zero_biases():
    generator, discriminator = _pacgan_2d(2)
    g = generator.init(jax.random.key(0), jnp.zeros((2, 2)), train=False)['params']
    d = discriminator.init(jax.random.key(1), jnp.zeros((1, 4)), train=False)['params']
    kernels = [
        w
        for path, w in jax.tree_util.tree_leaves_with_path({'g': g, 'd': d})
        if path[-1].key == 'kernel' and w.size >= 80_000
    ]
    assert len(kernels) == 5  # G's three 400x400 kernels, D's two 200x1000 ones.
    for w in kernels:
        assert abs(float(jnp.std(w)) - 0.02) < 0.001 and abs(float(jnp.mean(w))) < 0.001
    biases = [w for path, w in jax.tree_util.tree_leaves_with_path(d) if path[-1].key == 'bias']
    assert all(float(jnp.abs(b).max()) == 0.0 for b in biases)


def test_maxout_is_the_max_over_contiguous_pieces():
    layer = Maxout(features=3, pieces=4)
    x = jax.random.normal(jax.random.key(0), (5, 6))
    variables = layer.init(jax.random.key(1), x)
    kernel = np.asarray(variables['params']['Dense_0']['kernel'])
    bias = np.asarray(variables['params']['Dense_0']['bias'])
    linear = np.asarray(x) @ kernel + bias  # [5, 12]: unit u has columns 4u .. 4u + 3.
    expected = np.stack([linear[:, 4 * u : 4 * u + 4].max(axis=1) for u in range(3)], axis=1)
    np.testing.assert_allclose(layer.apply(variables, x), expected, rtol=1e-6)


def test_slot_batch_norm_normalises_each_slot_and_tracks_stdev():
    # Example i is in slot i % 2: slot 0 holds rows 0, 2, 4, slot 1 rows 1, 3, 5.
    x = jnp.array([[1.0], [10.0], [2.0], [20.0], [6.0], [60.0]])
    layer = SlotBatchNorm(slots=2, momentum=0.9, epsilon=1e-4)
    variables = layer.init(jax.random.key(0), x, train=False)
    y, updates = layer.apply(variables, x, train=True, mutable=['batch_stats'])
    for rows in ([0, 2, 4], [1, 3, 5]):  # Biased variance, as Blocks' BatchNormalization.
        slot = np.asarray(x)[rows, 0]
        expected = (slot - slot.mean()) / np.sqrt(slot.var() + 1e-4)
        np.testing.assert_allclose(np.asarray(y)[rows, 0], expected, rtol=1e-5)
    slot_means = [3.0, 30.0]
    slot_stds = [np.sqrt(np.var([1, 2, 6]) + 1e-4), np.sqrt(np.var([10, 20, 60]) + 1e-4)]
    stats = updates['batch_stats']
    np.testing.assert_allclose(stats['mean'], [0.1 * np.mean(slot_means)], rtol=1e-6)
    np.testing.assert_allclose(stats['stdev'], [0.9 + 0.1 * np.mean(slot_stds)], rtol=1e-6)
    # Evaluation uses the tracked statistics, whatever the batch.
    out = layer.apply({**variables, 'batch_stats': stats}, x[:1], train=False)
    np.testing.assert_allclose(out, (x[:1] - stats['mean']) / stats['stdev'], rtol=1e-6)


def _unrolled_demo():
    """The Unrolled GAN demo's networks as experiments/unrolled_gan.py builds them."""
    options = dict(hidden=128, depth=2, weight_init='ortho1.4', activation='tanh')
    return MLPGenerator(out_dim=2, **options), MLPDiscriminator(**options)


def test_unrolled_demo_parameter_counts_equal_the_notebook():
    # Counted from poolio/unrolled_gan "Unrolled GAN demo.ipynb": slim.stack of two
    # fully_connected(128, tanh) layers then fully_connected(2) (G, z of 256) or
    # fully_connected(1) (D, input 2), every layer with a bias.
    generator, discriminator = _unrolled_demo()
    g = _param_shapes(generator, jnp.zeros((1, 256)))
    d = _param_shapes(discriminator, jnp.zeros((1, 2)))
    assert count_params(g) == (256 * 128 + 128) + (128 * 128 + 128) + (128 * 2 + 2) == 49_666
    assert count_params(d) == (2 * 128 + 128) + (128 * 128 + 128) + (128 + 1) == 17_025


def test_unrolled_demo_kernels_are_orthogonal_with_gain_1_4_and_units_tanh():
    generator, discriminator = _unrolled_demo()
    z = jax.random.normal(jax.random.key(2), (3, 256))
    g_vars = generator.init(jax.random.key(0), z, train=False)
    kernels = [w for p, w in jax.tree_util.tree_leaves_with_path(g_vars) if p[-1].key == 'kernel']
    assert len(kernels) == 3
    for w in kernels:  # Orthonormal columns (tall) or rows (wide), times 1.4.
        gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
        np.testing.assert_allclose(gram, 1.96 * np.eye(gram.shape[0]), atol=1e-4)
    biases = [w for p, w in jax.tree_util.tree_leaves_with_path(g_vars) if p[-1].key == 'bias']
    assert all(float(jnp.abs(b).max()) == 0.0 for b in biases)
    # The forward pass written out: tanh hidden units, linear output.
    p = g_vars['params']
    h = jnp.tanh(z @ p['Dense_0']['kernel'])
    h = jnp.tanh(h @ p['Dense_1']['kernel'])
    expected = h @ p['Dense_2']['kernel']
    np.testing.assert_allclose(generator.apply(g_vars, z, train=True), expected, atol=1e-5)
    d_vars = discriminator.init(jax.random.key(1), expected, train=False)
    q = d_vars['params']
    h = jnp.tanh(jnp.tanh(expected @ q['Dense_0']['kernel']) @ q['Dense_1']['kernel'])
    expected_logits = (h @ q['DiscriminatorHead_0']['Dense_0']['kernel'])[:, 0]
    np.testing.assert_allclose(
        discriminator.apply(d_vars, expected, train=True), expected_logits, atol=1e-5
    )


def test_unknown_activation_or_init_fails_naming_the_accepted_ones():
    with pytest.raises(ValueError, match="activation='swish'.*relu.*tanh"):
        _param_shapes(MLPGenerator(activation='swish'), jnp.zeros((1, 2)))
    with pytest.raises(ValueError, match="weight_init='ortho2'.*ortho1.4"):
        _param_shapes(MLPDiscriminator(weight_init='ortho2'), jnp.zeros((1, 2)))
