"""Mode metrics on constructed sample sets whose answers can be worked out by hand."""

import numpy as np
import pytest

from gan_jax.metrics.modes import (
    mixture_mode_stats,
    stacked_mnist_mode_stats,
)

STD = 0.02
ANGLES = 2 * np.pi * np.arange(8) / 8
RING = 2.0 * np.stack([np.cos(ANGLES), np.sin(ANGLES)], axis=1)  # The 8-Gaussian ring.


def test_samples_on_every_mode():
    stats = mixture_mode_stats(np.repeat(RING, 25, axis=0), RING, STD)
    assert stats['modes_covered'] == 8
    assert stats['high_quality_fraction'] == 1.0
    assert stats['reverse_kl'] == pytest.approx(0.0, abs=1e-12)


def test_collapse_to_one_mode():
    # p = (1, 0, ..., 0): KL(p || U_8) = 1 * log(1 / (1/8)) = log 8.
    stats = mixture_mode_stats(np.tile(RING[3], (100, 1)), RING, STD)
    assert stats['modes_covered'] == 1
    assert stats['high_quality_fraction'] == 1.0
    assert stats['reverse_kl'] == pytest.approx(np.log(8), rel=1e-12)


def test_samples_far_from_every_mode():
    # The ring's centre is 2 / 0.02 = 100 std from every mode.
    stats = mixture_mode_stats(np.zeros((50, 2)), RING, STD)
    assert stats['modes_covered'] == 0
    assert stats['high_quality_fraction'] == 0.0
    assert np.isnan(stats['reverse_kl'])


def test_three_std_boundary_and_min_count():
    # Six samples: 3 on mode 0, one 2.9 std from mode 1 (high quality), one 3.1 std from
    # mode 2 (not), one at the origin (not). High quality 4/6, histogram (3, 1, 0, ...),
    # KL = 3/4 log(3/4 * 8) + 1/4 log(1/4 * 8) = 3/4 log 6 + 1/4 log 2.
    radial = RING / 2.0  # Unit vectors: offsets along them move away from the origin.
    samples = np.concatenate(
        [
            np.repeat(RING[:1], 3, axis=0),
            RING[1:2] + 2.9 * STD * radial[1:2],
            RING[2:3] + 3.1 * STD * radial[2:3],
            np.zeros((1, 2)),
        ]
    )
    stats = mixture_mode_stats(samples, RING, STD)
    assert stats['modes_covered'] == 2
    assert stats['high_quality_fraction'] == pytest.approx(4 / 6, rel=1e-15)
    assert stats['reverse_kl'] == pytest.approx(0.75 * np.log(6) + 0.25 * np.log(2), rel=1e-12)
    assert mixture_mode_stats(samples, RING, STD, min_count=2)['modes_covered'] == 1


def test_stacked_mnist_uniform_over_all_modes():
    all_triples = np.indices((10, 10, 10)).reshape(3, -1).T  # Every (d0, d1, d2) once.
    stats = stacked_mnist_mode_stats(np.concatenate([all_triples, all_triples]))
    assert stats['modes_covered'] == 1000
    assert stats['kl_to_uniform'] == pytest.approx(0.0, abs=1e-12)


def test_stacked_mnist_single_mode_and_hand_case():
    assert stacked_mnist_mode_stats(np.tile([4, 0, 7], (26, 1))) == pytest.approx(
        {'modes_covered': 1, 'kl_to_uniform': np.log(1000)}, rel=1e-12
    )
    # Modes 123 and 321 in ratio 3:1: KL = 3/4 log(750) + 1/4 log(250).
    digits = np.array([[1, 2, 3]] * 3 + [[3, 2, 1]])
    stats = stacked_mnist_mode_stats(digits)
    assert stats['modes_covered'] == 2
    assert stats['kl_to_uniform'] == pytest.approx(0.75 * np.log(750) + 0.25 * np.log(250))


def test_stacked_mnist_rejects_bad_digits():
    with pytest.raises(ValueError, match='0..9'):
        stacked_mnist_mode_stats(np.array([[1, 2, 10]]))
    with pytest.raises(ValueError, match='integer digits'):
        stacked_mnist_mode_stats(np.array([[1.0, 2.0, 3.0]]))
