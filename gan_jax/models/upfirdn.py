"""FIR resampling of NHWC images (StyleGAN2's upfirdn2d) and convolutions around it.

``upfirdn2d`` does what NVlabs/stylegan2-ada-pytorch's ``torch_utils/ops/upfirdn2d.py``
documents, per channel and spatial axis: insert ``up - 1`` zeros after every
pixel, pad (a negative pad crops), convolve with the FIR filter (a true
convolution: the taps are reversed), keep every ``down``-th pixel. The filter is
separable (the same normalised 1-D taps on both axes, so the 2-D filter is their
outer product divided by its sum), so each axis's whole upsample-pad-filter-
downsample is one linear map: a constant banded matrix applied with one matrix
product per axis. That is two operations per call (and per gradient), which
XLA compiles faster than the equivalent sums of shifted slices and their pads.

``conv2d_resample`` is the official function of the same name for the cases
StyleGAN2 uses: a k x k convolution with padding k // 2, optionally upsampling
(transposed convolution, then the filter) or downsampling (the filter, then a
strided convolution) by 2.
"""

import jax.numpy as jnp
import numpy as np

from gan_jax.models.conv import conv, dilated_conv

FILTER = (1, 3, 3, 1)  # StyleGAN2's resampling filter (a binomial low-pass).


def _taps(taps, gain):
    """Normalised 1-D taps times sqrt(gain) (the 2-D filter is their outer product)."""
    taps = np.asarray(taps, np.float64)
    if taps.ndim != 1 or taps.size == 0 or taps.sum() == 0:
        raise ValueError(f'FIR taps must be a non-empty 1-D sequence with a nonzero sum: {taps}')
    return taps / taps.sum() * np.sqrt(gain)


def axis_matrix(size, taps, up, down, pad):
    """The [out, size] matrix of upfirdn along one axis of ``size`` pixels (float64).

    Output pixel r reads padded-upsampled pixel r * down + j through the reversed
    tap j; that pixel is input pixel i where it equals i * up + pad[0].
    """
    k = len(taps)
    length = size * up + pad[0] + pad[1] - k + 1
    if length < 1:
        raise ValueError(f'upfirdn2d: {k} taps do not fit a padded size {length + k - 1}')
    rows = np.arange(-(-length // down))[:, None, None] * down
    where = rows + np.arange(k)[None, :, None] - pad[0]  # [out, k, 1]
    hits = where == np.arange(size)[None, None, :] * up  # [out, k, size]
    return np.einsum('rki,k->ri', hits, taps[::-1])


def upfirdn2d(x, taps=FILTER, *, up=1, down=1, pad=(0, 0), gain=1.0):
    """Upsample, pad, FIR-filter and downsample x [N, H, W, C] on both spatial axes.

    ``pad`` is (before, after) in the upsampled image, the same on both axes;
    ``gain`` scales the 2-D filter (``up ** 2`` keeps the mean of an upsampled image).
    """
    if up < 1 or down < 1:
        raise ValueError(f'upfirdn2d: up={up} and down={down} must be positive integers')
    taps = _taps(taps, gain)
    rows = jnp.asarray(axis_matrix(x.shape[1], taps, up, down, pad), x.dtype)
    cols = jnp.asarray(axis_matrix(x.shape[2], taps, up, down, pad), x.dtype)
    x = jnp.einsum('ph,nhwc->npwc', rows, x)
    return jnp.einsum('qw,npwc->npqc', cols, x)


def upsample2d(x, taps=FILTER):
    """x [N, H, W, C] -> [N, 2H, 2W, C]: zeros inserted, then the filter (gain 4)."""
    k = len(taps)
    return upfirdn2d(x, taps, up=2, pad=((k + 1) // 2, (k - 2) // 2), gain=4.0)


def downsample2d(x, taps=FILTER):
    """x [N, H, W, C] -> [N, H/2, W/2, C]: the filter, then every other pixel."""
    k = len(taps)
    return upfirdn2d(x, taps, down=2, pad=((k - 1) // 2, (k - 2) // 2))


def conv2d_resample(x, kernel, *, up=1, down=1, taps=FILTER):
    """x [N, H, W, I] convolved with an HWIO kernel (k x k, padding k // 2), resampled.

    ``up=2``: a transposed convolution (a true convolution of the zero-interleaved
    input, as the official layers with upsampling compute it), then the filter
    with gain 4. ``down=2``: the filter, then a stride-2 correlation. Otherwise a
    plain correlation.
    """
    k, f = kernel.shape[0], len(taps)
    if kernel.shape[1] != k:
        raise ValueError(f'conv2d_resample needs a square kernel, got shape {kernel.shape}')
    if up not in (1, 2) or down not in (1, 2) or up * down == 4:
        raise ValueError(f'conv2d_resample: up={up}, down={down}; one of them may be 2')
    p = k // 2
    if up == 2:
        # The transposed convolution leaves 2H + k - 2 pixels; the filter's padding
        # brings it back to 2H (the official padding after its transposed conv).
        flipped = jnp.flip(kernel, (0, 1))
        x = dilated_conv(x, flipped, (2, 2), [(k - 1, k - 1)] * 2)
        return upfirdn2d(
            x, taps, pad=(p + (f + 1) // 2 - (k - 1), p + (f - 2) // 2 - (k - 2)), gain=4.0
        )
    if down == 2:
        if k == 1:
            return conv(downsample2d(x, taps), kernel, (1, 1), [(0, 0)] * 2)
        x = upfirdn2d(x, taps, pad=(p + (f - 1) // 2, p + (f - 2) // 2))
        return conv(x, kernel, (2, 2), [(0, 0)] * 2)
    return conv(x, kernel, (1, 1), [(p, p)] * 2)
