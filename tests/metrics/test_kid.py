"""KID vs a double-loop unbiased MMD^2, and its behaviour on equal and shifted distributions."""

import numpy as np
import pytest

from gan_jax.metrics.kid import kernel_inception_distance


def _mmd2_double_loop(x, y):
    """Gretton et al. (2012) eq. 3, term by term, with k(a, b) = (a.b / d + 1)^3."""
    d = x.shape[1]

    def k(a, b):
        return (sum(ai * bi for ai, bi in zip(a, b)) / d + 1.0) ** 3

    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2.0 * xy


@pytest.fixture(scope='module')
def small_sets():
    rng = np.random.default_rng(0)
    return rng.standard_normal((30, 5)), rng.standard_normal((30, 5)) + 0.3


def test_whole_set_subsets_match_double_loop(small_sets):
    # subset_size is capped at 30, so every subset is a permutation of all rows, which
    # leaves the MMD unchanged: every subset equals the double loop (measured diff 1.5e-15).
    real, fake = small_sets
    mean, std = kernel_inception_distance(real, fake, num_subsets=3, subset_size=1000)
    assert mean == pytest.approx(_mmd2_double_loop(real, fake), rel=1e-12, abs=1e-14)
    assert std < 1e-12


def test_subset_average_is_unbiased_for_whole_set_mmd(small_sets):
    # A U-statistic on a uniformly drawn subset has the whole-sample U-statistic as its
    # expectation, so the subset mean must sit within a few standard errors of it
    # (measured: 1.1 standard errors for this seed; the bound is 4).
    real, fake = small_sets
    num_subsets = 2000
    mean, std = kernel_inception_distance(real, fake, num_subsets=num_subsets, subset_size=10)
    assert abs(mean - _mmd2_double_loop(real, fake)) < 4 * std / np.sqrt(num_subsets)


def test_same_distribution_near_zero_shifted_positive():
    rng = np.random.default_rng(1)
    real, same = rng.standard_normal((1000, 16)), rng.standard_normal((1000, 16))
    shifted = rng.standard_normal((1000, 16)) + 0.5
    same_mean, same_std = kernel_inception_distance(real, same, num_subsets=20, subset_size=150)
    shift_mean, shift_std = kernel_inception_distance(
        real, shifted, num_subsets=20, subset_size=150
    )
    # Unbiased, so with no difference the mean is noise around 0, well inside the spread of
    # single-subset estimates (measured |mean| / std = 0.04; up to 0.5 over seeds 0-3).
    assert abs(same_mean) < same_std
    # Measured: shifted mean ~1.0 = 7.8 std, and 1600x the same-distribution value.
    assert shift_mean > 5 * shift_std
    assert shift_mean > 50 * abs(same_mean)


def test_seed_controls_subsets():
    rng = np.random.default_rng(2)
    real, fake = rng.standard_normal((50, 4)), rng.standard_normal((60, 4))
    a = kernel_inception_distance(real, fake, num_subsets=5, subset_size=20, seed=0)
    assert kernel_inception_distance(real, fake, num_subsets=5, subset_size=20, seed=0) == a
    assert kernel_inception_distance(real, fake, num_subsets=5, subset_size=20, seed=1) != a
