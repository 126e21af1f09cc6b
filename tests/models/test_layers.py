"""Spectral norm, class-conditional and per-slot BatchNorm and the discriminator heads."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.models import layers
from gan_jax.models.conv_transpose import PhaseConvTranspose


class _Wrapped(nn.Module):
    """One spectrally normalised layer, and its normalised kernel for inspection."""

    layer: nn.Module

    @nn.compact
    def __call__(self, x, *, train):
        return layers.SpectralNorm(self.layer)(x, update_stats=train)


CASES = [
    ('dense', nn.Dense(7), jnp.ones((2, 12))),
    ('conv', nn.Conv(8, (3, 3)), jnp.ones((2, 5, 5, 4))),
    ('conv_transpose', PhaseConvTranspose(6, (4, 4), (2, 2)), jnp.ones((2, 3, 3, 5))),
    ('embed', nn.Embed(10, 9), jnp.arange(4)),
]


def _train(module, variables, x, steps):
    stats = variables['batch_stats']
    for _ in range(steps):
        _, updates = module.apply(
            {'params': variables['params'], 'batch_stats': stats},
            x,
            train=True,
            mutable=['batch_stats'],
        )
        stats = updates['batch_stats']
    return stats


@pytest.mark.slow
@pytest.mark.parametrize('name, layer, x', CASES, ids=[c[0] for c in CASES])
def test_power_iteration_finds_the_largest_singular_value(name, layer, x):
    module = _Wrapped(layer)
    variables = module.init(jax.random.key(0), x, train=False)
    (weight,) = [w for w in jax.tree.leaves(variables['params']) if w.ndim >= 2]
    matrix = np.asarray(weight).reshape(-1, weight.shape[-1])
    stats = _train(module, variables, x, 30)
    (sn_stats,) = stats.values()
    u, v = (np.asarray(sn_stats[k]) for k in sorted(sn_stats))  # '<param>/u', '<param>/v'
    sigma = np.linalg.svd(matrix, compute_uv=False)[0]
    assert abs(v @ matrix @ u - sigma) < 1e-3 * sigma


def test_normalised_layer_has_spectral_norm_one():
    # Read the effective weight off the layer itself: rows of the identity in,
    # minus the bias, give W / sigma.
    module = _Wrapped(nn.Dense(3))
    x = jax.random.normal(jax.random.key(1), (4, 6))
    variables = module.init(jax.random.key(0), x, train=False)
    variables = {**variables, 'batch_stats': _train(module, variables, x, 30)}
    kernel, bias = (np.asarray(variables['params']['layer'][k]) for k in ('kernel', 'bias'))
    effective = np.asarray(module.apply(variables, jnp.eye(6), train=False)) - bias
    assert abs(np.linalg.svd(effective, compute_uv=False)[0] - 1.0) < 1e-3
    sigma = np.linalg.svd(kernel, compute_uv=False)[0]
    np.testing.assert_allclose(effective, kernel / sigma, rtol=1e-3, atol=1e-6)


def test_evaluation_leaves_the_vectors_frozen_and_training_updates_them():
    module = _Wrapped(nn.Dense(5))
    x = jnp.ones((2, 4))
    variables = module.init(jax.random.key(0), x, train=False)
    _, updates = module.apply(variables, x, train=False, mutable=['batch_stats'])
    jax.tree.map(np.testing.assert_array_equal, updates['batch_stats'], variables['batch_stats'])
    out_a = module.apply(variables, x, train=False)
    out_b = module.apply(variables, x, train=False)
    np.testing.assert_array_equal(out_a, out_b)
    trained = _train(module, variables, x, 1)
    assert any(
        not np.allclose(a, b)
        for a, b in zip(jax.tree.leaves(trained), jax.tree.leaves(variables['batch_stats']))
    )


def test_init_stores_the_initialisers_weights_unnormalised():
    # The normalisation happens on every call; the params keep the raw kernel.
    kernel = jnp.arange(12.0).reshape(4, 3) / 7
    module = _Wrapped(nn.Dense(3, kernel_init=lambda *_: kernel))
    variables = module.init(jax.random.key(0), jnp.ones((2, 4)), train=False)
    np.testing.assert_array_equal(variables['params']['layer']['kernel'], kernel)


def test_spectral_helper_is_the_plain_layer_when_disabled():
    layer = nn.Dense(3)
    assert layers.spectral(layer, False, True) is layer


def test_conditional_batch_norm_starts_as_batch_norm_with_unit_gain():
    module = layers.ConditionalBatchNorm()
    x = jax.random.normal(jax.random.key(0), (6, 2, 2, 3)) * 3.0 + 1.0
    condition = jax.nn.one_hot(jnp.array([0, 1, 2, 0, 1, 2]), 4)
    variables = module.init(jax.random.key(1), x, condition, train=False)
    params = variables['params']
    assert set(params) == {'gain', 'bias'}
    assert params['gain']['kernel'].shape == params['bias']['kernel'].shape == (4, 3)
    # Zero projections: exactly BatchNorm without affine parameters (gain 1, not 0).
    zero = jax.tree.map(jnp.zeros_like, params)
    out, _ = module.apply(
        {'params': zero, 'batch_stats': variables['batch_stats']},
        x,
        condition,
        train=True,
        mutable=['batch_stats'],
    )
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-5)
    # Per-class gain and bias: class c's rows of the tables.
    gain = jnp.arange(12.0).reshape(4, 3) / 10
    bias = -jnp.arange(12.0).reshape(4, 3) / 5
    out2, _ = module.apply(
        {
            'params': {'gain': {'kernel': gain}, 'bias': {'kernel': bias}},
            'batch_stats': variables['batch_stats'],
        },
        x,
        condition,
        train=True,
        mutable=['batch_stats'],
    )
    labels = np.array([0, 1, 2, 0, 1, 2])
    expected = (
        np.asarray(out) * (1 + np.asarray(gain)[labels][:, None, None])
        + np.asarray(bias)[labels][:, None, None]
    )
    np.testing.assert_allclose(out2, expected, rtol=1e-5, atol=1e-5)


def test_projection_head_adds_the_class_embedding_inner_product():
    head = layers.DiscriminatorHead('projection', num_classes=5)
    h = jax.random.normal(jax.random.key(0), (3, 4))
    labels = jnp.array([4, 0, 2])
    variables = head.init(jax.random.key(1), h, labels, train=False)
    p = variables['params']
    logits = head.apply(variables, h, labels, train=False)
    expected = (
        (h @ p['Dense_0']['kernel'])[:, 0]
        + p['Dense_0']['bias'][0]
        + jnp.sum(p['Embed_0']['embedding'][labels] * h, axis=1)
    )
    np.testing.assert_allclose(logits, expected, rtol=1e-5)


def test_acgan_head_returns_class_logits_and_unconditional_only_logits():
    h = jnp.ones((3, 4))
    acgan = layers.DiscriminatorHead('acgan', num_classes=7)
    logits, class_logits = acgan.apply(
        acgan.init(jax.random.key(0), h, None, train=False), h, None, train=False
    )
    assert logits.shape == (3,) and class_logits.shape == (3, 7)
    plain = layers.DiscriminatorHead()
    assert plain.apply(
        plain.init(jax.random.key(0), h, None, train=False), h, None, train=False
    ).shape == (3,)


def test_heads_reject_bad_settings():
    with pytest.raises(ValueError, match="'film'.*acgan"):
        layers.DiscriminatorHead('film', num_classes=3)
    with pytest.raises(ValueError, match="'projection' needs class labels"):
        layers.DiscriminatorHead('projection', num_classes=None)


def test_class_vectors_are_one_hot_labels_or_given_vectors():
    class_vectors = layers.class_vectors
    np.testing.assert_array_equal(class_vectors(jnp.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    mix = jnp.array([[0.25, 0.0, 0.75]])
    np.testing.assert_array_equal(class_vectors(mix, 3), mix)
    with pytest.raises(ValueError, match=r'class vectors of shape \(1, 3\): expected \[B, 4\]'):
        class_vectors(mix, 4)


def test_slot_batch_norm_with_one_slot_and_running_var_is_flaxs_batch_norm():
    # tf.contrib's batch_norm as PacGAN's Stacked MNIST networks use it: Flax's BatchNorm
    # (momentum 0.9, epsilon 1e-5) in training and evaluation, variables of the same names.
    x = jax.random.normal(jax.random.key(0), (6, 4, 4, 3)) * 2.0 + 0.5
    slot = layers.SlotBatchNorm(1, momentum=0.9, epsilon=1e-5, running='var')
    flax_bn = lambda train: nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)
    variables = flax_bn(False).init(jax.random.key(1), x)
    assert jax.tree.map(jnp.shape, slot.init(jax.random.key(1), x, train=False)) == jax.tree.map(
        jnp.shape, variables
    )
    y, new = slot.apply(variables, x, train=True, mutable=['batch_stats'])
    y_flax, new_flax = flax_bn(True).apply(variables, x, mutable=['batch_stats'])
    np.testing.assert_allclose(y, y_flax, rtol=1e-5, atol=1e-5)
    for name in ('mean', 'var'):
        np.testing.assert_allclose(
            new['batch_stats'][name], new_flax['batch_stats'][name], rtol=1e-5, atol=1e-6
        )
    trained = {**variables, **new}
    np.testing.assert_allclose(
        slot.apply(trained, x[:1], train=False),
        flax_bn(False).apply(trained, x[:1]),
        rtol=1e-5,
        atol=1e-5,
    )
    with pytest.raises(ValueError, match='5 examples does not split into 2 packing slots'):
        layers.SlotBatchNorm(2).init(jax.random.key(1), x[:5], train=True)
