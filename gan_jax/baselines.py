"""Classical baselines for data repair, on float NHWC images in [0, 1] (numpy, on the host).

Every function takes the damaged images or measurements of N images and returns N estimates in
[0, 1]:

- ``biharmonic_inpaint``: scikit-image's biharmonic inpainting of the missing pixels.
- ``tv_denoise``: scikit-image's total-variation denoising (Chambolle).
- ``lasso``: compressed sensing by the Lasso in the pixel or the 2-D DCT basis, minimising
  1/2 ||y - A x||^2 + alpha ||x||_1 (Bora et al. 2017's sklearn Lasso on their unnormalised A
  and noise, which is this objective for A with N(0, 1/m) entries), estimates clipped to [0, 1]
  as theirs are.
- ``nearest_neighbour``: the training image whose measurement is closest to y;
  ``nearest_neighbours_mean`` the mean of the k closest.
- ``zeros``: the all-zeros image, the reference every method must beat.
"""

import numpy as np
import scipy.fft
from skimage.restoration import denoise_tv_chambolle, inpaint_biharmonic
from sklearn.linear_model import Lasso

BASES = ('pixel', 'dct')


def zeros(num, image_shape):
    return np.zeros((num, *image_shape), np.float32)


def biharmonic_inpaint(damaged, masks):
    """Each image's missing pixels (mask 0) filled by the biharmonic equation."""
    out = [
        inpaint_biharmonic(image, mask[..., 0] == 0, channel_axis=-1)
        for image, mask in zip(damaged, masks, strict=True)
    ]
    return np.clip(np.stack(out), 0, 1).astype(np.float32)


def tv_denoise(noisy, weight=0.1):
    """Total-variation denoising of each image with ``weight`` (scikit-image's default 0.1)."""
    out = [denoise_tv_chambolle(image, weight=weight, channel_axis=-1) for image in noisy]
    return np.clip(np.stack(out), 0, 1).astype(np.float32)


def dct_basis(image_shape):
    """[P, P] rows: the images of the orthonormal 2-D DCT coefficients (x_flat = c @ basis)."""
    num = int(np.prod(image_shape))
    unit = np.eye(num, dtype=np.float64).reshape(num, *image_shape)
    return scipy.fft.idctn(unit, axes=(1, 2), norm='ortho').reshape(num, num)


def lasso(matrix, y, image_shape, alpha=0.1, basis='pixel'):
    """Lasso estimates from y [N, m] = x_flat @ matrix + noise, matrix [P, m] with N(0, 1/m).

    sklearn's Lasso (with its default intercept, as Bora et al.) minimises
    1/(2m) ||y' - X w||^2 + alpha ||w||_1; it is given X = sqrt(m) (basis @ A)^T and
    y' = sqrt(m) y, Bora et al.'s scale, which makes the objective the one above.
    """
    if basis not in BASES:
        raise ValueError(f'basis={basis!r}: choose from {BASES}.')
    m = matrix.shape[1]
    design = matrix.astype(np.float64)
    if basis == 'dct':
        psi = dct_basis(image_shape)
        design = psi @ design
    design = np.sqrt(m) * design.T
    estimates = []
    for measurement in y:
        fit = Lasso(alpha=alpha).fit(design, np.sqrt(m) * measurement.astype(np.float64))
        coef = fit.coef_
        estimates.append(coef @ psi if basis == 'dct' else coef)
    x = np.clip(np.stack(estimates), 0, 1)
    return x.reshape(len(y), *image_shape).astype(np.float32)


def nearest_indices(op, y, train, k=1, chunk=4096):
    """[N, k] indices of the k train images t with the smallest ||op(t) - y_i||^2, closest first.

    ``train`` float [T, H, W, C] in [0, 1]. A per-image operator (an inpainting mask)
    compares the pixels each image's mask keeps; a shared one measures every train image.
    """
    if not 1 <= k <= len(train):
        raise ValueError(f'k={k}: expected 1 <= k <= {len(train)} (the training images).')
    train_flat = train.reshape(len(train), -1).astype(np.float32)
    best = np.full((len(y), 0), np.inf)
    index = np.zeros((len(y), 0), np.int64)
    y_flat = np.asarray(y, np.float32).reshape(len(y), -1)
    masks = np.asarray(op.params).reshape(len(y), -1) if op.per_example else None
    for start in range(0, len(train_flat), chunk):
        t = train_flat[start : start + chunk]
        if masks is not None:
            # ||m (t - x)||^2 = (t^2) . m - 2 t . (m y) + const, with y = m x.
            dist = (t**2) @ masks.T - 2 * t @ (masks * y_flat).T
        else:
            measured = np.asarray(op.forward(op.params, t.reshape(-1, *train.shape[1:])))
            measured = measured.reshape(len(t), -1)
            dist = (measured**2).sum(1, keepdims=True) - 2 * measured @ y_flat.T
        best = np.concatenate([best, dist.T], axis=1)
        chunk_index = np.broadcast_to(start + np.arange(len(t)), (len(y), len(t)))
        index = np.concatenate([index, chunk_index], axis=1)
        keep = np.argsort(best, axis=1, kind='stable')[:, :k]
        best = np.take_along_axis(best, keep, axis=1)
        index = np.take_along_axis(index, keep, axis=1)
    return index


def nearest_neighbour(op, y, train, chunk=4096):
    """(images, indices): for each y_i, the train image whose measurement is closest to it."""
    index = nearest_indices(op, y, train, 1, chunk)[:, 0]
    return train[index].astype(np.float32), index


def nearest_neighbours_mean(op, y, train, k, chunk=4096):
    """The mean of the k train images whose measurements are closest to y_i (a k-NN estimate of
    the posterior mean, which minimises the expected squared error when k is well chosen)."""
    return train[nearest_indices(op, y, train, k, chunk)].mean(axis=1).astype(np.float32)
