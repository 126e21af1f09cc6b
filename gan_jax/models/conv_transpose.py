"""A transposed convolution computed by output phase (``conv.dilated_conv``).

``PhaseConvTranspose`` computes exactly the function of ``flax.linen.ConvTranspose``
(``padding="SAME"``, ``transpose_kernel=False``) with the same parameters: a
``kernel`` of shape (kh, kw, in, out) and a ``bias``, so the two are
interchangeable. Why: XLA:CPU differentiates a strided transposed convolution
through a dilated-input convolution that multiplies mostly by inserted zeros;
this form avoids them (speed measured in benchmarks/README.md). A transposed
convolution is a stride-1 convolution of the input dilated ``s`` times, which
``dilated_conv`` computes as one matrix product plus a shifted sum per output
phase; its gradients are strided convolutions.
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn

from gan_jax.models.conv import dilated_conv, kernel_and_bias


def same_padding(kernel, stride):
    """(before, after) padding of ``lax.conv_transpose(..., padding='SAME')`` on one axis."""
    before = kernel - 1 if stride > kernel - 1 else -(-(kernel + stride - 2) // 2)
    return before, kernel + stride - 2 - before


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
        padding = [same_padding(k, s) for k, s in zip(self.kernel_size, self.strides)]
        y = dilated_conv(x, kernel, self.strides, padding)
        return y if bias is None else y + bias
