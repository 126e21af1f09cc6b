"""Forward+backward time of StyleGAN2's modulated 3x3 convolution in its two forms.

    python benchmarks/stylegan2_modconv.py [--batch 8] [--size 16] [--channels 256]
                                           [--repeats 10]

'batched': the activations scaled by the styles, one convolution shared by the
batch, then scaled by the demodulation coefficients (gan_jax's
``modulated_conv2d``, the official non-fused form). 'grouped': per-example
demodulated kernels and one grouped convolution (the official fused form).
Prints the median ms of the gradient with respect to input, weight and styles,
alternating the two forms so machine load affects both alike.
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
from jax import lax

from gan_jax.models.stylegan2 import modulated_conv2d


def grouped(x, weight, styles):
    w = weight[None] * styles[:, None, None, :, None]
    w = w * lax.rsqrt(jnp.sum(w**2, axis=(1, 2, 3), keepdims=True) + 1e-8)
    n, h, wd, i = x.shape
    x = x.transpose(1, 2, 0, 3).reshape(1, h, wd, n * i)
    w = w.transpose(1, 2, 3, 0, 4).reshape(3, 3, i, -1)
    y = lax.conv_general_dilated(
        x, w, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'), feature_group_count=n
    )
    return y.reshape(h, wd, n, -1).transpose(2, 0, 1, 3)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--size', type=int, default=16)
    parser.add_argument('--channels', type=int, default=256)
    parser.add_argument('--repeats', type=int, default=10)
    args = parser.parse_args()
    kx, kw, ks = jax.random.split(jax.random.PRNGKey(0), 3)
    c = args.channels
    x = jax.random.normal(kx, (args.batch, args.size, args.size, c))
    weight = jax.random.normal(kw, (3, 3, c, c))
    styles = jax.random.normal(ks, (args.batch, c))
    forms = {'batched': modulated_conv2d, 'grouped': grouped}
    grads = {
        name: jax.jit(jax.grad(lambda *a, f=f: jnp.sum(f(*a) ** 2), argnums=(0, 1, 2)))
        for name, f in forms.items()
    }
    times = {name: [] for name in forms}
    for grad in grads.values():
        jax.block_until_ready(grad(x, weight, styles))  # Compile.
    for _ in range(args.repeats):
        for name, grad in grads.items():
            start = time.perf_counter()
            jax.block_until_ready(grad(x, weight, styles))
            times[name].append((time.perf_counter() - start) * 1e3)
    for name, ms in times.items():
        print(f'{name}: {statistics.median(ms):.1f} ms (median of {args.repeats})')


if __name__ == '__main__':
    main()
