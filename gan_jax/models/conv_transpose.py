"""A transposed convolution computed as stride-1 convolutions, one per output phase.

``PhaseConvTranspose`` computes exactly the function of ``flax.linen.ConvTranspose``
(``padding="SAME"``, ``transpose_kernel=False``) with the same parameters: a
``kernel`` of shape (kh, kw, in, out) and a ``bias``, so the two are
interchangeable. Why: XLA:CPU differentiates a strided transposed convolution
through a dilated-input convolution that is several times slower than ordinary
convolutions (benchmarks/conv_transpose.py: 6-12x for one DCGAN layer).

Output pixel ``o = s*p + r`` (phase ``r``) of a stride-``s`` transposed
convolution only sees input pixels ``p + d`` through the kernel taps ``i`` with
``(r + i - pad) % s == 0``, at offset ``d = (r + i - pad) // s``. So every phase is
an ordinary stride-1 convolution of the undilated input with its own taps (2x2
of a 4x4 kernel at stride 2: the same FLOPs as the transposed convolution). The
``s*s`` phase outputs are then interleaved into the ``s``-times larger image.
"""

from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from jax import lax


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


def _phase_conv(x, kernel, taps_h, taps_w):
    """One phase: a stride-1 convolution with the phase's taps, padded by its offsets."""
    n, h, w, _ = x.shape
    if not taps_h or not taps_w:  # Kernel smaller than the stride: no tap reaches.
        return jnp.zeros((n, h, w, kernel.shape[-1]), x.dtype)
    k = kernel[np.array([i for _, i in taps_h])][:, np.array([i for _, i in taps_w])]
    padding = ((-taps_h[0][0], taps_h[-1][0]), (-taps_w[0][0], taps_w[-1][0]))
    return lax.conv_general_dilated(x, k, window_strides=(1, 1), padding=padding,
                                    dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


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
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        kernel = self.param('kernel', self.kernel_init, (kh, kw, x.shape[-1], self.features))
        rows = [jnp.stack([_phase_conv(x, kernel, taps_h, taps_w)
                           for taps_w in phase_taps(kw, sw)], axis=3)
                for taps_h in phase_taps(kh, sh)]
        y = jnp.stack(rows, axis=3)  # [N, H, W, sh, sw, C]
        n, h, w = x.shape[:3]
        y = y.transpose(0, 1, 3, 2, 4, 5).reshape(n, h * sh, w * sw, self.features)
        if self.use_bias:
            y = y + self.param('bias', self.bias_init, (self.features,))
        return y
