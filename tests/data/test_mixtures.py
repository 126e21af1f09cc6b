import itertools

import numpy as np
import pytest
import scipy.stats

from gan_jax.data import MIXTURES, MixtureSource, get_source, make_train_iterator
from gan_jax.metrics.modes import mixture_mode_stats


def _examples(source):
    """Every point and mode label, read through the public random-access interface."""
    examples = [source[i] for i in range(len(source))]
    return np.stack([e['image'] for e in examples]), np.array([e['label'] for e in examples])


@pytest.fixture(scope='module', params=['ring', 'grid'])
def mixture_data(request):
    source = MixtureSource(MIXTURES[request.param])
    return source, *_examples(source)


def test_ring_is_pacgans():
    ring = MIXTURES['ring']
    angles = 2 * np.pi * np.arange(8) / 8
    np.testing.assert_allclose(
        ring.centers, np.stack([np.cos(angles), np.sin(angles)], 1), rtol=0, atol=1e-15
    )
    np.testing.assert_array_equal(ring.centers[0], [1, 0])  # First mode at angle 0...
    np.testing.assert_allclose(np.diff(np.unwrap(np.arctan2(*ring.centers.T[::-1]))), np.pi / 4)
    assert ring.std == 0.01  # ...then counter-clockwise, radius 1.


def test_grid_is_pacgans():
    grid = MIXTURES['grid']
    expected = [(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)]
    np.testing.assert_array_equal(grid.centers, expected)
    np.testing.assert_array_equal(grid.centers[5 * 3 + 1], [2, -2])  # Mode 5i + j: x = -4 + 2i.
    assert grid.std == 0.05


def test_per_mode_mean_and_std(mixture_data):
    source, points, labels = mixture_data
    centers, std = source.mixture.centers, source.mixture.std
    assert points.shape == (100_000, 2) and points.dtype == np.float32
    for mode, center in enumerate(centers):
        x = points[labels == mode].astype(np.float64)
        n = len(x)
        # Within 5 standard errors per coordinate: a correct sampler fails this ~1e-4 of the time.
        assert np.all(np.abs(x.mean(0) - center) < 5 * std / np.sqrt(n)), mode
        assert np.all(np.abs(x.std(0, ddof=1) / std - 1) < 5 / np.sqrt(2 * (n - 1))), mode
    # The modes lie 40+ std apart, so every point's nearest centre is its label.
    nearest = np.linalg.norm(points[:, None] - centers[None], axis=-1).argmin(1)
    np.testing.assert_array_equal(nearest, labels)


def test_modes_are_equiprobable(mixture_data):
    source, _, labels = mixture_data
    counts = np.bincount(labels, minlength=source.num_classes)
    assert len(counts) == source.num_classes and counts.sum() == 100_000
    assert scipy.stats.chisquare(counts).pvalue > 1e-4


def test_the_data_scores_as_a_perfect_generator(mixture_data):
    source, points, _ = mixture_data
    stats = mixture_mode_stats(points, source.mixture.centers, source.mixture.std)
    assert stats['modes_covered'] == source.num_classes
    # 2-D isotropic Gaussian: P(|x - mu| < 3 std) = 1 - exp(-9/2); 5 binomial standard errors.
    p = 1 - np.exp(-4.5)
    assert abs(stats['high_quality_fraction'] - p) < 5 * np.sqrt(p * (1 - p) / len(points))
    assert stats['reverse_kl'] < 1e-3


def test_fixed_for_a_seed_and_different_across_seeds():
    ring = MIXTURES['ring']
    first, again = _examples(MixtureSource(ring, seed=0)), _examples(MixtureSource(ring, seed=0))
    other = _examples(MixtureSource(ring, seed=1))
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


@pytest.mark.parametrize('name, seed', [('ring', 3), ('grid', 7)])
def test_draws_in_pacgans_order(name, seed):
    """ALI's GaussianMixtureDistribution, which PacGAN uses: all modes, then sample by sample
    mean + cholesky(cov) @ normal(2), from one RandomState."""
    mixture = MIXTURES[name]
    rng = np.random.RandomState(seed)
    modes = rng.choice(
        len(mixture.centers),
        size=300,
        replace=True,
        p=[1 / len(mixture.centers)] * len(mixture.centers),
    )
    cholesky = np.linalg.cholesky(mixture.std**2 * np.eye(2))
    reference = [mixture.centers[m] + cholesky.dot(rng.normal(size=(2,))) for m in modes]
    points, labels = _examples(MixtureSource(mixture, num_samples=300, seed=seed))
    np.testing.assert_array_equal(points, np.asarray(reference, np.float32))
    np.testing.assert_array_equal(labels, modes)


def test_as_arrays_are_the_examples(mixture_data):
    source, points, modes = mixture_data
    arrays = source.as_arrays()
    np.testing.assert_array_equal(arrays['image'], points)
    np.testing.assert_array_equal(arrays['label'], modes)
    assert arrays['image'].dtype == np.float32 and arrays['label'].dtype == np.int32


def test_iterator_batches_points_unchanged(mixture_data):
    source = mixture_data[0]
    steps = list(
        itertools.islice(
            make_train_iterator(
                source,
                global_batch=8,
                batches_per_step=2,
                seed=0,
                process_index=1,
                process_count=2,
                num_threads=2,
            ),
            3,
        )
    )
    for step in steps:
        assert step['image'].shape == (2, 4, 2) and step['image'].dtype == np.float32
        assert step['label'].shape == (2, 4) and step['label'].dtype == np.int32
        distances = np.linalg.norm(step['image'][..., None, :] - source.mixture.centers, axis=-1)
        np.testing.assert_array_equal(distances.argmin(-1), step['label'])


@pytest.mark.parametrize('name, modes', [('ring', 8), ('grid', 25)])
def test_get_source(data_config, name, modes):
    source = get_source(data_config(source=name), resolution=32)
    assert isinstance(source, MixtureSource) and source.mixture is MIXTURES[name]
    assert source.name == name and len(source) == 100_000
    assert source.image_shape == (2,) and source.num_classes == modes


def test_get_source_rejects_channels_for_points(data_config):
    with pytest.raises(ValueError, match="data.source='ring' is 2-D points; data.channels"):
        get_source(data_config(source='ring', channels=3), resolution=32)
