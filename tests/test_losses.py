"""GAN losses against hand-computed values, gradient directions and stability."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.losses import LOSSES, GANLoss, get_loss

LOG2 = math.log(2.0)
LOG3 = math.log(3.0)

# (name, real_logits, fake_logits, expected D loss, expected G loss)
HAND_CASES = [
    # softplus(0) = log 2; softplus(log 3) = log(1 + 3) = log 4;
    # softplus(-log 3) = log(1 + 1/3) = log(4/3).
    # D: softplus(-r) + softplus(f) = [log2 + log2, log(4/3) + log(4/3)]
    #    mean = log2 + log(4/3) = log(8/3).
    # G: softplus(-f) = [log2, log4] -> mean = (log2 + 2 log2) / 2 = 1.5 log2.
    ('non_saturating', [0.0, LOG3], [0.0, -LOG3], math.log(8 / 3), 1.5 * LOG2),
    # Same D as above.  G: -softplus(f) = [-log2, -log(4/3)]
    #    mean = -(log2 + log(4/3)) / 2 = -log(8/3) / 2.
    ('minimax', [0.0, LOG3], [0.0, -LOG3], math.log(8 / 3), -0.5 * math.log(8 / 3)),
    # D: relu(1 - r) = [relu(-1), relu(0.5)] = [0, 0.5];
    #    relu(1 + f) = [relu(-1), relu(1.5)] = [0, 1.5]; mean of [0, 2] = 1.
    # G: -f = [2, -0.5] -> mean 0.75.
    ('hinge', [2.0, 0.5], [-2.0, 0.5], 1.0, 0.75),
    # D: f - r = [-1 - 1, 0.5 - 3] = [-2, -2.5] -> mean -2.25.
    # G: -f = [1, -0.5] -> mean 0.25.
    ('wasserstein', [1.0, 3.0], [-1.0, 0.5], -2.25, 0.25),
    # D: 0.5 (r - 1)^2 = [0, 0.5 * 4] = [0, 2]; 0.5 f^2 = [0, 2];
    #    sum [0, 4] -> mean 2.
    # G: 0.5 (f - 1)^2 = [0.5, 0.5] -> mean 0.5.
    ('least_squares', [1.0, 3.0], [0.0, 2.0], 2.0, 0.5),
]


RELATIVISTIC = ['ragan', 'ralsgan']


def test_registry_has_all_losses():
    assert sorted(LOSSES) == sorted([case[0] for case in HAND_CASES] + RELATIVISTIC)
    assert all(isinstance(loss, GANLoss) for loss in LOSSES.values())
    assert sorted(n for n, loss in LOSSES.items() if loss.relativistic) == RELATIVISTIC


def _log_sigmoid(x):
    return -np.log1p(np.exp(-x))


def _reference_relativistic(name, real, fake):
    """Jolicoeur-Martineau 2019, eqs. for RaSGAN and RaLSGAN, written out in numpy."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    r_rel, f_rel = real - fake.mean(), fake - real.mean()
    if name == 'ragan':
        d = -np.mean(_log_sigmoid(r_rel)) - np.mean(_log_sigmoid(-f_rel))
        g = -np.mean(_log_sigmoid(f_rel)) - np.mean(_log_sigmoid(-r_rel))
    else:
        d = 0.5 * (np.mean((r_rel - 1) ** 2) + np.mean((f_rel + 1) ** 2))
        g = 0.5 * (np.mean((f_rel - 1) ** 2) + np.mean((r_rel + 1) ** 2))
    return d, g


@pytest.mark.parametrize('name', RELATIVISTIC)
def test_relativistic_against_the_paper(name):
    real, fake = [0.3, 2.0, -1.0], [-0.5, 0.1, 1.5]
    d_expected, g_expected = _reference_relativistic(name, real, fake)
    loss = get_loss(name)
    np.testing.assert_allclose(
        loss.discriminator(jnp.array(real), jnp.array(fake)), d_expected, rtol=1e-6
    )
    np.testing.assert_allclose(
        loss.generator(jnp.array(fake), jnp.array(real)), g_expected, rtol=1e-6
    )


def test_with_batch_mean_replaces_the_reference_mean():
    # The trainer passes a mean over all devices; here a constant stands in for it.
    loss = get_loss('ralsgan').with_batch_mean(lambda x: jnp.asarray(0.0))
    real, fake = jnp.array([1.0, 3.0]), jnp.array([0.0, 2.0])
    # With reference means 0: 0.5 * (mean((r - 1)^2) + mean((f + 1)^2)) = 0.5 * (2 + 5).
    np.testing.assert_allclose(loss.discriminator(real, fake), 3.5, rtol=1e-6)
    assert get_loss('hinge').with_batch_mean(jnp.mean) == get_loss('hinge')


@pytest.mark.parametrize('name, real, fake, d_expected, g_expected', HAND_CASES)
def test_hand_computed_values(name, real, fake, d_expected, g_expected):
    loss = get_loss(name)
    real, fake = jnp.asarray(real), jnp.asarray(fake)
    d_value = loss.discriminator(real, fake)
    g_value = loss.generator(fake, real)
    assert d_value.shape == () and g_value.shape == ()
    np.testing.assert_allclose(d_value, d_expected, rtol=1e-6)
    # Given real logits the minimax G minimises D's whole loss negated: the real term
    # moves G only through an unrolled D (Metz et al. 2017's demo: minimize(-loss)).
    g_with_real = -d_expected if name == 'minimax' else g_expected
    np.testing.assert_allclose(g_value, g_with_real, rtol=1e-6)
    # real_logits is optional for non-relativistic generators.
    np.testing.assert_allclose(loss.generator(fake, None), g_expected, rtol=1e-6)


@pytest.mark.parametrize('name', sorted(LOSSES))
def test_gradient_directions(name):
    # Real logits 0 and fake logits 0.5 lie inside every loss's active region
    # (hinge margins r < 1 and f > -1; least-squares targets r < 1, 0 < f < 1),
    # so each gradient is strictly signed.
    loss = get_loss(name)
    real, fake = jnp.zeros(4), jnp.full(4, 0.5)
    d_real, d_fake = jax.grad(loss.discriminator, argnums=(0, 1))(real, fake)
    g_fake = jax.grad(loss.generator)(fake, real)
    assert jnp.all(d_real < 0), 'D loss must fall as real logits grow'
    assert jnp.all(d_fake > 0), 'D loss must rise as fake logits grow'
    assert jnp.all(g_fake < 0), 'G loss must fall as fake logits grow'


@pytest.mark.parametrize('name', sorted(LOSSES))
def test_finite_for_extreme_logits(name):
    loss = get_loss(name)
    logits = jnp.array([-100.0, 100.0])
    for fn in (loss.discriminator, loss.generator):
        value, grads = jax.value_and_grad(fn, argnums=(0, 1))(logits, -logits)
        assert jnp.isfinite(value)
        assert all(jnp.all(jnp.isfinite(g)) for g in grads)


def test_cross_entropy_does_not_saturate_to_inf():
    # log(sigmoid(-100)) would be log(0) = -inf in float32; softplus gives 100.
    d = get_loss('non_saturating').discriminator(jnp.array([-100.0]), jnp.array([0.0]))
    np.testing.assert_allclose(d, 100.0 + LOG2, rtol=1e-6)


def test_unknown_loss_names_value_and_choices():
    with pytest.raises(ValueError, match="'bogus'") as info:
        get_loss('bogus')
    for name in LOSSES:
        assert name in str(info.value)
