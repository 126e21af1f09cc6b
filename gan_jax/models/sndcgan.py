"""The "standard CNN" of the spectral normalisation paper (Miyato et al. 2018, Table 3).

G: z -> dense to M_g x M_g x 8w, BN, ReLU -> three 4x4 stride-2 transposed
convolutions to 4w, 2w, w (each BN, ReLU) -> 3x3 convolution to the image, tanh.
D: seven convolutions, 3x3 stride 1 and 4x4 stride 2 in turn, of w, w, 2w, 2w,
4w, 4w, 8w channels, each followed by leaky ReLU with slope 0.1, then a dense
layer on the flattened M_g x M_g x 8w features; spectral norm on every D layer.
w = 64 is the paper's width; M_g = R / 8 (4 for 32x32, 6 for STL-10's 48x48).

Parameter counts equal two PyTorch reproductions of the table (tests/models/
test_sndcgan.py): G that of w86763777/pytorch-gan-collections (sngan.py: dense
with bias, BN over the 8w channels), D that of christiancosgrove/pytorch-
spectral-normalization-gan (model.py). Every layer has a bias, the ones before
BN included, as in all references. The authors' own chainer-gan-lib
(common/net.py) departs from the table: D widths w, 2w, 2w, 4w, 4w, 8w, 8w,
Chainer's default slope 0.2, and BN over each of the M_g*M_g*8w dense outputs.
Kernels start from N(0, 0.02), as in chainer-gan-lib and pytorch-gan-collections.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models.conv import Conv
from gan_jax.models.conv_transpose import PhaseConvTranspose
from gan_jax.models.layers import (
    DiscriminatorHead,
    bn_axis,
    check_resolution,
    class_condition,
    dcgan_normal,
    generator_batch_norm,
    generator_classes,
    spectral,
    square_image,
)

GRIDS = {32: 4, 48: 6}  # Resolution -> M_g, G's first and D's last grid.

# (channels as a multiple of the width, kernel, stride) of D's convolutions.
D_LAYERS = ((1, 3, 1), (1, 4, 2), (2, 3, 1), (2, 4, 2), (4, 3, 1), (4, 4, 2), (8, 3, 1))
LEAK = 0.1


def grid(resolution: int) -> int:
    try:
        return GRIDS[resolution]
    except KeyError:
        raise ValueError(
            f'Unsupported SN-DCGAN resolution {resolution!r}; accepted are '
            f'{", ".join(map(str, sorted(GRIDS)))}.'
        ) from None


class SNDCGANGenerator(nn.Module):
    """z [B, z_dim] (and labels [B] when conditional) -> images [B, R, R, channels] in [-1, 1]."""

    resolution: int
    channels: int = 3
    width: int = 64
    num_classes: int | None = None  # Set: every BN is class-conditional.
    spectral_norm: bool = False
    bn_axis_name: str | None = None

    def __post_init__(self):
        grid(self.resolution)  # Reject bad resolutions at construction.
        super().__post_init__()

    @nn.compact
    def __call__(self, z: jax.Array, labels=None, *, train: bool) -> jax.Array:
        size = grid(self.resolution)
        condition = class_condition(labels, self.num_classes)

        def bn_relu(x):
            return nn.relu(
                generator_batch_norm(x, condition, train=train, axis_name=self.bn_axis_name)
            )

        def sn(module):
            return spectral(module, self.spectral_norm, train)

        features = 8 * self.width
        x = sn(nn.Dense(size * size * features, kernel_init=dcgan_normal))(z)
        # BN over the 8w channels of the grid, as the paper's BN layers.
        x = bn_relu(x.reshape(z.shape[0], size, size, features))
        for _ in range(3):
            features //= 2
            x = bn_relu(
                sn(PhaseConvTranspose(features, (4, 4), (2, 2), kernel_init=dcgan_normal))(x)
            )
        return jnp.tanh(sn(Conv(self.channels, (3, 3), padding=1, kernel_init=dcgan_normal))(x))


class SNDCGANDiscriminator(nn.Module):
    """Images [B, R, R, C] (and labels) -> logits [B], or (logits, class logits) for ACGAN."""

    resolution: int
    width: int = 64
    conditioning: str | None = None  # A name in layers.HEADS.
    num_classes: int | None = None
    spectral_norm: bool = True

    def __post_init__(self):
        grid(self.resolution)
        # An unbound head, so a bad conditioning fails here rather than at init.
        DiscriminatorHead(self.conditioning, self.num_classes, parent=None)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, labels=None, *, train: bool):
        check_resolution(x, self.resolution)
        for multiple, kernel, stride in D_LAYERS:
            conv = Conv(
                multiple * self.width,
                (kernel, kernel),
                strides=stride,
                padding=1,
                kernel_init=dcgan_normal,
            )
            x = nn.leaky_relu(spectral(conv, self.spectral_norm, train)(x), LEAK)
        head = DiscriminatorHead(
            self.conditioning, self.num_classes, self.spectral_norm, kernel_init=dcgan_normal
        )
        return head(x.reshape(x.shape[0], -1), labels, train=train)


def build(model_config, image_shape) -> tuple[SNDCGANGenerator, SNDCGANDiscriminator]:
    """(G, D) for square (R, R, C) images, R in ``GRIDS``; widths from g_width/d_width (64)."""
    resolution, channels = square_image(image_shape, 'sndcgan')
    return (
        SNDCGANGenerator(
            resolution,
            channels,
            model_config.g_width,
            generator_classes(model_config),
            model_config.g_spectral_norm,
            bn_axis(model_config),
        ),
        SNDCGANDiscriminator(
            resolution,
            model_config.d_width,
            model_config.conditioning,
            model_config.num_classes,
            model_config.d_spectral_norm,
        ),
    )
