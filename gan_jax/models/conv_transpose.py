"""A transposed convolution computed as one matrix product plus a shifted sum per output phase.

``PhaseConvTranspose`` computes exactly the function of ``flax.linen.ConvTranspose``
(``padding="SAME"``, ``transpose_kernel=False``) with the same parameters: a
``kernel`` of shape (kh, kw, in, out) and a ``bias``, so the two are
interchangeable. Why: XLA:CPU differentiates a strided transposed convolution
through a dilated-input convolution, 16x slower than this module's forward and
backward together (benchmarks/conv_transpose.py). With one stride-1
convolution per phase instead, the DCGAN-32 step ran at 261 img/s on CPU against
329 with this form, and on an H100 this form beat cuDNN's transposed
convolution in that step (benchmarks/README.md).

Output pixel ``o = s*p + r`` (phase ``r``) of a stride-``s`` transposed
convolution only sees input pixels ``p + d`` through the kernel taps ``i`` with
``(r + i - pad) % s == 0``, at offset ``d = (r + i - pad) // s``; every tap
belongs to exactly one phase. So one matrix product of the input [N*H*W, in]
with all taps [in, kh*kw*out] gives every tap's contribution at once; phase
``r`` is the sum of its taps' contributions, each shifted by its offset, and the
phases are interleaved into the ``s``-times larger image. The gradient is
written out (``custom_vjp``) the same way: the output gradient's phases, shifted
back and laid side by side, times the kernel (input gradient) or the input
(kernel gradient), two more matrix products. Both are plain JAX, so higher-order
gradients work too.
"""

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from gan_jax.models.conv import kernel_and_bias, vary_like


def _same_padding_before(kernel, stride):
    """Leading padding of ``lax.conv_transpose(..., padding='SAME')`` on one axis."""
    if stride > kernel - 1:
        return kernel - 1
    return -(-(kernel + stride - 2) // 2)


def phase_taps(kernel, stride):
    """Per phase ``r`` of one axis: the (offset, kernel tap) pairs, by offset."""
    pad = _same_padding_before(kernel, stride)
    return [sorted(((r + i - pad) // stride, i) for i in range(kernel)
                   if (r + i - pad) % stride == 0) for r in range(stride)]


def _tap_placement(kernel_size, strides):
    """For every tap (ih, iw), in kernel order: its phase (rh, rw) and offset (dh, dw)."""
    (kh, kw), (sh, sw) = kernel_size, strides
    rows = {i: (r, d) for r, taps in enumerate(phase_taps(kh, sh)) for d, i in taps}
    cols = {i: (r, d) for r, taps in enumerate(phase_taps(kw, sw)) for d, i in taps}
    return [(rows[ih][0], cols[iw][0], rows[ih][1], cols[iw][1])
            for ih in range(kh) for iw in range(kw)]


def _shift(x, dh, dw):
    """``y[n, p, q] = x[n, p + dh, q + dw]``, zero outside x."""
    zero = jnp.zeros((), x.dtype)
    return lax.pad(x, zero, [(0, 0, 0), (-dh, dh, 0), (-dw, dw, 0), (0, 0, 0)])


def _taps_matrix(kernel):
    """(kh, kw, in, out) -> [in, kh*kw*out]: all taps side by side."""
    kh, kw, cin, cout = kernel.shape
    return kernel.transpose(2, 0, 1, 3).reshape(cin, kh * kw * cout)


def conv_transpose(x, kernel, strides):
    """``lax.conv_transpose(x, kernel, strides, 'SAME')`` for NHWC x and HWIO kernel."""
    return _conv_transpose(x, vary_like(kernel, x), strides)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_transpose(x, kernel, strides):
    return _conv_transpose_forward(x, kernel, strides)[0]


def _conv_transpose_forward(x, kernel, strides):
    n, h, w, cin = x.shape
    kh, kw, _, cout = kernel.shape
    sh, sw = strides
    contributions = (x.reshape(-1, cin) @ _taps_matrix(kernel)).reshape(n, h, w, kh * kw, cout)
    phases = [[jnp.zeros((n, h, w, cout), x.dtype)] * sw for _ in range(sh)]
    for tap, (rh, rw, dh, dw) in enumerate(_tap_placement((kh, kw), strides)):
        phases[rh][rw] = phases[rh][rw] + _shift(contributions[:, :, :, tap], dh, dw)
    y = jnp.stack([jnp.stack(row, axis=3) for row in phases], axis=2)  # [N, H, sh, W, sw, C]
    return y.reshape(n, h * sh, w * sw, cout), (x, kernel)


def _conv_transpose_backward(strides, residuals, dy):
    x, kernel = residuals
    n, h, w, cin = x.shape
    kh, kw, _, cout = kernel.shape
    (sh, sw) = strides
    dy_phases = dy.reshape(n, h, sh, w, sw, cout)
    # Each tap's contribution received its phase's gradient, shifted back.
    d_contributions = jnp.concatenate(
        [_shift(dy_phases[:, :, rh, :, rw], -dh, -dw)
         for rh, rw, dh, dw in _tap_placement((kh, kw), strides)], axis=-1
    ).reshape(n * h * w, kh * kw * cout)
    taps = _taps_matrix(kernel)
    dx = (d_contributions @ taps.T).reshape(x.shape)
    d_taps = x.reshape(-1, cin).T @ d_contributions
    return dx, d_taps.reshape(cin, kh, kw, cout).transpose(1, 2, 0, 3)


_conv_transpose.defvjp(_conv_transpose_forward, _conv_transpose_backward)


class PhaseConvTranspose(nn.Module):
    """Drop-in for ``nn.ConvTranspose(features, kernel_size, strides, padding='SAME')``."""
    features: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int]
    use_bias: bool = True
    kernel_init: Callable[..., Any] = nn.linear.default_kernel_init
    bias_init: Callable[..., Any] = nn.initializers.zeros

    @nn.compact
    def __call__(self, x):
        x, kernel, bias = kernel_and_bias(self, x)
        y = conv_transpose(x, kernel, tuple(self.strides))
        return y if bias is None else y + bias
