"""Measurement operators: forward maps against hand-built ones, adjoints by <Ax, y> = <x, A'y>."""

import numpy as np
import pytest
from PIL import Image

from gan_jax import operators

SHAPE = (8, 8, 1)


def _inner_adjoint_check(op, image_shape, rng, n=3):
    x = rng.standard_normal((n, *image_shape)).astype(np.float32)
    ax = np.asarray(op.forward(op.params, x))
    y = rng.standard_normal(ax.shape).astype(np.float32)
    aty = np.asarray(op.adjoint(op.params, y))
    assert aty.shape == x.shape
    np.testing.assert_allclose(np.sum(ax * y), np.sum(x * aty), rtol=1e-4)


def test_center_mask_hides_the_middle_half_of_the_side():
    mask = operators.center_mask((28, 28, 1))
    expected = np.ones((28, 28, 1), np.float32)
    expected[7:21, 7:21] = 0  # 14 = 28 / 2 pixels centred: rows and columns 7..20.
    np.testing.assert_array_equal(mask, expected)


def test_random_pixel_mask_hides_about_the_fraction_and_all_channels_alike():
    mask = operators.random_pixel_mask((64, 64, 3), 0.3, np.random.default_rng(0))
    assert abs(1 - mask.mean() - 0.3) < 0.03
    np.testing.assert_array_equal(mask[..., 0], mask[..., 2])


def test_random_boxes_mask_hides_at_most_the_boxes_area():
    mask = operators.random_boxes_mask((16, 16, 1), 2, 4, np.random.default_rng(1))
    missing = int((mask == 0).sum())
    assert 16 <= missing <= 32
    with pytest.raises(ValueError, match='box_size=17'):
        operators.random_boxes_mask((16, 16, 1), 1, 17, np.random.default_rng(1))


def test_mask_from_image_reads_dark_pixels_as_missing(tmp_path):
    gray = np.full((16, 16), 255, np.uint8)
    gray[4:8, 2:10] = 0
    Image.fromarray(gray).save(tmp_path / 'mask.png')
    mask = operators.mask_from_image(tmp_path / 'mask.png', (8, 8, 3))  # Halved (nearest).
    expected = np.ones((8, 8, 3), np.float32)
    expected[2:4, 1:5] = 0
    np.testing.assert_array_equal(mask, expected)
    Image.fromarray(np.full((4, 4), 255, np.uint8)).save(tmp_path / 'white.png')
    with pytest.raises(ValueError, match='nothing is missing'):
        operators.mask_from_image(tmp_path / 'white.png', (8, 8, 1))


def test_inpaint_zeroes_the_missing_pixels_and_is_self_adjoint():
    rng = np.random.default_rng(0)
    masks = np.stack([operators.random_pixel_mask(SHAPE, 0.5, rng) for _ in range(3)])
    op = operators.inpaint(masks)
    x = rng.random((3, *SHAPE)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(op.forward(op.params, x)), np.where(masks, x, 0))
    _inner_adjoint_check(op, SHAPE, rng)


def test_downsample_averages_blocks_and_its_adjoint():
    op = operators.downsample(2)
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    # Block means by hand: [[0,1,4,5], [2,3,6,7], [8,9,12,13], [10,11,14,15]].
    expected = np.array([[2.5, 4.5], [10.5, 12.5]], np.float32).reshape(1, 2, 2, 1)
    np.testing.assert_allclose(np.asarray(op.forward(op.params, x)), expected)
    _inner_adjoint_check(op, (8, 8, 3), np.random.default_rng(2))
    with pytest.raises(ValueError, match='factor=1'):
        operators.downsample(1)


def test_gaussian_matrix_has_variance_one_over_m_and_its_adjoint():
    rng = np.random.default_rng(3)
    a = operators.gaussian_matrix(784, 100, rng)
    assert a.shape == (784, 100)
    assert abs(a.var() - 1 / 100) < 0.05 / 100
    assert abs(a.mean()) < 3e-3
    op = operators.gaussian(a, (28, 28, 1))
    x = rng.random((2, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(
        np.asarray(op.forward(op.params, x)), x.reshape(2, -1) @ a, rtol=1e-5, atol=1e-5
    )
    _inner_adjoint_check(op, (28, 28, 1), rng)
    with pytest.raises(ValueError, match=r'\(784, 100\): expected \[64, m\]'):
        operators.gaussian(a, (8, 8, 1))


def test_identity_and_measure_add_noise_of_the_given_std():
    op = operators.identity()
    x = np.zeros((4, 32, 32, 1), np.float32)
    y, noise = operators.measure(op, x, 0.1, np.random.default_rng(4))
    np.testing.assert_array_equal(y, noise)
    assert abs(noise.std() - 0.1) < 0.005
    _inner_adjoint_check(op, SHAPE, np.random.default_rng(5))
