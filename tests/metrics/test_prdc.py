"""PRDC vs a full-distance-matrix implementation of the papers' definitions; limits; batching."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from gan_jax.metrics.prdc import density_coverage, knn_radii, prdc, precision_recall


def _reference(real, fake, pr_k, dc_k):
    """The definitions on full matrices: direct differences (cdist), fully sorted rows.

    Returns integer counts, so comparisons with the batched code can be exact.
    """
    real_real, fake_fake, real_fake = cdist(real, real), cdist(fake, fake), cdist(real, fake)
    real_radius = np.sort(real_real, axis=1)  # Column k: k-th neighbour, self at column 0.
    fake_radius = np.sort(fake_fake, axis=1)[:, pr_k]
    return {
        'precision': (real_fake <= real_radius[:, [pr_k]]).any(axis=0).sum(),
        'recall': (real_fake <= fake_radius[None, :]).any(axis=1).sum(),
        'density': (real_fake < real_radius[:, [dc_k]]).sum(),
        'coverage': (real_fake.min(axis=1) < real_radius[:, dc_k]).sum(),
    }


def _as_counts(result, n_real, n_fake, dc_k):
    """Undo the normalisation: each metric back to its integer count."""
    scale = {'precision': n_fake, 'recall': n_real, 'density': dc_k * n_fake, 'coverage': n_real}
    return {name: result[name] * scale[name] for name in scale}


@pytest.fixture(scope='module')
def overlapping_sets():
    # Partly overlapping clouds of unequal size, so no metric sits at 0 or 1.
    rng = np.random.default_rng(0)
    return rng.standard_normal((120, 8)), 1.3 * rng.standard_normal((90, 8)) + 0.4


def test_knn_radius_excludes_the_point_itself():
    # Points on a line at 0, 1, 3, 6: nearest other points of 0 are at 1 then 3.
    x = np.array([[0.0], [1.0], [3.0], [6.0]])
    radii = knn_radii(x, (1, 2), batch_size=3)
    np.testing.assert_allclose(radii[1], [1.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(radii[2], [3.0, 2.0, 3.0, 5.0])


@pytest.mark.parametrize('offset', [0.0, 1e3])
def test_counts_match_full_matrix_reference(overlapping_sets, offset):
    # A common offset leaves every distance unchanged but makes |a|^2 + |b|^2 - 2 a.b a
    # difference of numbers ~1e7 times larger: float64 still resolves every comparison.
    real, fake = (x + offset for x in overlapping_sets)
    got = _as_counts(prdc(real, fake, pr_k=3, dc_k=5, batch_size=32), 120, 90, 5)
    expected = _reference(real, fake, pr_k=3, dc_k=5)
    # Counts are integers, so agreeing to 1e-9 means equal counts; measured: equal exactly
    # (precision 46/90, recall 115/120, density 149/(5*90), coverage 81/120).
    assert got == pytest.approx(expected, abs=1e-9)
    assert 0 < min(expected.values()) and expected['precision'] < 90 and expected['recall'] < 120


def test_wrappers_agree_with_combined(overlapping_sets):
    real, fake = overlapping_sets
    combined = prdc(real, fake, pr_k=4, dc_k=6)
    assert precision_recall(real, fake, k=4) == (combined['precision'], combined['recall'])
    assert density_coverage(real, fake, k=6) == (combined['density'], combined['coverage'])


@pytest.mark.parametrize('batch_size', [1, 7, 120, 10_000])
def test_batching_does_not_change_results(overlapping_sets, batch_size):
    real, fake = overlapping_sets
    assert prdc(real, fake, batch_size=batch_size) == prdc(real, fake, batch_size=64)


def test_identical_sets_score_one():
    x = np.random.default_rng(1).standard_normal((60, 5))
    result = prdc(x, x.copy())
    assert (result['precision'], result['recall'], result['coverage']) == (1.0, 1.0, 1.0)


def test_far_apart_sets_score_zero():
    rng = np.random.default_rng(2)
    real, fake = rng.standard_normal((50, 5)), rng.standard_normal((40, 5)) + 100.0
    assert prdc(real, fake) == {'precision': 0.0, 'recall': 0.0, 'density': 0.0, 'coverage': 0.0}


def test_rejects_too_few_samples_for_k():
    with pytest.raises(ValueError, match='more than k=5'):
        prdc(np.zeros((5, 2)), np.zeros((10, 2)))
