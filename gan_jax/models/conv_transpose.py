"""A transposed convolution computed as one stride-1 convolution plus depth-to-space.

``PhaseConvTranspose`` computes exactly the function of ``flax.linen.ConvTranspose``
(``padding="SAME"``, ``transpose_kernel=False``) with the same parameters: a
``kernel`` of shape (kh, kw, in, out) and a ``bias``, so the two are
interchangeable. Why: XLA:CPU differentiates a strided transposed convolution
through a dilated-input convolution that is an order of magnitude slower than
the forward pass (issue #6 measured 1269 ms vs 139 ms for one DCGAN layer).

Output pixel ``o = s*p + r`` (phase ``r``) of a stride-``s`` transposed
convolution only sees input pixels ``p + d`` through the kernel taps ``i`` with
``(r + i - pad) % s == 0``, at offset ``d = (r + i - pad) // s``. So every phase is
an ordinary stride-1 convolution of the undilated input. We gather the taps of
all ``s*s`` phases into one kernel over the union of offsets (zeros where a
phase has no tap), run a single convolution with ``s*s*out`` channels and
interleave the phases into the ``s``-times larger image (depth-to-space).
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
    """Per axis: which kernel tap feeds (phase, offset), and the offsets' range.

    Returns ``(taps, low, high)``: ``taps[r, t]`` is the tap index used by phase
    ``r`` at offset ``t + low`` (``kernel``, one past the last tap, where the
    phase has none), with offsets ``low..high``.
    """
    pad = _same_padding_before(kernel, stride)
    offsets = {}
    for r in range(stride):
        for i in range(kernel):
            if (r + i - pad) % stride == 0:
                offsets[(r, (r + i - pad) // stride)] = i
    low = min(d for _, d in offsets)
    high = max(d for _, d in offsets)
    taps = np.full((stride, high - low + 1), kernel)
    for (r, d), i in offsets.items():
        taps[r, d - low] = i
    return taps, low, high


def phase_kernel(kernel, strides):
    """(kh, kw, in, out) -> (th, tw, in, sh*sw*out): all phases' taps, zero-filled."""
    kh, kw, cin, cout = kernel.shape
    (sh, sw) = strides
    taps_h, _, _ = phase_taps(kh, sh)
    taps_w, _, _ = phase_taps(kw, sw)
    padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))  # Index k -> zero tap.
    # [rh, th, rw, tw, in, out] -> [th, tw, in, rh, rw, out].
    gathered = padded[taps_h[:, :, None, None], taps_w[None, None, :, :]]
    gathered = gathered.transpose(1, 3, 4, 0, 2, 5)
    th, tw = taps_h.shape[1], taps_w.shape[1]
    return gathered.reshape(th, tw, cin, sh * sw * cout)


def depth_to_space(x, strides, features):
    """[N, H, W, sh*sw*C] with channels ordered (rh, rw, C) -> [N, sh*H, sw*W, C]."""
    n, h, w, _ = x.shape
    sh, sw = strides
    x = x.reshape(n, h, w, sh, sw, features).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(n, h * sh, w * sw, features)


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
        kh, kw = self.kernel_size
        kernel = self.param('kernel', self.kernel_init,
                            (kh, kw, x.shape[-1], self.features))
        _, low_h, high_h = phase_taps(kh, self.strides[0])
        _, low_w, high_w = phase_taps(kw, self.strides[1])
        y = lax.conv_general_dilated(
            x, phase_kernel(kernel, self.strides), window_strides=(1, 1),
            padding=((-low_h, high_h), (-low_w, high_w)),
            dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
        y = depth_to_space(y, self.strides, self.features)
        if self.use_bias:
            y = y + self.param('bias', self.bias_init, (self.features,))
        return y
