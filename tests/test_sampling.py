"""Latents and grids: the truncation trick against its definition, slerp against its formula,
class-grid layouts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from gan_jax import sampling


@pytest.mark.parametrize('threshold', [0.5, 1.0, 2.0])
def test_truncated_latents_are_a_truncated_normal(threshold):
    key = jax.random.PRNGKey(3)
    z = np.asarray(sampling.sample_latents(key, jnp.arange(500), 32, truncation=threshold))
    assert z.shape == (500, 32)
    assert np.abs(z).max() <= threshold  # No entry outside [-t, t].
    reference = stats.truncnorm(-threshold, threshold)
    np.testing.assert_allclose(z.var(), reference.var(), rtol=0.03)
    assert abs(z.mean()) < 4 * reference.std() / np.sqrt(z.size)
    # Fixed seed, 16k draws: the KS test cannot tell them from scipy's truncated normal.
    assert stats.kstest(z.ravel(), reference.cdf).pvalue > 0.01


def test_truncation_redraws_only_the_entries_outside():
    key = jax.random.PRNGKey(0)
    plain = np.asarray(sampling.sample_latents(key, jnp.arange(64), 16))
    truncated = np.asarray(sampling.sample_latents(key, jnp.arange(64), 16, truncation=1.0))
    inside = np.abs(plain) <= 1.0
    assert 0 < (~inside).sum()
    np.testing.assert_array_equal(truncated[inside], plain[inside])
    assert np.all(truncated[~inside] != plain[~inside])


def test_truncated_latents_do_not_depend_on_the_batch():
    key = jax.random.PRNGKey(1)
    whole = sampling.sample_latents(key, jnp.arange(8), 16, truncation=0.3)
    part = sampling.sample_latents(key, jnp.arange(4, 8), 16, truncation=0.3)
    np.testing.assert_array_equal(whole[4:], part)


@pytest.mark.parametrize('bad', [0, -1.0, float('inf'), float('nan'), '1'])
def test_bad_truncation_fails_naming_it(bad):
    with pytest.raises(ValueError, match='truncation='):
        sampling.sample_latents(jax.random.PRNGKey(0), jnp.arange(2), 4, truncation=bad)


def test_slerp_follows_the_great_circle():
    rng = np.random.default_rng(0)
    z0, z1 = rng.normal(size=(2, 64))
    z1 *= np.linalg.norm(z0) / np.linalg.norm(z1)  # Equal norms.
    t = np.linspace(0, 1, 9)
    path = np.asarray(sampling.slerp(z0, z1, t), np.float64)
    np.testing.assert_allclose(path[0], z0, atol=1e-5)
    np.testing.assert_allclose(path[-1], z1, atol=1e-5)
    # The norm stays that of the ends (a straight line dips toward the origin) ...
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(z0), rtol=1e-5)
    lerp = np.asarray(sampling.lerp(z0, z1, t))
    assert np.linalg.norm(lerp[4]) < 0.9 * np.linalg.norm(z0)
    # ... and the angle to z0 grows linearly, from 0 to the angle between the ends.
    cos = lambda a, b: a @ b / (np.linalg.norm(a) * np.linalg.norm(b))  # noqa: E731
    omega = np.arccos(cos(z0, z1))
    angles = [np.arccos(np.clip(cos(z0, p), -1, 1)) for p in path]
    np.testing.assert_allclose(angles, t * omega, atol=2e-3)


def test_slerp_of_unequal_norms_is_the_formula_and_batches():
    rng = np.random.default_rng(1)
    z0, z1 = rng.normal(size=(2, 3, 8))
    z1[1] *= 3.0
    t = np.array([0.25, 0.7])
    got = np.asarray(sampling.slerp(z0, z1, t))
    assert got.shape == (2, 3, 8)
    for i in range(3):
        a, b = z0[i], z1[i]
        w = np.arccos(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        for j, s in enumerate(t):
            want = (np.sin((1 - s) * w) * a + np.sin(s * w) * b) / np.sin(w)
            np.testing.assert_allclose(got[j, i], want, rtol=1e-4, atol=1e-5)


def test_slerp_of_parallel_latents_is_linear():
    z0 = np.arange(1.0, 5.0)
    got = np.asarray(sampling.slerp(z0, 2 * z0, [0.0, 0.5, 1.0]))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, [z0, 1.5 * z0, 2 * z0], rtol=1e-6)


def test_class_grid_layout_has_a_row_per_class_for_any_number_of_classes():
    labels, columns = sampling.grid_layout(64, 10)
    assert columns == 6 and list(labels) == [c for c in range(10) for _ in range(6)]
    # 1,000 classes in 64 samples: 16 rows of 4 over the whole range, not a 64 x 1 strip.
    labels, columns = sampling.grid_layout(64, 1000)
    rows = labels.reshape(-1, columns)
    assert columns == 4 and rows.shape == (16, 4)
    assert np.all(rows == rows[:, :1]) and rows[0, 0] == 0 and rows[-1, 0] == 999
    assert len(set(rows[:, 0])) == 16
    assert sampling.grid_layout(64, None) == (None, None)
    np.testing.assert_array_equal(sampling.class_rows([7, 2], 3), [7, 7, 7, 2, 2, 2])
