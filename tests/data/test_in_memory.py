import numpy as np
import pytest

from gan_jax.data import get_source


@pytest.mark.parametrize('resolution', [28, 32])
def test_digits(data_config, resolution):
    source = get_source(data_config(source='digits'), resolution=resolution)
    examples = [source[i] for i in range(len(source))]
    images = np.stack([e['image'] for e in examples])
    assert len(source) == 1797 and source.num_classes == 10
    assert source.image_shape == images.shape[1:] == (resolution, resolution, 1)
    assert images.dtype == np.uint8 and images.min() == 0 and images.max() == 255
    assert {int(e['label']) for e in examples} == set(range(10))
    assert all(e['label'].dtype == np.int32 for e in examples)
    arrays = source.as_arrays()  # What data.on_device holds: the same rows.
    np.testing.assert_array_equal(arrays['image'], images)
    np.testing.assert_array_equal(arrays['label'], [e['label'] for e in examples])
    assert arrays['label'].dtype == np.int32


def test_digits_forced_to_rgb(data_config):
    source = get_source(data_config(source='digits', channels=3), resolution=16)
    image = source[0]['image']
    assert source.image_shape == image.shape == (16, 16, 3)
    np.testing.assert_array_equal(image[..., 0], image[..., 2])


def _npz(tmp_path, **arrays):
    path = tmp_path / 'data.npz'
    np.savez(path, **arrays)
    return str(path)


def test_npz_grey_without_labels(data_config, tmp_path):
    x = np.arange(3 * 8 * 8, dtype=np.uint8).reshape(3, 8, 8)
    source = get_source(data_config(source='npz', path=_npz(tmp_path, x=x)), resolution=8)
    assert len(source) == 3 and source.num_classes is None
    np.testing.assert_array_equal(source[1]['image'], x[1][..., None])
    assert source[1]['label'] == 0


def test_npz_rgb_with_labels_is_cropped_and_resized(data_config, tmp_path):
    x = np.zeros((4, 6, 10, 3), np.uint8)
    x[:, :, 2:8] = 200  # The central 6x6 square; the 2 columns either side are cropped away.
    y = np.array([3, 1, 4, 1])
    source = get_source(data_config(source='npz', path=_npz(tmp_path, x=x, y=y)), resolution=3)
    assert source.image_shape == (3, 3, 3) and source.num_classes == 5
    assert [int(source[i]['label']) for i in range(4)] == [3, 1, 4, 1]
    np.testing.assert_array_equal(source[0]['image'], np.full((3, 3, 3), 200))


@pytest.mark.parametrize(
    'arrays, problem',
    [
        (dict(x=np.zeros((2, 4, 4), np.float32)), '`x` is float32'),
        (dict(x=np.zeros((2, 4, 4, 2), np.uint8)), 'of shape (2, 4, 4, 2)'),
        (dict(x=np.zeros((2, 4, 4), np.uint8), y=np.zeros(3, np.int64)), '`y` is int64'),
        (dict(images=np.zeros((2, 4, 4), np.uint8)), 'has no array `x`'),
    ],
)
def test_npz_rejects_bad_arrays(data_config, tmp_path, arrays, problem):
    path = _npz(tmp_path, **arrays)
    with pytest.raises(ValueError) as error:
        get_source(data_config(source='npz', path=path), resolution=4)
    assert path in str(error.value) and problem in str(error.value)
    assert 'uint8 `x` of shape (N, H, W)' in str(error.value)
