"""Forward+backward time of one transposed-conv layer: flax ConvTranspose vs PhaseConvTranspose.

    python benchmarks/conv_transpose.py [--batch 64] [--size 8] [--cin 256] [--cout 128]
                                        [--repeats 20]

Default: the 8x8x256 -> 16x16x128 stride-2 4x4 layer of a 32x32 DCGAN generator
(issue #6). Prints the median ms of value_and_grad (input and kernel), alternating
the two layers so machine load affects both alike. Measure on a quiet machine.
"""

import argparse
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models.conv_transpose import PhaseConvTranspose


def _timed_grad(module, x, repeats):
    params = module.init(jax.random.PRNGKey(0), x)
    grad = jax.jit(jax.grad(lambda p, x: jnp.sum(module.apply(p, x) ** 2), argnums=(0, 1)))
    jax.block_until_ready(grad(params, x))  # Compile.

    def once():
        start = time.perf_counter()
        jax.block_until_ready(grad(params, x))
        return (time.perf_counter() - start) * 1e3

    return once


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--size', type=int, default=8)
    parser.add_argument('--cin', type=int, default=256)
    parser.add_argument('--cout', type=int, default=128)
    parser.add_argument('--repeats', type=int, default=20)
    args = parser.parse_args()
    x = jax.random.normal(jax.random.PRNGKey(1), (args.batch, args.size, args.size, args.cin))
    layers = {
        'flax_conv_transpose': nn.ConvTranspose(args.cout, (4, 4), (2, 2), padding='SAME'),
        'phase_conv_transpose': PhaseConvTranspose(args.cout, (4, 4), (2, 2)),
    }
    timers = {name: _timed_grad(m, x, args.repeats) for name, m in layers.items()}
    times = {name: [] for name in layers}
    for _ in range(args.repeats):
        for name, once in timers.items():
            times[name].append(once())
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, ms in medians.items():
        print(f'{name}: {ms:.1f} ms (median of {args.repeats}, forward+backward)')
    print(
        f'speedup: {medians["flax_conv_transpose"] / medians["phase_conv_transpose"]:.2f}x '
        f'on {jax.devices()[0].platform}'
    )


if __name__ == '__main__':
    main()
