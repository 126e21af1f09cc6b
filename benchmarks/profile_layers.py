"""Per-layer profile of the DCGAN-32 step: each convolution in gan_jax vs PyTorch.

    python benchmarks/profile_layers.py [--batch 64] [--repeats 20]

For each of DCGAN-32's six convolutions (G's three 4x4 stride-2 transposed
convolutions, D's three 4x4 stride-2 convolutions), at the step's batch size:
the forward pass alone and forward + backward (gradients for input and
weights), in gan_jax (XLA, NHWC, the layers the models use, compiled with the
library's compiler options: gan_jax/parallel.py) and in PyTorch
eager (NCHW, oneDNN on CPU), as median ms and GFLOP/s (2 FLOPs per
multiply-add of the convolution itself). Says where the train step loses time.

A second table times the matrix products the layers reduce to (the phase form
of models/conv.py: (batch * pixels, in channels) @ (in channels, 16 * out
channels), one per G layer and per D input gradient) in both frameworks, to
tell slow matrix-product kernels from slow convolution kernels.
"""

import argparse

import jax
import numpy as np
import torch

from benchmarks.timing import median_seconds
from gan_jax import parallel
from gan_jax.models.conv import Conv
from gan_jax.models.conv_transpose import PhaseConvTranspose

# (name, transposed, in grid, in channels, out channels)
LAYERS = (
    ('G up 4->8', True, 4, 256, 128),
    ('G up 8->16', True, 8, 128, 64),
    ('G up 16->32', True, 16, 64, 3),
    ('D down 32->16', False, 32, 3, 64),
    ('D down 16->8', False, 16, 64, 128),
    ('D down 8->4', False, 8, 128, 256),
)


def _jit(fn):
    """``jax.jit`` as the library compiles (``parallel.compiler_options()``)."""
    return jax.jit(fn, compiler_options=parallel.compiler_options())


def _median_ms(fn, repeats):
    return 1e3 * median_seconds(fn, repeats)


def jax_times(transposed, grid, c_in, c_out, batch, repeats):
    layer = (
        PhaseConvTranspose(c_out, (4, 4), (2, 2))
        if transposed
        else Conv(c_out, (4, 4), (2, 2), padding='SAME')
    )
    x = jax.random.normal(jax.random.key(0), (batch, grid, grid, c_in))
    params = layer.init(jax.random.key(1), x)
    forward = _jit(layer.apply)

    @_jit
    def forward_backward(params, x):
        out, vjp = jax.vjp(layer.apply, params, x)
        return vjp(out)

    return (
        _median_ms(lambda: jax.block_until_ready(forward(params, x)), repeats),
        _median_ms(lambda: jax.block_until_ready(forward_backward(params, x)), repeats),
    )


def torch_times(transposed, grid, c_in, c_out, batch, repeats):
    layer = (
        torch.nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)
        if transposed
        else torch.nn.Conv2d(c_in, c_out, 4, 2, 1)
    )
    x = torch.randn(batch, c_in, grid, grid, requires_grad=True)

    def forward():
        with torch.no_grad():
            layer(x)

    def forward_backward():
        out = layer(x)
        torch.autograd.grad(out, (x, *layer.parameters()), out)

    return _median_ms(forward, repeats), _median_ms(forward_backward, repeats)


def matmul_times(m, k, n, repeats):
    """Median ms of an (m, k) @ (k, n) float32 product: gan_jax's jit, then torch.mm."""
    a, b = (
        np.random.default_rng(i).standard_normal(shape, np.float32)
        for i, shape in enumerate(((m, k), (k, n)))
    )
    product = _jit(jax.numpy.matmul)
    ja, jb = jax.device_put(a), jax.device_put(b)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    return (
        _median_ms(lambda: jax.block_until_ready(product(ja, jb)), repeats),
        _median_ms(lambda: torch.mm(ta, tb), repeats),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--repeats', type=int, default=20)
    args = parser.parse_args()
    print(
        f'{"layer":<14} {"GFLOP":>6} | {"forward ms (GFLOP/s)":^31} | '
        f'{"forward+backward ms (GFLOP/s)":^31}'
    )
    print(f'{"":<14} {"":>6} | {"gan_jax":^15} {"torch":^15} | {"gan_jax":^15} {"torch":^15}')
    totals = np.zeros(4)
    for name, transposed, grid, c_in, c_out in LAYERS:
        # Multiply-adds: 16 taps per input pixel (transposed) or per output pixel.
        macs = args.batch * (grid if transposed else grid // 2) ** 2 * c_in * c_out * 16
        gflop = 2 * macs / 1e9
        times = (
            *jax_times(transposed, grid, c_in, c_out, args.batch, args.repeats),
            *torch_times(transposed, grid, c_in, c_out, args.batch, args.repeats),
        )
        jf, jb, tf, tb = times
        totals += times
        cell = lambda ms, passes: f'{ms:6.1f} ({passes * gflop / ms * 1e3:4.0f})'
        print(
            f'{name:<14} {gflop:6.2f} | {cell(jf, 1)} {cell(tf, 1)} | {cell(jb, 3)} {cell(tb, 3)}'
        )
    print(
        f'{"total ms":<14} {"":>6} | {totals[0]:15.1f} {totals[2]:15.1f} | '
        f'{totals[1]:15.1f} {totals[3]:15.1f}'
    )

    print(
        f'\n{"phase-form product":<24} {"GFLOP":>6} | {"gan_jax ms (GFLOP/s)":^20} | '
        f'{"torch.mm ms (GFLOP/s)":^20}'
    )
    for _, transposed, grid, c_in, c_out in LAYERS:
        if not transposed:
            continue
        m, k, n = args.batch * grid * grid, c_in, 16 * c_out
        gflop = 2 * m * k * n / 1e9
        jax_ms, torch_ms = matmul_times(m, k, n, args.repeats)
        cell = lambda ms: f'{ms:6.1f} ({gflop / ms * 1e3:4.0f})'
        print(
            f'{f"{m}x{k} @ {k}x{n}":<24} {gflop:6.2f} | {cell(jax_ms):^20} | {cell(torch_ms):^20}'
        )


if __name__ == '__main__':
    main()
