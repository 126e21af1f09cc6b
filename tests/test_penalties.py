"""Gradient penalties against finite-difference gradients of a small network."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import penalties

rng = np.random.default_rng(0)
W1, B1 = rng.normal(size=(6, 5)), rng.normal(size=5)
W2 = rng.normal(size=5)
REAL, FAKE = rng.normal(size=(4, 2, 3)), rng.normal(size=(4, 2, 3))


def d_numpy(x):
    """A per-example tanh MLP on [B, 2, 3] inputs, in float64."""
    return np.tanh(x.reshape(len(x), -1) @ W1 + B1) @ W2


def d_jax(x):
    h = jnp.tanh(x.reshape(x.shape[0], -1) @ jnp.asarray(W1, jnp.float32) + B1)
    return h @ jnp.asarray(W2, jnp.float32)


def finite_difference_norms(points, h=1e-5):
    """||dD/dx|| per example by central differences, float64."""
    points = np.asarray(points, np.float64)
    grads = np.zeros_like(points)
    for index in np.ndindex(points.shape[1:]):
        step = np.zeros_like(points)
        step[(slice(None), *index)] = h
        grads[(slice(None), *index)] = (d_numpy(points + step) - d_numpy(points - step)) / (2 * h)
    return np.sqrt(np.sum(grads.reshape(len(points), -1) ** 2, axis=1))


# name -> cost of the gradient norms, written out from the papers.
EXPECTED_COST = {
    'wgan_gp': lambda n: (n - 1) ** 2,
    'one_sided_gp': lambda n: np.maximum(n - 1, 0) ** 2,
    'dragan': lambda n: (n - 1) ** 2,
    'r1': lambda n: 0.5 * n**2,
    'r2': lambda n: 0.5 * n**2,
}


@pytest.mark.parametrize('name', sorted(penalties.PENALTIES))
def test_penalty_equals_finite_difference_value(name):
    penalty = penalties.get_penalty(name)
    keys = jax.random.split(jax.random.key(3), 4)
    real, fake = jnp.asarray(REAL, jnp.float32), jnp.asarray(FAKE, jnp.float32)
    value = penalties.penalty_value(penalty, d_jax, d_jax, real, fake, keys)
    points = penalty.at(real, fake, keys)
    expected = np.mean(EXPECTED_COST[name](finite_difference_norms(points)))
    np.testing.assert_allclose(value, expected, rtol=1e-4)


def test_penalty_points():
    keys = jax.random.split(jax.random.key(0), 4)
    real, fake = jnp.asarray(REAL, jnp.float32), jnp.asarray(FAKE, jnp.float32)
    np.testing.assert_array_equal(penalties.PENALTIES['r1'].at(real, fake, keys), real)
    np.testing.assert_array_equal(penalties.PENALTIES['r2'].at(real, fake, keys), fake)
    assert penalties.PENALTIES['r2'].on_fakes and not penalties.PENALTIES['r1'].on_fakes
    # Interpolates: one eps per example, so every point lies on its segment.
    mixed = np.asarray(penalties.interpolates(real, fake, keys))
    eps = (mixed - FAKE)[:, 0, 0] / (REAL - FAKE)[:, 0, 0]
    np.testing.assert_allclose(
        mixed, eps[:, None, None] * REAL + (1 - eps[:, None, None]) * FAKE, atol=1e-5
    )
    assert np.all((eps >= 0) & (eps <= 1)) and len(np.unique(eps.round(6))) == 4
    # DRAGAN: x + alpha * 0.5 * std(x) * u with u, alpha in [0, 1] moves each pixel
    # up by at most 0.5 * std(x).
    moved = np.asarray(penalties.perturbed_reals(real, fake, keys)) - REAL
    assert np.all(moved >= -1e-6) and np.all(moved <= 0.5 * REAL.std() + 1e-6)
    assert moved.max() > 0
    # Each example's draw depends on its own key only (the same on 1 or N devices).
    np.testing.assert_allclose(
        penalties.interpolates(real[1:2], fake[1:2], keys[1:2]), mixed[1:2], rtol=1e-6
    )


def test_penalty_uses_the_labels_of_its_side():
    calls = []

    def discriminate(tag):
        def d(x):
            calls.append(tag)
            return d_jax(x)

        return d

    real, fake = jnp.asarray(REAL, jnp.float32), jnp.asarray(FAKE, jnp.float32)
    for name in ('r1', 'r2'):
        penalties.penalty_value(
            penalties.PENALTIES[name],
            discriminate('real'),
            discriminate('fake'),
            real,
            fake,
            jax.random.split(jax.random.key(0), 4),
        )
    assert calls == ['real', 'fake']


def test_unknown_penalty_names_the_choices():
    with pytest.raises(ValueError, match="'wgan-gp'.*dragan.*r1.*wgan_gp"):
        penalties.get_penalty('wgan-gp')
