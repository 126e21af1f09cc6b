"""A convolution whose gradients are again convolutions in the standard layout.

``Conv`` computes exactly ``flax.linen.Conv`` (NHWC input, HWIO ``kernel``,
optional ``bias``, the same parameter names, shapes and initialisers), so the
two are interchangeable. Why: JAX differentiates a convolution into
convolutions with permuted dimension numbers (batch as features and back).
XLA:CPU runs those on its fast library kernels only in a program's top-level
computation; inside a loop body (``lax.scan``, as the ``n_dis`` discriminator
steps of the update) they fall back to a generic loop: the weight gradient of
DCGAN-32's 16->8 layer took 1.1 s there instead of 9 ms, its input gradient
23 ms instead of 8. ``conv`` writes both gradients out with explicit transposes
into the NHWC/HWIO layout instead, which stays fast everywhere, so the update
can keep the D steps in a loop (compiled once) instead of unrolling them. Its
gradients call ``conv`` itself, so gradients of gradients (gradient penalties)
take the same form.

The gradient formulas are those of any convolution with strides ``s``,
padding ``(lo, hi)``, input dilation ``a`` and kernel dilation ``b``: the input
gradient is the output gradient convolved with the spatially flipped kernel
(input and output channels swapped), with strides ``a`` and input dilation
``s``; the kernel gradient is the input with its batch and channel axes swapped,
convolved with the output gradient as the kernel, with strides ``b``, input
dilation ``a`` and kernel dilation ``s``.
"""

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

DIMENSIONS = ('NHWC', 'HWIO', 'NHWC')
# Where the gradients are written out. Elsewhere JAX's own are used: XLA:GPU runs
# them fast inside loops too, and on an H100 neither form was faster for every
# model (benchmarks/README.md).
EXPLICIT_GRADIENT_BACKENDS = ('cpu',)


def varying_axes(x):
    """The shard_map axes along which x differs between devices (empty outside shard_map)."""
    axis_type = jax.typeof(x)
    return frozenset(getattr(axis_type, 'vma', None)
                     or getattr(getattr(axis_type, 'manual_axis_type', None), 'varying', ()))


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
    settings = (tuple(strides), tuple(map(tuple, padding)), tuple(lhs_dilation),
                tuple(rhs_dilation))
    if jax.default_backend() not in EXPLICIT_GRADIENT_BACKENDS:
        return lax.conv_general_dilated(x, kernel, *settings, dimension_numbers=DIMENSIONS)
    return _conv(x, vary_like(kernel, x), *settings)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _conv(x, kernel, strides, padding, lhs_dilation, rhs_dilation):
    return lax.conv_general_dilated(x, kernel, strides, padding, lhs_dilation, rhs_dilation,
                                    dimension_numbers=DIMENSIONS)


def _conv_forward(x, kernel, strides, padding, lhs_dilation, rhs_dilation):
    return _conv(x, kernel, strides, padding, lhs_dilation, rhs_dilation), (x, kernel)


def _conv_backward(strides, padding, lhs_dilation, rhs_dilation, residuals, dy):
    x, kernel = residuals
    x_padding, kernel_padding = [], []
    for size, window, out, s, (lo, _), a, b in zip(
            x.shape[1:3], kernel.shape[:2], dy.shape[1:3], strides, padding, lhs_dilation,
            rhs_dilation):
        window, size, out = _dilated(window, b), _dilated(size, a), _dilated(out, s)
        before = window - lo - 1
        x_padding.append((before, size + window - 1 - out - before))
        kernel_padding.append((lo, out - size + before))
    dx = conv(dy, jnp.flip(kernel, (0, 1)).swapaxes(2, 3), lhs_dilation, x_padding,
              lhs_dilation=strides, rhs_dilation=rhs_dilation)
    dkernel = conv(x.transpose(3, 1, 2, 0), dy.transpose(1, 2, 0, 3), rhs_dilation,
                   kernel_padding, lhs_dilation=lhs_dilation, rhs_dilation=strides)
    return dx, dkernel.transpose(1, 2, 0, 3)


_conv.defvjp(_conv_forward, _conv_backward)


def kernel_and_bias(module, x):
    """x, and a convolution module's HWIO ``kernel`` and ``bias`` as flax's layers make them.

    Same names, shapes, initialisers and dtype promotion as ``nn.Conv``, so
    parameters and checkpoints carry over between the two.
    """
    kernel = module.param('kernel', module.kernel_init,
                          (*module.kernel_size, x.shape[-1], module.features))
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
