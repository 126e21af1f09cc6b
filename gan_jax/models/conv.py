"""Convolutions whose gradients are again convolutions that XLA runs fast.

``Conv`` computes exactly ``flax.linen.Conv`` (NHWC input, HWIO ``kernel``,
optional ``bias``, the same parameter names, shapes and initialisers), so the
two are interchangeable. Why: JAX differentiates a convolution into
convolutions with permuted dimension numbers (batch as features and back).
XLA:CPU runs those on its fast library kernels only in a program's top-level
computation; inside a loop body (``lax.scan``, as the ``n_dis`` discriminator
steps of the update) they fall back to a generic loop, many times slower
(benchmarks/README.md). ``conv`` writes both gradients out with explicit transposes
into the NHWC/HWIO layout instead, which stays fast everywhere, so the update
can keep the D steps in a loop (compiled once) instead of unrolling them. Its
gradients call ``conv`` itself, so gradients of gradients (gradient penalties)
take the same form.

``dilated_conv`` is the convolution of an ``s``-times dilated input (a
transposed convolution, or a strided convolution's input gradient) computed by
output phase: one matrix product of the undilated input with all kernel taps
side by side, then per output phase ``r`` the sum of its taps' contributions,
each shifted by its offset (output pixel ``o = s*p + r`` sees input pixels
``p + d`` through the taps ``i`` with ``(r + i - lo) % s == 0``, ``d = (r + i -
lo) // s``), interleaved into the ``s``-times larger image. XLA:CPU's own form
multiplies mostly by inserted zeros (benchmarks/conv_transpose.py measures both).
Its gradients are plain strided convolutions: the adjoint of a convolution of a
dilated input is a strided convolution.

The gradient formulas are those of any convolution with strides ``s``,
padding ``(lo, hi)``, input dilation ``a`` and kernel dilation ``b``: the input
gradient is the output gradient convolved with the spatially flipped kernel
(input and output channels swapped), with strides ``a`` and input dilation
``s``; the kernel gradient is the input with its batch and channel axes swapped,
convolved with the output gradient as the kernel, with strides ``b``, input
dilation ``a`` and kernel dilation ``s``.
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

DIMENSIONS = ('NHWC', 'HWIO', 'NHWC')
# Where the gradients are written out. Elsewhere JAX's own are used: XLA:GPU runs
# them fast inside loops too (benchmarks/README.md).
EXPLICIT_GRADIENT_BACKENDS = ('cpu',)


def varying_axes(x):
    """The shard_map axes along which x differs between devices (empty outside shard_map)."""
    axis_type = jax.typeof(x)
    return frozenset(
        getattr(axis_type, 'vma', None)
        or getattr(getattr(axis_type, 'manual_axis_type', None), 'varying', ())
    )


def vary_like(kernel, x):
    """``kernel`` marked as varying over the shard_map axes that ``x`` varies over.

    Inside shard_map a kernel is replicated and x is per device. Marking the
    kernel per device first makes JAX sum its per-device gradients (what
    autodiff does for replicated inputs), which a hand-written backward cannot.
    """
    axes = tuple(sorted(varying_axes(x) - varying_axes(kernel)))
    return lax.pcast(kernel, axes, to='varying') if axes else kernel


def _dilated(size, dilation):
    return 0 if size == 0 else 1 + dilation * (size - 1)


def conv(x, kernel, strides, padding, lhs_dilation=(1, 1), rhs_dilation=(1, 1)):
    """``lax.conv_general_dilated`` for NHWC x and HWIO kernel; padding: (lo, hi) per axis."""
    settings = (
        tuple(strides),
        tuple(map(tuple, padding)),
        tuple(lhs_dilation),
        tuple(rhs_dilation),
    )
    if jax.default_backend() not in EXPLICIT_GRADIENT_BACKENDS:
        return lax.conv_general_dilated(x, kernel, *settings, dimension_numbers=DIMENSIONS)
    return _conv(x, vary_like(kernel, x), *settings)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _conv(x, kernel, strides, padding, lhs_dilation, rhs_dilation):
    windows = [_dilated(k, b) for k, b in zip(kernel.shape[:2], rhs_dilation)]
    if lhs_dilation == (1, 1) and any(w > size for w, size in zip(windows, x.shape[1:3])):
        return _patch_conv(x, kernel, strides, padding, rhs_dilation)
    return lax.conv_general_dilated(
        x, kernel, strides, padding, lhs_dilation, rhs_dilation, dimension_numbers=DIMENSIONS
    )


def _patch_conv(x, kernel, strides, padding, rhs_dilation):
    """The convolution as one matrix product of x's patches with the kernel.

    For a kernel window larger than the input (PacGAN's 5x5 kernels on a 4x4 or 2x2
    grid), where XLA:CPU's convolution takes a generic path (benchmarks/README.md).
    """
    (kh, kw, cin, cout), (sh, sw), (bh, bw) = kernel.shape, strides, rhs_dilation
    zero = jnp.zeros((), x.dtype)
    x = lax.pad(x, zero, [(0, 0, 0), (*padding[0], 0), (*padding[1], 0), (0, 0, 0)])
    n, h, w, _ = x.shape
    out_h, out_w = (h - _dilated(kh, bh)) // sh + 1, (w - _dilated(kw, bw)) // sw + 1
    patches = jnp.concatenate(
        [
            lax.slice(
                x,
                (0, i * bh, j * bw, 0),
                (n, i * bh + (out_h - 1) * sh + 1, j * bw + (out_w - 1) * sw + 1, cin),
                (1, sh, sw, 1),
            )
            for i in range(kh)
            for j in range(kw)
        ],
        axis=3,
    )  # [N, out_h, out_w, kh * kw * cin], taps in the kernel's (HWIO) order.
    return patches @ kernel.reshape(kh * kw * cin, cout)


def _conv_forward(x, kernel, strides, padding, lhs_dilation, rhs_dilation):
    return _conv(x, kernel, strides, padding, lhs_dilation, rhs_dilation), (x, kernel)


def adjoint_settings(x_size, window, dy_size, strides, padding, lhs_dilation, rhs_dilation):
    """The convolution of dy with ``flip_kernel(kernel)`` that gives the input gradient.

    Sizes are (height, width) of x, the kernel and dy; returns that convolution's
    (strides, padding, lhs_dilation, rhs_dilation): strides and input dilation
    trade places.
    """
    x_padding = []
    for size, w, out, s, (lo, _), a, b in zip(
        x_size, window, dy_size, strides, padding, lhs_dilation, rhs_dilation
    ):
        w, size, out = _dilated(w, b), _dilated(size, a), _dilated(out, s)
        before = w - lo - 1
        x_padding.append((before, size + w - 1 - out - before))
    return tuple(lhs_dilation), tuple(x_padding), tuple(strides), tuple(rhs_dilation)


def flip_kernel(kernel):
    """HWIO kernel flipped in space, input and output channels swapped."""
    return jnp.flip(kernel, (0, 1)).swapaxes(2, 3)


def kernel_gradient(x, dy, window, strides, padding, lhs_dilation, rhs_dilation):
    """The gradient of the kernel (spatial size ``window``) given x and dy, as a convolution."""
    kernel_padding = []
    for size, w, out, s, (lo, _), a, b in zip(
        x.shape[1:3], window, dy.shape[1:3], strides, padding, lhs_dilation, rhs_dilation
    ):
        w, size, out = _dilated(w, b), _dilated(size, a), _dilated(out, s)
        kernel_padding.append((lo, out - size + w - lo - 1))
    dkernel = conv(
        x.transpose(3, 1, 2, 0),
        dy.transpose(1, 2, 0, 3),
        rhs_dilation,
        kernel_padding,
        lhs_dilation=lhs_dilation,
        rhs_dilation=strides,
    )
    return dkernel.transpose(1, 2, 0, 3)


def _conv_backward(strides, padding, lhs_dilation, rhs_dilation, residuals, dy):
    x, kernel = residuals
    settings = (strides, padding, lhs_dilation, rhs_dilation)
    adjoint = adjoint_settings(x.shape[1:3], kernel.shape[:2], dy.shape[1:3], *settings)
    adjoint_strides, adjoint_padding, adjoint_lhs_dilation, adjoint_rhs_dilation = adjoint
    # A strided convolution's input gradient convolves the dilated dy: by phase.
    if adjoint_strides == adjoint_rhs_dilation == (1, 1) and adjoint_lhs_dilation != (1, 1):
        dx = _dilated_conv(dy, flip_kernel(kernel), adjoint_lhs_dilation, adjoint_padding)
    else:
        dx = conv(dy, flip_kernel(kernel), *adjoint)
    return dx, kernel_gradient(x, dy, kernel.shape[:2], *settings)


_conv.defvjp(_conv_forward, _conv_backward)


def phase_taps(kernel, stride, pad_before):
    """Per output phase ``r`` of one axis: its (offset, kernel tap) pairs, by offset."""
    return [
        sorted(
            ((r + i - pad_before) // stride, i)
            for i in range(kernel)
            if (r + i - pad_before) % stride == 0
        )
        for r in range(stride)
    ]


def _tap_placement(kernel_size, strides, pads_before):
    """For every tap (ih, iw), in kernel order: its phase (rh, rw) and offset (dh, dw)."""
    rows, cols = (
        {i: (r, d) for r, taps in enumerate(phase_taps(k, s, pad)) for d, i in taps}
        for k, s, pad in zip(kernel_size, strides, pads_before)
    )
    return [
        (rows[ih][0], cols[iw][0], rows[ih][1], cols[iw][1])
        for ih in range(kernel_size[0])
        for iw in range(kernel_size[1])
    ]


def _shift(x, dh, dw, size):
    """``y[n, p, q] = x[n, p + dh, q + dw]`` for p, q below ``size``, zero outside x."""
    zero = jnp.zeros((), x.dtype)
    (h, w), (out_h, out_w) = x.shape[1:3], size
    return lax.pad(
        x, zero, [(0, 0, 0), (-dh, out_h - h + dh, 0), (-dw, out_w - w + dw, 0), (0, 0, 0)]
    )


def dilated_conv(x, kernel, lhs_dilation, padding):
    """``lax.conv_general_dilated`` with strides 1, input dilation ``lhs_dilation``."""
    return _dilated_conv(x, vary_like(kernel, x), tuple(lhs_dilation), tuple(map(tuple, padding)))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _dilated_conv(x, kernel, lhs_dilation, padding):
    return _dilated_conv_forward(x, kernel, lhs_dilation, padding)[0]


def _dilated_conv_forward(x, kernel, lhs_dilation, padding):
    n, h, w, cin = x.shape
    kh, kw, _, cout = kernel.shape
    out = [
        _dilated(size, s) + lo + hi - k + 1
        for size, s, (lo, hi), k in zip((h, w), lhs_dilation, padding, (kh, kw))
    ]
    per_phase = [-(-size // s) for size, s in zip(out, lhs_dilation)]
    taps = kernel.transpose(2, 0, 1, 3).reshape(cin, kh * kw * cout)
    contributions = (x.reshape(-1, cin) @ taps).reshape(n, h, w, kh * kw, cout)
    phases = [
        [jnp.zeros((n, *per_phase, cout), x.dtype)] * lhs_dilation[1]
        for _ in range(lhs_dilation[0])
    ]
    placement = _tap_placement((kh, kw), lhs_dilation, [lo for lo, _ in padding])
    for tap, (rh, rw, dh, dw) in enumerate(placement):
        phases[rh][rw] = phases[rh][rw] + _shift(contributions[:, :, :, tap], dh, dw, per_phase)
    y = jnp.stack([jnp.stack(row, axis=3) for row in phases], axis=2)  # [N, H, sh, W, sw, C]
    y = y.reshape(n, per_phase[0] * lhs_dilation[0], per_phase[1] * lhs_dilation[1], cout)
    return y[:, : out[0], : out[1]], (x, kernel)


def _dilated_conv_backward(lhs_dilation, padding, residuals, dy):
    # The adjoint giving dx is a strided convolution of dy with the flipped kernel;
    # that convolution's own kernel gradient (input dy, output gradient x) is the
    # flipped kernel gradient. Both run faster on XLA:CPU than matrix forms.
    x, kernel = residuals
    window = kernel.shape[:2]
    adjoint = adjoint_settings(
        x.shape[1:3], window, dy.shape[1:3], (1, 1), padding, lhs_dilation, (1, 1)
    )
    dx = conv(dy, flip_kernel(kernel), *adjoint)
    return dx, flip_kernel(kernel_gradient(dy, x, window, *adjoint))


_dilated_conv.defvjp(_dilated_conv_forward, _dilated_conv_backward)


def kernel_and_bias(module, x):
    """x, and a convolution module's HWIO ``kernel`` and ``bias`` as flax's layers make them.

    Same names, shapes, initialisers and dtype promotion as ``nn.Conv``, so
    parameters and checkpoints carry over between the two.
    """
    kernel = module.param(
        'kernel', module.kernel_init, (*module.kernel_size, x.shape[-1], module.features)
    )
    bias = module.param('bias', module.bias_init, (module.features,)) if module.use_bias else None
    return nn.dtypes.promote_dtype(x, kernel, bias)


def _pairs(value):
    return (value, value) if isinstance(value, int) else tuple(value)


class Conv(nn.Module):
    """Drop-in for ``nn.Conv`` on NHWC images, with ``conv``'s loop-friendly gradients.

    ``padding``: 'SAME', 'VALID', an int for every side, or (lo, hi) per axis.
    """

    features: int
    kernel_size: Sequence[int]
    strides: int | Sequence[int] = 1
    padding: str | int | Sequence[tuple[int, int]] = 'SAME'
    use_bias: bool = True
    kernel_init: Callable[..., Any] = nn.linear.default_kernel_init
    bias_init: Callable[..., Any] = nn.initializers.zeros

    @nn.compact
    def __call__(self, x):
        x, kernel, bias = kernel_and_bias(self, x)
        strides = _pairs(self.strides)
        if isinstance(self.padding, str):
            padding = lax.padtype_to_pads(x.shape[1:3], kernel.shape[:2], strides, self.padding)
        elif isinstance(self.padding, int):
            padding = [(self.padding, self.padding)] * 2
        else:
            padding = self.padding
        y = conv(x, kernel, strides, padding)
        return y if bias is None else y + bias
