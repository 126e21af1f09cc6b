"""ResNet generator and discriminator of SNGAN and of WGAN-GP's CIFAR-10 model.

SNGAN: Miyato et al. 2018 (Appendix B.4) and the projection discriminator of
Miyato & Koyama 2018, as in the authors' Chainer code (pfnet-research/
sngan_projection: gen_models/resblocks.py, dis_models/resblocks.py) and its
PyTorch port (kwotsin/mimicry: sngan_{32,48,64,128}.py, cgan_pd_*.py).
WGAN-GP: Gulrajani et al. 2017 (igul222/improved_wgan_training,
gan_cifar_resnet.py), the same network at 32x32 with 128 channels, no
normalisation in D (``d_spectral_norm=False``) and mean instead of sum pooling.

One module per network covers every resolution: ``PLANS`` lists, per
resolution, the widths of G's dense layer and up blocks and of D's blocks, as
multiples of ``width`` (the authors' ``ch``: 256 for G and 128 for D at 32x32,
64 elsewhere). Parameter counts equal the references (tests/models/test_resnet.py).
BatchNorm takes PyTorch's defaults (epsilon 1e-5, as mimicry and tflib; the
Chainer code's is 2e-5).
"""

from typing import NamedTuple

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models.conv import Conv
from gan_jax.models.layers import (
    DiscriminatorHead,
    batch_norm,
    bn_axis,
    check_resolution,
    class_condition,
    generator_batch_norm,
    generator_classes,
    spectral,
    square_image,
)


class Plan(NamedTuple):
    g_widths: tuple[int, ...]  # G's dense layer, then each up block.
    d_widths: tuple[int, ...]  # D's optimised first block, then each block.
    d_downsample: int  # The first this many D blocks halve the grid.


PLANS = {
    32: Plan((1, 1, 1, 1), (1, 1, 1, 1), 2),  # 4x4 -> 32; 32 -> 8.
    48: Plan((8, 4, 2, 1), (1, 2, 4, 8, 16), 4),  # 6x6 -> 48 (STL-10); 48 -> 3.
    64: Plan((16, 8, 4, 2, 1), (1, 2, 4, 8, 16), 5),  # 4x4 -> 64; 64 -> 2.
    128: Plan((16, 16, 8, 4, 2, 1), (1, 2, 4, 8, 16, 16), 5),  # 4x4 -> 128; 128 -> 4.
}

# The references' initialisation: Glorot-uniform, with gain sqrt(2) for the
# 3x3 convolutions inside the residual branches (ReLU follows) and gain 1 for
# shortcuts, the dense input, the output convolution and D's head. WGAN-GP's
# tflib ``he_init`` draws from the same distribution.
_residual_init = nn.initializers.variance_scaling(2.0, 'fan_avg', 'uniform')
_glorot = nn.initializers.glorot_uniform()

POOLINGS = {'sum': jnp.sum, 'mean': jnp.mean}


def plan(resolution: int) -> Plan:
    try:
        return PLANS[resolution]
    except KeyError:
        raise ValueError(
            f'Unsupported ResNet resolution {resolution!r}; accepted are '
            f'{", ".join(map(str, sorted(PLANS)))}.'
        ) from None


def _upsample(x):
    """Nearest-neighbour 2x, as the references (not mimicry's bilinear)."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _downsample(x):
    return nn.avg_pool(x, (2, 2), strides=(2, 2))


def _conv(features, kernel, init, name, enabled, train):
    conv = Conv(features, (kernel, kernel), padding='SAME', kernel_init=init, name=name)
    return spectral(conv, enabled, train)


class GBlock(nn.Module):
    """BN-ReLU-up-conv3x3-BN-ReLU-conv3x3, plus an up-conv1x1 shortcut.

    Every G block upsamples, so the shortcut is always learnable.
    """

    features: int
    spectral_norm: bool = False
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x, condition, *, train: bool):
        def norm(h):
            return nn.relu(
                generator_batch_norm(h, condition, train=train, axis_name=self.bn_axis_name)
            )

        def conv(kernel, init, name):
            return _conv(self.features, kernel, init, name, self.spectral_norm, train)

        h = conv(3, _residual_init, 'conv1')(_upsample(norm(x)))
        h = conv(3, _residual_init, 'conv2')(norm(h))
        # A 1x1 convolution commutes with nearest upsampling: convolving first
        # is the references' upsample-then-convolve at a quarter of the cost.
        return h + _upsample(conv(1, _glorot, 'shortcut')(x))


class DBlock(nn.Module):
    """ReLU-conv3x3-ReLU-conv3x3[-avgpool] plus a shortcut.

    The shortcut is a 1x1 convolution (then the same pooling) only where the
    width changes or the block downsamples; otherwise the identity. The
    ``optimised`` first block takes the image directly: no leading ReLU, its
    first convolution already has the output width, and its shortcut pools
    before the 1x1 convolution.
    """

    features: int
    downsample: bool
    optimised: bool = False
    spectral_norm: bool = True

    @nn.compact
    def __call__(self, x, *, train: bool):
        def conv(features, kernel, init, name):
            return _conv(features, kernel, init, name, self.spectral_norm, train)

        hidden = self.features if self.optimised else x.shape[-1]
        h = x if self.optimised else nn.relu(x)
        h = conv(hidden, 3, _residual_init, 'conv1')(h)
        h = conv(self.features, 3, _residual_init, 'conv2')(nn.relu(h))
        if self.downsample:
            h = _downsample(h)
        if self.optimised:
            return h + conv(self.features, 1, _glorot, 'shortcut')(_downsample(x))
        if x.shape[-1] == self.features and not self.downsample:
            return h + x
        skip = conv(self.features, 1, _glorot, 'shortcut')(x)
        return h + (_downsample(skip) if self.downsample else skip)


class ResNetGenerator(nn.Module):
    """z [B, z_dim] (and labels [B] when conditional) -> images [B, R, R, channels] in [-1, 1]."""

    resolution: int
    channels: int = 3
    width: int = 64
    num_classes: int | None = None  # Set: class-conditional BatchNorm in every block.
    spectral_norm: bool = False
    bn_axis_name: str | None = None

    def __post_init__(self):
        plan(self.resolution)  # Reject bad resolutions at construction.
        super().__post_init__()

    @nn.compact
    def __call__(self, z, labels=None, *, train: bool):
        widths = [self.width * m for m in plan(self.resolution).g_widths]
        base = self.resolution >> (len(widths) - 1)
        condition = class_condition(labels, self.num_classes)
        dense = nn.Dense(base * base * widths[0], kernel_init=_glorot)
        x = spectral(dense, self.spectral_norm, train)(z).reshape(z.shape[0], base, base, widths[0])
        for features in widths[1:]:
            x = GBlock(features, self.spectral_norm, self.bn_axis_name)(x, condition, train=train)
        # The output BN is unconditional in the references.
        x = nn.relu(batch_norm(train, self.bn_axis_name)(x))
        return jnp.tanh(_conv(self.channels, 3, _glorot, 'output', self.spectral_norm, train)(x))


class ResNetDiscriminator(nn.Module):
    """Images [B, R, R, C] (and labels) -> logits [B], or (logits, class logits) for ACGAN."""

    resolution: int
    width: int = 64
    conditioning: str | None = None  # A name in layers.HEADS.
    num_classes: int | None = None
    spectral_norm: bool = True
    pooling: str = 'sum'  # Global pooling: SNGAN sums, WGAN-GP averages.

    def __post_init__(self):
        plan(self.resolution)
        if self.pooling not in POOLINGS:
            raise ValueError(f'model.d_pooling={self.pooling!r} is not one of {sorted(POOLINGS)}.')
        # An unbound head, so a bad conditioning fails here rather than at init.
        DiscriminatorHead(self.conditioning, self.num_classes, parent=None)
        super().__post_init__()

    @nn.compact
    def __call__(self, x, labels=None, *, train: bool):
        check_resolution(x, self.resolution)
        layout = plan(self.resolution)
        for i, multiple in enumerate(layout.d_widths):
            x = DBlock(
                self.width * multiple,
                downsample=i < layout.d_downsample,
                optimised=i == 0,
                spectral_norm=self.spectral_norm,
            )(x, train=train)
        features = POOLINGS[self.pooling](nn.relu(x), axis=(1, 2))
        head = DiscriminatorHead(
            self.conditioning, self.num_classes, self.spectral_norm, kernel_init=_glorot
        )
        return head(features, labels, train=train)


def build(model_config, image_shape) -> tuple[ResNetGenerator, ResNetDiscriminator]:
    """(G, D) for square (R, R, C) images, R in ``PLANS``.

    ``model_config.conditioning`` set makes G class-conditional too; its
    ``d_pooling`` ('sum' for SNGAN, 'mean' for WGAN-GP) picks D's global pooling.
    """
    resolution, channels = square_image(image_shape, 'resnet')
    return (
        ResNetGenerator(
            resolution,
            channels,
            model_config.g_width,
            generator_classes(model_config),
            model_config.g_spectral_norm,
            bn_axis(model_config),
        ),
        ResNetDiscriminator(
            resolution,
            model_config.d_width,
            model_config.conditioning,
            model_config.num_classes,
            model_config.d_spectral_norm,
            model_config.d_pooling,
        ),
    )
