import itertools

import numpy as np
import pytest
import scipy.stats

from gan_jax.data import (
    DatasetUnavailableError,
    StackedMnistSource,
    get_source,
    make_train_iterator,
)
from gan_jax.data.idx import MNIST_IDX_FILES, read_idx
from gan_jax.data.image_ops import center_crop_resize
from gan_jax.data.source import ArraySource
from tests.helpers import write_idx

WEIGHTS = np.array([100, 10, 1])


def _digit_images(count, size=6, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, size, size), dtype=np.uint8)


@pytest.fixture
def digit_pool():
    """40 random grey 6x6 "digits"; digit j has label 3j mod 10, so each label 4 times."""
    return ArraySource(
        _digit_images(40)[..., None],
        (3 * np.arange(40)) % 10,
        name='pool',
        resolution=6,
        channels=1,
        num_classes=10,
    )


def _pool_labels(pool):
    return np.array([pool.read(j)[1] for j in range(len(pool))])


@pytest.fixture
def idx_folder(tmp_path):
    """MNIST's four IDX files, tiny: 30 train and 10 test 6x6 digits, labels j mod 10."""
    images = _digit_images(40, seed=1)
    for split, part in (('train', slice(0, 30)), ('t10k', slice(30, 40))):
        write_idx(tmp_path / f'{split}-images-idx3-ubyte.gz', images[part])
        write_idx(
            tmp_path / f'{split}-labels-idx1-ubyte.gz', (np.arange(40)[part] % 10).astype(np.uint8)
        )
    return tmp_path, images


def test_channels_are_the_indexed_digits(digit_pool):
    source = StackedMnistSource(digit_pool, resolution=6, size=300)
    assert len(source) == 300 and source.digit_indices.shape == (300, 3)
    assert source.image_shape == (6, 6, 3) and source.num_classes == 1000
    for i in range(len(source)):
        example = source[i]
        assert example['image'].dtype == np.uint8 and example['label'].dtype == np.int32
        digits = [digit_pool.read(j) for j in source.digit_indices[i]]
        for channel, (digit, _) in enumerate(digits):
            np.testing.assert_array_equal(example['image'][..., channel], digit[..., 0])
        assert example['label'] == WEIGHTS @ [label for _, label in digits]


def test_resized_like_every_source(digit_pool):
    source = StackedMnistSource(digit_pool, resolution=4, size=20)
    for i in range(len(source)):
        image = source[i]['image']
        assert image.shape == (4, 4, 3)
        for channel, j in enumerate(source.digit_indices[i]):
            np.testing.assert_array_equal(
                image[..., channel], center_crop_resize(digit_pool.read(j)[0], 4)[..., 0]
            )


class CountingPool(ArraySource):
    """digit_pool that counts how often each digit is read."""

    def __init__(self, pool):
        super().__init__(
            pool._images, pool._labels, name='counting', resolution=6, channels=1, num_classes=10
        )
        self.reads = np.zeros(len(pool), int)

    def read(self, index):
        self.reads[index] += 1
        return super().read(index)


@pytest.mark.parametrize('resolution', [6, 4])
def test_as_arrays_are_the_examples_reading_each_digit_once(digit_pool, resolution):
    source = StackedMnistSource(digit_pool, resolution=resolution, size=300)
    examples = [source[i] for i in range(len(source))]
    counting = CountingPool(digit_pool)
    source.digits = counting
    arrays = source.as_arrays()
    np.testing.assert_array_equal(arrays['image'], np.stack([e['image'] for e in examples]))
    np.testing.assert_array_equal(arrays['label'], [e['label'] for e in examples])
    assert arrays['image'].dtype == np.uint8 and arrays['label'].dtype == np.int32
    used = np.zeros(len(digit_pool), int)
    used[np.unique(source.digit_indices)] = 1
    np.testing.assert_array_equal(counting.reads, used)


def test_labels_cover_all_1000_modes_uniformly(digit_pool):
    source = StackedMnistSource(digit_pool, resolution=6)
    assert len(source) == 128_000
    labels = _pool_labels(digit_pool)[source.digit_indices] @ WEIGHTS
    np.testing.assert_array_equal(labels[:500], [source[i]['label'] for i in range(500)])
    counts = np.bincount(labels, minlength=1000)
    assert len(counts) == 1000 and counts.min() > 0
    # Uniform digit labels make the 1000 modes equiprobable; fails ~1e-4 of the time if right.
    assert scipy.stats.chisquare(counts).pvalue > 1e-4
    usage = np.bincount(source.digit_indices.ravel(), minlength=len(digit_pool))
    assert scipy.stats.chisquare(usage).pvalue > 1e-4


def test_fixed_for_a_seed(digit_pool):
    first, again = (StackedMnistSource(digit_pool, resolution=6, seed=5) for _ in range(2))
    other = StackedMnistSource(digit_pool, resolution=6, seed=6)
    np.testing.assert_array_equal(first.digit_indices, again.digit_indices)
    assert not np.array_equal(first.digit_indices, other.digit_indices)
    for i in (0, 1, 127_999):
        np.testing.assert_array_equal(first[i]['image'], again[i]['image'])
        assert first[i]['label'] == again[i]['label']


def test_rejects_sources_that_are_not_grey_digits(digit_pool, indexed_source):
    rgb = ArraySource(
        np.zeros((4, 6, 6, 3), np.uint8),
        np.arange(4),
        name='rgb',
        resolution=6,
        channels=3,
        num_classes=10,
    )
    for source in (rgb, indexed_source):  # indexed_source has 12 classes.
        with pytest.raises(ValueError, match='grey source of 10 digit classes.*name='):
            StackedMnistSource(source, resolution=6)


def test_iterator_yields_rgb_stacks(digit_pool):
    source = StackedMnistSource(digit_pool, resolution=6, size=24)
    steps = list(
        itertools.islice(
            make_train_iterator(source, global_batch=4, batches_per_step=2, seed=0, num_threads=2),
            3,
        )
    )
    for step in steps:
        assert step['image'].shape == (2, 4, 6, 6, 3) and step['image'].dtype == np.uint8
        assert step['label'].shape == (2, 4) and step['label'].dtype == np.int32


def test_get_source_from_idx_folder(data_config, idx_folder):
    folder, images = idx_folder
    source = get_source(data_config(source='stacked_mnist', path=str(folder)), resolution=6)
    assert isinstance(source, StackedMnistSource) and len(source) == 128_000
    assert source.image_shape == (6, 6, 3) and str(folder) in source.name
    pool = source.digits
    assert len(pool) == 40 and pool.num_classes == 10
    for j in (0, 29, 30, 39):  # Train digits first, then test digits.
        np.testing.assert_array_equal(pool.read(j)[0][..., 0], images[j])
        assert pool.read(j)[1] == j % 10


def test_idx_folder_must_hold_all_four_files(data_config, idx_folder):
    folder, _ = idx_folder
    (folder / 't10k-labels-idx1-ubyte.gz').unlink()
    with pytest.raises(FileNotFoundError) as error:
        get_source(data_config(source='stacked_mnist', path=str(folder)), resolution=6)
    assert str(folder) in str(error.value) and "['t10k-labels-idx1-ubyte.gz']" in str(error.value)
    assert all(name in str(error.value) for name in MNIST_IDX_FILES)


def test_path_must_be_a_folder(data_config, tmp_path):
    missing = str(tmp_path / 'no_such_folder')
    with pytest.raises(
        FileNotFoundError,
        match="data.source='stacked_mnist' needs data.path to be an existing "
        "folder, got '.*no_such_folder'",
    ):
        get_source(data_config(source='stacked_mnist', path=missing), resolution=28)


def test_rejects_one_channel(data_config, idx_folder):
    config = data_config(source='stacked_mnist', path=str(idx_folder[0]), channels=1)
    with pytest.raises(ValueError, match='data.channels must be None or 3, got 1'):
        get_source(config, resolution=28)


def test_without_path_needs_tfds_mnist(data_config, tmp_path):
    config = data_config(source='stacked_mnist', tfds_data_dir=str(tmp_path))
    with pytest.raises(DatasetUnavailableError, match="'mnist' is not prepared"):
        get_source(config, resolution=28)


def test_real_mnist_idx(data_config, shared_data_dir):
    folder = shared_data_dir / 'mnist'
    if not folder.is_dir():
        pytest.skip(f'real MNIST files not found in {folder} (set GAN_JAX_SHARED_DATA)')
    source = get_source(data_config(source='stacked_mnist', path=str(folder)), resolution=28)
    images, labels = (
        np.concatenate([read_idx(folder / f'{split}-{kind}.gz') for split in ('train', 't10k')])
        for kind in ('images-idx3-ubyte', 'labels-idx1-ubyte')
    )
    assert len(source) == 128_000 and len(source.digits) == len(images) == 70_000
    for i in range(0, 128_000, 997):
        example, indices = source[i], source.digit_indices[i]
        assert example['image'].shape == (28, 28, 3) and example['image'].dtype == np.uint8
        np.testing.assert_array_equal(example['image'], np.moveaxis(images[indices], 0, -1))
        assert example['label'] == WEIGHTS @ labels[indices]
    counts = np.bincount(labels[source.digit_indices] @ WEIGHTS, minlength=1000)
    assert len(counts) == 1000 and counts.min() > 0
    # MNIST's digits are not equally frequent: the modes follow the product of their frequencies.
    frequency = np.bincount(labels) / len(labels)
    expected = np.einsum('i,j,k->ijk', frequency, frequency, frequency).ravel() * counts.sum()
    assert scipy.stats.chisquare(counts, expected).pvalue > 1e-4


@pytest.mark.slow
def test_real_mnist_tfds(data_config, prepared_tfds_mnist):
    config = data_config(source='stacked_mnist', tfds_data_dir=prepared_tfds_mnist)
    source = get_source(config, resolution=32)
    assert source.name == 'stacked_mnist:tfds:mnist/train+test'
    assert len(source) == 128_000 and len(source.digits) == 70_000
    for i in range(0, 128_000, 6400):
        example = source[i]
        assert example['image'].shape == (32, 32, 3) and example['image'].dtype == np.uint8
        digits = [source.digits.read(j) for j in source.digit_indices[i]]
        assert example['label'] == WEIGHTS @ [label for _, label in digits]
        np.testing.assert_array_equal(
            example['image'], center_crop_resize(np.concatenate([d for d, _ in digits], -1), 32)
        )
