"""Inception Score on hand-computed cases and against a scipy softmax/entropy computation."""

import numpy as np
import pytest
import scipy.special
import scipy.stats

from gan_jax.metrics.inception_score import inception_score

# exp(-1000) underflows to exactly 0 in float64, so these logits give exact one-hot p(y|x).
ONE_HOT_SCALE = 1000.0


def test_confident_uniformly_spread_predictions_score_num_classes():
    # Each split of 10 rows holds classes 0..9 once: p(y) is uniform, every KL(e_k || p(y))
    # is log 10, so every split scores exactly 10.
    logits = ONE_HOT_SCALE * np.eye(10)[np.tile(np.arange(10), 10)]
    mean, std = inception_score(logits, splits=10)
    assert mean == pytest.approx(10.0, rel=1e-12)
    assert std < 1e-12


@pytest.mark.parametrize('logits', [np.array([2.0, -1.0, 0.5]), ONE_HOT_SCALE * np.eye(3)[1]])
def test_identical_predictions_score_one(logits):
    # p(y) equals every p(y|x), so all KL terms vanish: IS = exp(0) = 1. The one-hot case
    # has two classes nobody predicts (p = 0, log p(y) = -1000), which must not give NaN.
    mean, std = inception_score(np.tile(logits, (20, 1)), splits=2)
    assert mean == pytest.approx(1.0, abs=1e-12)
    assert std == 0.0


def test_two_sample_hand_computed_case():
    # Logits (log 3, 0) and (0, log 3) give p1 = (3/4, 1/4), p2 = (1/4, 3/4); p(y) = (1/2, 1/2).
    # KL(p1 || p(y)) = 3/4 log(3/2) + 1/4 log(1/2) = 3/4 log 3 - log 2, and the same for p2,
    # so one split scores exp(3/4 log 3 - log 2) = 3^(3/4) / 2 = 1.13975...
    logits = np.array([[np.log(3.0), 0.0], [0.0, np.log(3.0)]])
    mean, std = inception_score(logits, splits=1)
    assert mean == pytest.approx(3.0**0.75 / 2.0, rel=1e-14)
    assert std == 0.0
    # Two splits of one sample each: p(y) = p(y|x) within each, so both score 1.
    assert inception_score(logits, splits=2) == pytest.approx((1.0, 0.0), abs=1e-14)


def test_matches_scipy_entropy_with_uneven_splits():
    # 103 rows in 10 splits: sizes 10 or 11 at the original code's boundaries i*N // splits.
    # Measured relative differences: 3e-16 (mean), 9e-16 (std).
    logits = 3.0 * np.random.default_rng(0).standard_normal((103, 7))
    probs = scipy.special.softmax(logits, axis=1)
    scores = []
    for i in range(10):
        part = probs[i * 103 // 10 : (i + 1) * 103 // 10]
        kl = scipy.stats.entropy(part, part.mean(axis=0)[None, :], axis=1)
        scores.append(np.exp(kl.mean()))
    mean, std = inception_score(logits, splits=10)
    assert mean == pytest.approx(np.mean(scores), rel=1e-12)
    assert std == pytest.approx(np.std(scores), rel=1e-9)


def test_rejects_more_splits_than_samples():
    with pytest.raises(ValueError, match='splits'):
        inception_score(np.zeros((3, 4)), splits=4)
