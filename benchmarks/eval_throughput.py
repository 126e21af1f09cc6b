"""Feature-extraction throughput of the evaluation extractors (images/s).

    python benchmarks/eval_throughput.py [--batch 50] [--repeats 5] [--xla_default_convolutions]

LeNet-MNIST on 28x28x1 uint8 images with the committed weights; the FID Inception
network on 32x32x3 uint8 images resized to 299x299 (the CIFAR-10 FID protocol)
with random weights of the right shapes: speed does not depend on the values, and
the real weights cannot be downloaded here. Prints the median over repeats after
one compiling call. Compiled as gan_jax.evaluate compiles them, with
``parallel.compiler_options()``; ``--xla_default_convolutions`` leaves those out.
Measure on a quiet machine.
"""

import argparse
import functools

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.timing import median_seconds
from gan_jax import parallel
from gan_jax.metrics import classifiers, inception


def _images_per_second(fn, images, repeats):
    # The warm-up call compiles.
    return len(images) / median_seconds(lambda: jax.block_until_ready(fn(images)), repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--batch', type=int, default=50)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--xla_default_convolutions', action='store_true')
    args = parser.parse_args()
    if args.xla_default_convolutions:
        parallel.CPU_COMPILER_OPTIONS = {}
    jit = functools.partial(jax.jit, compiler_options=parallel.compiler_options())
    rng = np.random.default_rng(0)

    lenet, _ = classifiers.load_classifier('lenet_mnist')
    digits = jnp.asarray(rng.integers(0, 256, (args.batch, 28, 28, 1), np.uint8))
    print(
        f'lenet_mnist 28x28: {_images_per_second(jit(lenet), digits, args.repeats):.0f} '
        f'images/s (batch {args.batch})'
    )

    variables = jax.jit(inception.FIDInceptionV3().init)(
        jax.random.PRNGKey(0), jnp.zeros((1, 299, 299, 3))
    )
    cifar = jnp.asarray(rng.integers(0, 256, (args.batch, 32, 32, 3), np.uint8))
    # Weights passed as an argument, as in gan_jax.evaluate, not baked in as constants.
    apply = functools.partial(jit(inception.fid_inception_apply), variables)
    print(
        f'fid_inception 32->299: {_images_per_second(apply, cifar, args.repeats):.1f} '
        f'images/s (batch {args.batch}) on {jax.devices()[0].platform}'
    )


if __name__ == '__main__':
    main()
