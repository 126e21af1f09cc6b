"""DCGAN generator and discriminator (Radford et al. 2016).

Both networks are built from a resolution = base * 2**n with base 4 or 7, so
one module covers 28x28 (MNIST-like, base 7) and 32/64/128 (base 4): the
generator upsamples n times from the base grid, the discriminator downsamples
n times to it. Convolutions followed by BatchNorm carry no bias because BN's
own shift makes it redundant (as in the reference implementation).

Toolbox options (not in the paper): class conditioning (conditional BN in G,
a projection or ACGAN head in D) and spectral norm on every layer of G or D.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models.conv import Conv
from gan_jax.models.conv_transpose import PhaseConvTranspose
from gan_jax.models.layers import (
    DiscriminatorHead,
    batch_norm,
    check_resolution,
    class_condition,
    dcgan_normal,
    generator_batch_norm,
    spectral,
)

BASE_GRIDS = (4, 7)

# 4x4 stride-2 convolutions; "SAME" doubles (transposed) or halves the grid,
# matching PyTorch's padding=1 for these kernel/stride sizes. They compute
# nn.ConvTranspose and nn.Conv with the same parameters, but differentiate fast
# on CPU (conv_transpose.py) and inside loops (conv.py).
_Up = functools.partial(
    PhaseConvTranspose,
    kernel_size=(4, 4),
    strides=(2, 2),
    kernel_init=dcgan_normal,
)
_Down = functools.partial(
    Conv,
    kernel_size=(4, 4),
    strides=(2, 2),
    padding='SAME',
    kernel_init=dcgan_normal,
)


def base_grid(resolution: int) -> tuple[int, int]:
    """Splits `resolution` into (base, n) with resolution = base * 2**n, n >= 2."""
    for base in BASE_GRIDS:
        ratio, remainder = divmod(resolution, base)
        if remainder == 0 and ratio >= 4 and ratio & (ratio - 1) == 0:
            return base, ratio.bit_length() - 1
    raise ValueError(
        f'Unsupported DCGAN resolution {resolution!r}; accepted are 28, 32, 64, '
        '128 and generally 4 * 2**n or 7 * 2**n with n >= 2.'
    )


class DCGANGenerator(nn.Module):
    """Maps latents z [B, z_dim] to images [B, R, R, channels] in [-1, 1]."""

    resolution: int
    channels: int
    width: int = 64
    bn_axis_name: str | None = None
    num_classes: int | None = None  # Set: class-conditional BatchNorm.
    spectral_norm: bool = False

    def __post_init__(self):
        base_grid(self.resolution)  # Reject bad resolutions at construction.
        super().__post_init__()

    @nn.compact
    def __call__(self, z: jax.Array, labels: jax.Array | None = None, *, train: bool) -> jax.Array:
        base, n = base_grid(self.resolution)

        condition = class_condition(labels, self.num_classes)

        def norm_relu(x):
            return nn.relu(
                generator_batch_norm(x, condition, train=train, axis_name=self.bn_axis_name)
            )

        def layer(module):
            return spectral(module, self.spectral_norm, train)

        features = self.width * 2 ** (n - 1)
        x = layer(nn.Dense(base * base * features, use_bias=False, kernel_init=dcgan_normal))(z)
        x = norm_relu(x.reshape(z.shape[0], base, base, features))
        for _ in range(n - 1):
            features //= 2
            x = norm_relu(layer(_Up(features, use_bias=False))(x))
        # No BN on the output layer: it would pin the image statistics.
        return jnp.tanh(layer(_Up(self.channels))(x))


class DCGANDiscriminator(nn.Module):
    """Maps images [B, R, R, C] to real/fake logits [B] (and class logits for ACGAN).

    C may be m times the image channels when PacGAN packs m images per input.
    """

    resolution: int
    width: int = 64
    bn_axis_name: str | None = None
    conditioning: str | None = None  # A name in layers.HEADS.
    num_classes: int | None = None
    spectral_norm: bool = False

    def __post_init__(self):
        base_grid(self.resolution)  # Reject bad resolutions at construction.
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, labels: jax.Array | None = None, *, train: bool):
        _, n = base_grid(self.resolution)
        check_resolution(x, self.resolution)

        def layer(module):
            return spectral(module, self.spectral_norm, train)

        # No BN on the input layer: it would normalise away the data statistics.
        x = nn.leaky_relu(layer(_Down(self.width))(x), 0.2)
        for i in range(1, n):
            x = layer(_Down(self.width * 2**i, use_bias=False))(x)
            x = nn.leaky_relu(batch_norm(train, self.bn_axis_name)(x), 0.2)
        x = x.reshape(x.shape[0], -1)
        return DiscriminatorHead(
            self.conditioning, self.num_classes, self.spectral_norm, kernel_init=dcgan_normal
        )(x, labels, train=train)
