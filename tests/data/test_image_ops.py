import numpy as np
import pytest
from PIL import Image

from gan_jax.data.image_ops import center_crop_resize, convert_channels

RED, GREEN = (255, 0, 0), (0, 255, 0)


def _with_red_borders(height, width, border):
    """A green image whose `border` outermost columns (or rows, if tall) are red."""
    image = np.zeros((height, width, 3), np.uint8)
    image[...] = RED
    if width > height:
        image[:, border : width - border] = GREEN
    else:
        image[border : height - border] = GREEN
    return image


def test_wide_image_loses_left_and_right_borders():
    image = _with_red_borders(10, 30, 10)
    np.testing.assert_array_equal(center_crop_resize(image, 10), image[:, 10:20])


def test_tall_image_loses_top_and_bottom_borders():
    resized = center_crop_resize(_with_red_borders(40, 20, 10), 5)
    assert resized.shape == (5, 5, 3) and resized.dtype == np.uint8
    assert (resized == GREEN).all()


def _lanczos3(x):
    """sinc(x) sinc(x / 3) on |x| < 3, else 0."""
    return np.where(np.abs(x) < 3, np.sinc(x) * np.sinc(x / 3), 0.0)


def _resize_weights(n_in, n_out):
    """[n_out, n_in] weights of an antialiased Lanczos-3 resize, written out: output pixel i
    is centred at input coordinate (i + 0.5) n_in / n_out; when shrinking, the kernel is
    stretched by n_in / n_out; weights past the border are dropped and each row sums to 1."""
    scale = n_in / n_out
    centres = (np.arange(n_out) + 0.5) * scale
    w = _lanczos3((np.arange(n_in)[None, :] + 0.5 - centres[:, None]) / max(scale, 1.0))
    return w / w.sum(axis=1, keepdims=True)


def _lanczos_reference(image, size):
    """Rows, then columns; rounded to uint8 after each pass, as PIL does."""
    rows = np.einsum('oj,ijc->ioc', _resize_weights(image.shape[1], size), image.astype(float))
    rows = np.clip(np.floor(rows + 0.5), 0, 255)
    out = np.einsum('oi,ijc->ojc', _resize_weights(image.shape[0], size), rows)
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    'shape, resolution', [((13, 9, 1), 32), ((40, 40, 3), 7), ((30, 24, 3), 17), ((64, 64, 1), 28)]
)
def test_resize_is_the_written_out_antialiased_lanczos(shape, resolution):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    side = min(shape[:2])
    top, left = (shape[0] - side) // 2, (shape[1] - side) // 2
    expected = _lanczos_reference(image[top : top + side, left : left + side], resolution)
    resized = center_crop_resize(image, resolution)
    assert resized.shape == (resolution, resolution, shape[2]) and resized.dtype == np.uint8
    # PIL's fixed-point weights may round a pixel the other way.
    difference = np.abs(resized.astype(int) - expected)
    assert difference.max() <= 1 and np.mean(difference) < 0.01


def test_the_lanczos_reference_tells_other_filters_apart():
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 1), dtype=np.uint8)
    expected = _lanczos_reference(image, 28)
    for method in (Image.Resampling.BICUBIC, Image.Resampling.BILINEAR):
        other = np.asarray(Image.fromarray(image[..., 0]).resize((28, 28), method))
        assert np.abs(other.astype(int) - expected[..., 0]).max() > 1


def test_convert_channels():
    grey = np.full((2, 2, 1), 7, np.uint8)
    np.testing.assert_array_equal(convert_channels(grey, 3), np.full((2, 2, 3), 7))
    red = np.zeros((2, 2, 3), np.uint8)
    red[...] = RED
    np.testing.assert_array_equal(convert_channels(red, 1), np.full((2, 2, 1), 76))  # ITU-R 601
    assert convert_channels(grey, 1) is grey
