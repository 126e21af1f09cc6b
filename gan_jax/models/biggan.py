"""BigGAN generator and discriminator (Brock et al. 2019).

Structure and parameter counts follow the authors' PyTorch code
(ajbrock/BigGAN-PyTorch, BigGAN.py and layers.py): residual blocks of 3x3
convolutions, spectral norm on every convolution and linear layer, conditional
BatchNorm in G, an optional SAGAN self-attention block in both networks, and a
projection discriminator. One module per network covers every resolution in
``ARCHS``. The ImageNet model additionally splits z hierarchically and
conditions every G block on a shared class embedding; the reference's CIFAR-10
script turns both off (G then keeps per-class BatchNorm gain/bias tables), so
both are options.
"""

import functools
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models.conv import Conv
from gan_jax.models.layers import (
    ConditionalBatchNorm,
    DiscriminatorHead,
    bn_axis,
    check_resolution,
    class_vectors,
    spectral,
    square_image,
)

BOTTOM = 4  # G starts from a 4x4 grid at every resolution.
BN_EPSILON = 1e-5  # The reference's BN_eps in all its launch scripts.
INITS = {
    # The reference's G_init/D_init: 'ortho' for ImageNet, 'N02' for CIFAR-10.
    # Biases start at 0 (the reference keeps PyTorch's small uniform ones).
    'ortho': nn.initializers.orthogonal(),
    'N02': nn.initializers.normal(stddev=0.02),
}


class Arch(NamedTuple):
    """Channel widths, as multiples of the width parameter (the reference's ch).

    ``g``: G's width after the first linear layer, then after each upsampling
    block. ``d``: D's width after each block; its first ``d_downsamples``
    blocks halve the grid.
    """

    g: tuple[int, ...]
    d: tuple[int, ...]
    d_downsamples: int


ARCHS = {
    32: Arch(g=(4, 4, 4, 4), d=(4, 4, 4, 4), d_downsamples=2),
    128: Arch(g=(16, 16, 8, 4, 2, 1), d=(1, 2, 4, 8, 16, 16), d_downsamples=5),
}


def _arch(resolution: int) -> Arch:
    if resolution not in ARCHS:
        raise ValueError(
            f'Unsupported BigGAN resolution {resolution!r}; accepted are '
            f'{", ".join(map(str, sorted(ARCHS)))}.'
        )
    return ARCHS[resolution]


def _g_grids(resolution: int) -> list[int]:
    """Grid size after each G block."""
    return [BOTTOM * 2 ** (i + 1) for i in range(len(_arch(resolution).g) - 1)]


def _d_grids(resolution: int) -> list[int]:
    """Grid size after each D block."""
    arch = _arch(resolution)
    return [resolution >> min(i + 1, arch.d_downsamples) for i in range(len(arch.d))]


def _attention_block(
    grids: list[int], attention_resolution: int | None, network: str
) -> int | None:
    """Index of the first block whose output grid is `attention_resolution`.

    One attention block per network, as in the paper; the reference would add
    one after every block of that size (only relevant to unpublished settings).
    """
    if attention_resolution is None:
        return None
    if attention_resolution not in grids:
        raise ValueError(
            f'BigGAN attention_resolution={attention_resolution!r} is not a block '
            f'resolution of the {network}; choose one of {sorted(set(grids))} or None.'
        )
    return grids.index(attention_resolution)


def _check_init(weight_init: str) -> None:
    if weight_init not in INITS:
        raise ValueError(f'BigGAN weight_init={weight_init!r} is not one of {sorted(INITS)}.')


def _conv(features, kernel_size, *, init, spectral_norm, train, use_bias=True, name=None):
    conv = Conv(
        features,
        (kernel_size, kernel_size),
        padding='SAME',
        use_bias=use_bias,
        kernel_init=init,
        name=name,
    )
    return spectral(conv, spectral_norm, train)


def _upsample(x: jax.Array) -> jax.Array:
    """Nearest-neighbour x2, as the reference's F.interpolate default."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _avg_pool(x: jax.Array) -> jax.Array:
    return nn.avg_pool(x, (2, 2), strides=(2, 2))


class SelfAttention(nn.Module):
    """SAGAN non-local block as in the reference's released code (not the paper).

    Keys (phi) and values (g) are max-pooled 2x2, so attention costs a quarter of
    the full (HW)^2. The learnable gain starts at 0: the block is the identity
    at initialisation and the network learns how much to use it.
    """

    spectral_norm: bool
    weight_init: str

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        batch, height, width, channels = x.shape
        conv = functools.partial(
            _conv,
            kernel_size=1,
            init=INITS[self.weight_init],
            spectral_norm=self.spectral_norm,
            train=train,
            use_bias=False,
        )

        def pooled(y):
            return nn.max_pool(y, (2, 2), strides=(2, 2)).reshape(batch, -1, y.shape[-1])

        queries = conv(channels // 8, name='theta')(x).reshape(batch, height * width, -1)
        keys = pooled(conv(channels // 8, name='phi')(x))
        values = pooled(conv(channels // 2, name='g')(x))
        weights = jax.nn.softmax(jnp.einsum('bqc,bkc->bqk', queries, keys), axis=-1)
        attended = jnp.einsum('bqk,bkc->bqc', weights, values)
        out = conv(channels, name='o')(attended.reshape(batch, height, width, channels // 2))
        gamma = self.param('gamma', nn.initializers.zeros, ())
        return x + gamma * out


class GBlock(nn.Module):
    """cBN-ReLU-upsample-conv3x3, cBN-ReLU-conv3x3, plus an upsample-conv1x1 shortcut.

    Every block upsamples, so the shortcut is always learnable. ``shared_condition``:
    the BN condition is [shared embedding, z chunk] and its gain/bias layers
    are spectrally normalised linear maps without bias (the reference's
    G_shared); otherwise it is one-hot labels into plain per-class tables (the
    reference's nn.Embedding).
    """

    features: int
    shared_condition: bool
    spectral_norm: bool
    weight_init: str
    bn_axis_name: str | None

    @nn.compact
    def __call__(self, x: jax.Array, condition: jax.Array, *, train: bool) -> jax.Array:
        init = INITS[self.weight_init]
        conv = functools.partial(
            _conv, self.features, init=init, spectral_norm=self.spectral_norm, train=train
        )
        bn = functools.partial(
            ConditionalBatchNorm,
            axis_name=self.bn_axis_name,
            epsilon=BN_EPSILON,
            use_bias=False,
            spectral_norm=self.spectral_norm and self.shared_condition,
            kernel_init=init,
        )
        h = nn.relu(bn(name='bn1')(x, condition, train=train))
        h = conv(3, name='conv1')(_upsample(h))
        h = nn.relu(bn(name='bn2')(h, condition, train=train))
        h = conv(3, name='conv2')(h)
        return h + conv(1, name='conv_sc')(_upsample(x))


class DBlock(nn.Module):
    """[ReLU]-conv3x3-ReLU-conv3x3-[avgpool], plus a conv1x1 shortcut when the
    width or grid changes (the reference's wide D: hidden width = output width).

    The first block skips the pre-activation ReLU so the input image keeps its
    sign. The reference convolves the shortcut before pooling in pre-activated
    blocks and after in the first; a 1x1 convolution commutes with average
    pooling, so pooling first computes the same function on a quarter of the
    pixels.
    """

    features: int
    downsample: bool
    preactivation: bool
    spectral_norm: bool
    weight_init: str

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        conv = functools.partial(
            _conv,
            self.features,
            init=INITS[self.weight_init],
            spectral_norm=self.spectral_norm,
            train=train,
        )
        h = nn.relu(x) if self.preactivation else x
        h = conv(3, name='conv1')(h)
        h = conv(3, name='conv2')(nn.relu(h))
        shortcut = x
        if self.downsample:
            h, shortcut = _avg_pool(h), _avg_pool(shortcut)
        if self.downsample or x.shape[-1] != self.features:
            shortcut = conv(1, name='conv_sc')(shortcut)
        return h + shortcut


class BigGANGenerator(nn.Module):
    """Maps latents z [B, z_dim] and labels [B] to images [B, R, R, channels] in [-1, 1].

    ``shared_embedding_dim``: size of the class embedding shared by all blocks'
    conditional BNs; None gives each BN its own per-class tables.
    ``hierarchical_latent``: z is split into len(blocks) + 1 equal chunks; the
    first feeds the linear layer, each other one joins the class embedding in
    one block's BN condition (so every scale gets its own noise).
    """

    resolution: int
    channels: int
    num_classes: int
    width: int = 64
    z_dim: int = 128
    shared_embedding_dim: int | None = None
    hierarchical_latent: bool = False
    attention_resolution: int | None = None
    spectral_norm: bool = True
    weight_init: str = 'ortho'
    bn_axis_name: str | None = None

    def __post_init__(self):
        # Reject bad settings at construction, before anything is traced.
        grids = _g_grids(self.resolution)
        _attention_block(
            grids, self.attention_resolution, f'{self.resolution}x{self.resolution} generator'
        )
        _check_init(self.weight_init)
        if self.hierarchical_latent:
            if self.shared_embedding_dim is None:
                raise ValueError(
                    'BigGAN hierarchical_latent=True needs a shared class embedding: '
                    'set shared_embedding_dim.'
                )
            slots = len(grids) + 1
            if self.z_dim % slots:
                raise ValueError(
                    f'BigGAN hierarchical_latent at {self.resolution}x{self.resolution} splits z '
                    f'into {slots} equal chunks (linear layer + {slots - 1} blocks), but z_dim='
                    f'{self.z_dim} is not a multiple of {slots}.'
                )
        super().__post_init__()

    @nn.compact
    def __call__(self, z: jax.Array, labels: jax.Array | None = None, *, train: bool) -> jax.Array:
        if labels is None:
            raise ValueError("BigGAN's generator is class-conditional: pass labels.")
        if z.shape[-1] != self.z_dim:
            raise ValueError(f'Expected z of size {self.z_dim}, got shape {z.shape}')
        init = INITS[self.weight_init]
        grids = _g_grids(self.resolution)
        attention_block = _attention_block(grids, self.attention_resolution, 'generator')
        widths = [self.width * m for m in _arch(self.resolution).g]

        shared = self.shared_embedding_dim is not None
        if shared:
            # Not spectrally normalised: per the reference, SN here cripples G.
            embed = nn.Embed(
                self.num_classes, self.shared_embedding_dim, embedding_init=init, name='shared'
            )
            # Class vectors (interpolations) mix the embeddings: one_hot @ table = lookup.
            classes = (
                class_vectors(labels, self.num_classes, z.dtype) @ embed.embedding
                if jnp.issubdtype(labels.dtype, jnp.floating)
                else embed(labels)
            )
        else:
            classes = class_vectors(labels, self.num_classes, z.dtype)
        if self.hierarchical_latent:
            z, *chunks = jnp.split(z, len(grids) + 1, axis=-1)
            conditions = [jnp.concatenate([classes, chunk], axis=-1) for chunk in chunks]
        else:
            conditions = [classes] * len(grids)

        linear = nn.Dense(BOTTOM * BOTTOM * widths[0], kernel_init=init, name='linear')
        x = spectral(linear, self.spectral_norm, train)(z)
        x = x.reshape(z.shape[0], BOTTOM, BOTTOM, widths[0])
        for i, (features, condition) in enumerate(zip(widths[1:], conditions)):
            x = GBlock(features, shared, self.spectral_norm, self.weight_init, self.bn_axis_name)(
                x, condition, train=train
            )
            if i == attention_block:
                x = SelfAttention(self.spectral_norm, self.weight_init)(x, train=train)

        # Plain BN with PyTorch's defaults (gain 1, bias 0), then ReLU-conv-tanh.
        x = nn.BatchNorm(
            use_running_average=not train,
            momentum=0.9,
            epsilon=BN_EPSILON,
            axis_name=self.bn_axis_name,
            name='output_bn',
        )(x)
        x = _conv(
            self.channels,
            3,
            init=init,
            spectral_norm=self.spectral_norm,
            train=train,
            name='output_conv',
        )(nn.relu(x))
        return jnp.tanh(x)


class BigGANDiscriminator(nn.Module):
    """Maps images [B, R, R, C] and labels [B] to real/fake logits [B].

    DBlocks, ReLU, global sum pooling (as SNGAN), then a linear logit plus the
    projection of a (spectrally normalised) class embedding.
    """

    resolution: int
    num_classes: int
    width: int = 64
    attention_resolution: int | None = None
    spectral_norm: bool = True
    weight_init: str = 'ortho'

    def __post_init__(self):
        _attention_block(
            _d_grids(self.resolution),
            self.attention_resolution,
            f'{self.resolution}x{self.resolution} discriminator',
        )
        _check_init(self.weight_init)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, labels: jax.Array | None = None, *, train: bool) -> jax.Array:
        if labels is None:
            raise ValueError("BigGAN's discriminator is class-conditional: pass labels.")
        check_resolution(x, self.resolution)
        arch = _arch(self.resolution)
        attention_block = _attention_block(
            _d_grids(self.resolution), self.attention_resolution, 'discriminator'
        )
        for i, multiple in enumerate(arch.d):
            x = DBlock(
                self.width * multiple,
                downsample=i < arch.d_downsamples,
                preactivation=i > 0,
                spectral_norm=self.spectral_norm,
                weight_init=self.weight_init,
            )(x, train=train)
            if i == attention_block:
                x = SelfAttention(self.spectral_norm, self.weight_init)(x, train=train)
        features = jnp.sum(nn.relu(x), axis=(1, 2))
        head = DiscriminatorHead(
            'projection', self.num_classes, self.spectral_norm, kernel_init=INITS[self.weight_init]
        )
        return head(features, labels, train=train)


def build(
    model_config, image_shape: tuple[int, ...]
) -> tuple[BigGANGenerator, BigGANDiscriminator]:
    """(generator, discriminator) from the `model` config and the data's (R, R, C)."""
    if model_config.conditioning != 'projection' or not model_config.num_classes:
        raise ValueError(
            'BigGAN is class-conditional (conditional BN in G, projection in D): it needs '
            f"model.conditioning='projection' (got {model_config.conditioning!r}) and a "
            f'labelled dataset (num_classes={model_config.num_classes!r}).'
        )
    resolution, channels = square_image(image_shape, 'biggan')
    common = dict(
        resolution=resolution,
        num_classes=model_config.num_classes,
        attention_resolution=model_config.attention_resolution,
        weight_init=model_config.weight_init or 'ortho',
    )
    generator = BigGANGenerator(
        channels=channels,
        width=model_config.g_width,
        z_dim=model_config.z_dim,
        shared_embedding_dim=model_config.shared_embedding_dim,
        hierarchical_latent=model_config.hierarchical_latent,
        spectral_norm=model_config.g_spectral_norm,
        bn_axis_name=bn_axis(model_config),
        **common,
    )
    discriminator = BigGANDiscriminator(
        width=model_config.d_width, spectral_norm=model_config.d_spectral_norm, **common
    )
    return generator, discriminator
