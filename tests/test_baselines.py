"""Classical repair baselines on synthetic cases with a known answer."""

import numpy as np
import pytest
import scipy.fft

from gan_jax import baselines, operators


def test_biharmonic_fills_a_linear_ramp_exactly():
    # A linear function solves the biharmonic equation, so the hole is filled exactly.
    rows, cols = np.mgrid[0:16, 0:16] / 15.0
    image = (0.2 + 0.3 * rows + 0.4 * cols)[None, ..., None].astype(np.float32)
    mask = operators.center_mask((16, 16, 1))[None]
    out = baselines.biharmonic_inpaint(image * mask, mask)
    np.testing.assert_allclose(out, image, atol=1e-3)


def test_tv_denoise_keeps_a_constant_and_pulls_noise_towards_it():
    rng = np.random.default_rng(0)
    flat = np.full((1, 32, 32, 1), 0.5, np.float32)
    np.testing.assert_allclose(baselines.tv_denoise(flat), flat, atol=1e-6)
    noisy = np.clip(flat + 0.1 * rng.standard_normal(flat.shape), 0, 1).astype(np.float32)
    out = baselines.tv_denoise(noisy)
    assert np.abs(out - flat).mean() < 0.5 * np.abs(noisy - flat).mean()


def test_dct_basis_is_orthonormal_and_matches_scipy():
    basis = baselines.dct_basis((4, 4, 1))
    np.testing.assert_allclose(basis @ basis.T, np.eye(16), atol=1e-12)
    c = np.random.default_rng(1).standard_normal(16)
    expected = scipy.fft.idctn(c.reshape(4, 4), norm='ortho').reshape(-1)
    np.testing.assert_allclose(c @ basis, expected, atol=1e-12)


@pytest.mark.parametrize('basis', ['pixel', 'dct'])
def test_lasso_recovers_a_sparse_signal_from_few_measurements(basis):
    rng = np.random.default_rng(2)
    shape, m = (8, 8, 1), 40
    coef = np.zeros(64)
    coef[rng.choice(64, 4, replace=False)] = rng.uniform(0.5, 1.0, 4)
    x = coef if basis == 'pixel' else coef @ baselines.dct_basis(shape)
    if basis == 'dct':  # Keep the image in [0, 1]: a DC offset is one more sparse coefficient.
        coef[0] += 8 * max(0, -x.min())
        x = coef @ baselines.dct_basis(shape)
    a = operators.gaussian_matrix(64, m, rng)
    y = (x @ a)[None].astype(np.float32)
    out = baselines.lasso(a, y, shape, alpha=0.01, basis=basis)
    # The l1 penalty shrinks each coefficient by about alpha (the columns have unit norm).
    np.testing.assert_allclose(out.reshape(-1), x, atol=0.05)
    with pytest.raises(ValueError, match="basis='wavelet'"):
        baselines.lasso(a, y, shape, basis='wavelet')


def test_nearest_neighbour_finds_the_training_image_under_a_mask_and_a_matrix():
    rng = np.random.default_rng(3)
    train = rng.random((50, 8, 8, 1)).astype(np.float32)
    truth = train[[7, 31]]
    masks = np.stack([operators.center_mask((8, 8, 1))] * 2)
    op = operators.inpaint(masks)
    images, index = baselines.nearest_neighbour(op, truth * masks, train, chunk=16)
    np.testing.assert_array_equal(index, [7, 31])
    np.testing.assert_array_equal(images, truth)
    cs = operators.gaussian(operators.gaussian_matrix(64, 20, rng), (8, 8, 1))
    y = np.asarray(cs.forward(cs.params, truth))
    np.testing.assert_array_equal(baselines.nearest_neighbour(cs, y, train, chunk=16)[1], [7, 31])


def test_k_nearest_over_chunks_match_a_full_sort():
    rng = np.random.default_rng(4)
    train = rng.random((37, 6, 6, 1)).astype(np.float32)
    x = rng.random((3, 6, 6, 1)).astype(np.float32)
    masks = np.stack([operators.random_pixel_mask((6, 6, 1), 0.5, rng) for _ in range(3)])
    op = operators.inpaint(masks)
    # Brute force: every distance over each image's known pixels, sorted.
    dist = (((train[None] - x[:, None]) * masks[:, None]) ** 2).sum(axis=(2, 3, 4))
    expected = np.argsort(dist, axis=1)[:, :5]
    np.testing.assert_array_equal(
        baselines.nearest_indices(op, x * masks, train, 5, chunk=8), expected
    )
    np.testing.assert_allclose(
        baselines.nearest_neighbours_mean(op, x * masks, train, 5, chunk=8),
        train[expected].mean(axis=1),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match='k=38'):
        baselines.nearest_indices(op, x * masks, train, 38)


def test_zeros():
    np.testing.assert_array_equal(baselines.zeros(2, (3, 3, 1)), np.zeros((2, 3, 3, 1)))
