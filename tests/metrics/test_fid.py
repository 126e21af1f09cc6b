"""FID vs closed forms, scipy sqrtm and an exact SVD identity; streaming moments vs np.cov."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from gan_jax.metrics.fid import (
    ClassMomentAccumulator,
    MomentAccumulator,
    frechet_distance,
    intra_frechet_distances,
)


def _features(rng, n, d, shift=0.0):
    """Correlated, non-centred features: a random linear map of white noise."""
    return rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) * 0.3 + shift


def _moments(x):
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _fid_sqrtm(mu1, cov1, mu2, cov2):
    """pytorch-fid's formula: a general matrix square root of the product."""
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(cov1 @ cov2).real
    return diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean)


def _fid_svd(x1, x2):
    """Exact identity for sample covariances C_i = X_i^T X_i / (n_i - 1) (X_i centred):
    the eigenvalues of C1 C2 are the squared singular values of X1 X2^T / sqrt((n1-1)(n2-1)),
    so tr sqrt(C1 C2) is that matrix's nuclear norm. With X_i = Q_i R_i the nuclear norm is
    that of R1 R2^T (orthonormal Q_i do not change singular values), a small matrix.
    Well conditioned even when n < d, and shares no step with the eigh route."""
    (mu1, cov1), (mu2, cov2) = _moments(x1), _moments(x2)
    r1, r2 = np.linalg.qr(x1 - mu1, mode='r'), np.linalg.qr(x2 - mu2, mode='r')
    nuclear = np.linalg.svd(r1 @ r2.T, compute_uv=False).sum()
    trace_sqrt = nuclear / np.sqrt((len(x1) - 1) * (len(x2) - 1))
    diff = mu1 - mu2
    return diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt


def test_diagonal_gaussians_closed_form():
    # For diagonal C1 = diag(a), C2 = diag(b): FID = |dmu|^2 + sum (sqrt(a) - sqrt(b))^2.
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.1, 3.0, 16), rng.uniform(0.1, 3.0, 16)
    mu1, mu2 = rng.standard_normal(16), rng.standard_normal(16)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_commuting_covariances_closed_form():
    # C1 = Q diag(a) Q^T, C2 = Q diag(b) Q^T commute, so sqrt(C1 C2) = Q diag(sqrt(ab)) Q^T
    # and the diagonal formula still holds although neither matrix is diagonal.
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((32, 32)))
    a, b = rng.uniform(0.1, 3.0, 32), rng.uniform(0.1, 3.0, 32)
    mu1, mu2 = rng.standard_normal(32), rng.standard_normal(32)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize('n', [2000, 40], ids=['full_rank', 'rank_deficient'])
def test_matches_sqrtm_and_svd_identity(n):
    # Measured relative differences: vs sqrtm 4e-14 (n=2000) and 2e-8 (n=40, where sqrtm
    # of the singular product is itself only that accurate); vs the SVD identity 1.4e-14
    # (n=2000) and 8e-16 (n=40).
    rng = np.random.default_rng(2)
    x1, x2 = _features(rng, n, 64), _features(rng, n, 64, shift=0.1)
    got = frechet_distance(*_moments(x1), *_moments(x2))
    assert got == pytest.approx(_fid_sqrtm(*_moments(x1), *_moments(x2)), rel=1e-6)
    assert got == pytest.approx(_fid_svd(x1, x2), rel=1e-12)


@pytest.mark.parametrize('n', [2000, 40], ids=['full_rank', 'rank_deficient'])
def test_distance_to_itself_is_zero(n):
    # Relative to tr(C) round-off leaves 2e-14 (n=2000) and 1e-15 (n=40); square roots of
    # round-off eigenvalues in the null space, if kept, would show up as ~1e-8.
    mu, cov = _moments(_features(np.random.default_rng(3), n, 64))
    assert abs(frechet_distance(mu, cov, mu, cov)) < 1e-12 * np.trace(cov)


def test_streaming_moments_match_np_cov():
    # Uneven batches (one of a single row, one empty) on a large offset, where the naive
    # sum-of-outer-products formula would lose digits; jax batches are accepted too.
    rng = np.random.default_rng(4)
    x = _features(rng, 700, 24, shift=1e3)
    acc = MomentAccumulator(24)
    for start, stop in [(0, 1), (1, 1), (1, 300), (300, 303), (303, 700)]:
        acc.update(x[start:stop])
    acc.update(jnp.asarray(x[:0]))
    mean, cov = acc.result()
    assert acc.count == 700
    np.testing.assert_allclose(mean, x.mean(axis=0), rtol=1e-12, atol=0)
    np.testing.assert_allclose(cov, np.cov(x, rowvar=False), rtol=0, atol=1e-10)


def test_accumulator_rejects_bad_input():
    acc = MomentAccumulator(3)
    with pytest.raises(ValueError, match='shape'):
        acc.update(np.zeros((4, 2)))
    acc.update(np.zeros((1, 3)))
    with pytest.raises(ValueError, match='at least 2'):
        acc.result()


def test_intra_fid_is_the_fid_of_each_class():
    rng = np.random.default_rng(0)
    classes, d = 3, 4
    fake, real = _features(rng, 60, d), _features(rng, 45, d, shift=0.5)
    fake_labels, real_labels = np.arange(60) % classes, rng.permutation(np.arange(45) % classes)
    fake_acc = ClassMomentAccumulator(d, range(classes))
    real_acc = ClassMomentAccumulator(d, range(classes))
    for rows in (slice(0, 25), slice(25, None)):  # Streamed in two batches.
        fake_acc.update(fake[rows], fake_labels[rows])
        real_acc.update(real[rows], real_labels[rows])
    by_hand = [
        frechet_distance(*_moments(fake[fake_labels == c]), *_moments(real[real_labels == c]))
        for c in range(classes)
    ]
    np.testing.assert_allclose(
        intra_frechet_distances(*fake_acc.result(), *real_acc.result()), by_hand, rtol=1e-10
    )
    assert list(real_acc.counts()) == [15, 15, 15]


def test_intra_fid_needs_two_samples_per_class():
    acc = ClassMomentAccumulator(2, range(3))
    acc.update(np.ones((5, 2)), np.array([0, 0, 1, 1, 1]))
    with pytest.raises(ValueError, match=r'classes \[2\] have fewer than 2 samples'):
        acc.result()


def test_class_moments_of_a_range_of_classes_leave_the_other_rows_out():
    rng = np.random.default_rng(1)
    features, labels = _features(rng, 40, 3), np.arange(40) % 5
    acc = ClassMomentAccumulator(3, range(2, 4))
    acc.update(features[:17], labels[:17])
    acc.update(features[17:], labels[17:])
    means, covs = acc.result()
    for row, c in enumerate((2, 3)):
        np.testing.assert_allclose(means[row], features[labels == c].mean(0), rtol=1e-12)
        expected = np.cov(features[labels == c], rowvar=False)
        np.testing.assert_allclose(covs[row], expected, rtol=1e-10)
    assert list(acc.counts()) == [8, 8]
