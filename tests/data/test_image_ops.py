import numpy as np

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


def test_resize_is_deterministic_and_keeps_one_channel():
    image = np.random.default_rng(0).integers(0, 256, (13, 9, 1), dtype=np.uint8)
    first = center_crop_resize(image, 32)
    assert first.shape == (32, 32, 1)
    np.testing.assert_array_equal(first, center_crop_resize(image.copy(), 32))


def test_convert_channels():
    grey = np.full((2, 2, 1), 7, np.uint8)
    np.testing.assert_array_equal(convert_channels(grey, 3), np.full((2, 2, 3), 7))
    red = np.zeros((2, 2, 3), np.uint8)
    red[...] = RED
    np.testing.assert_array_equal(convert_channels(red, 1), np.full((2, 2, 1), 76))  # ITU-R 601
    assert convert_channels(grey, 1) is grey
