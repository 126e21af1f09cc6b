"""Model registry: builds a (generator, discriminator) pair from config."""

from collections.abc import Callable

import flax.linen as nn
import jax
import ml_collections

from gan_jax.models import biggan, resnet, sndcgan, stylegan2, tf_dcgan
from gan_jax.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_jax.models.layers import bn_axis, generator_classes, square_image
from gan_jax.models.mlp import MLPDiscriminator, MLPGenerator

Builder = Callable[[ml_collections.ConfigDict, tuple[int, ...]], tuple[nn.Module, nn.Module]]


def _build_dcgan(config, image_shape):
    resolution, channels = square_image(image_shape, 'dcgan')
    axis_name = bn_axis(config)
    return (
        DCGANGenerator(
            resolution,
            channels,
            config.g_width,
            axis_name,
            num_classes=generator_classes(config),
            spectral_norm=config.g_spectral_norm,
        ),
        DCGANDiscriminator(
            resolution,
            config.d_width,
            axis_name,
            conditioning=config.conditioning,
            num_classes=config.num_classes,
            spectral_norm=config.d_spectral_norm,
        ),
    )


def _build_mlp(config, image_shape):
    if len(image_shape) != 1:
        raise ValueError(f'mlp needs flat (D,) data, got shape {image_shape}')
    return (
        MLPGenerator(
            out_dim=image_shape[0],
            hidden=config.g_width,
            depth=config.g_depth,
            num_classes=generator_classes(config),
            batch_norm=config.g_batch_norm,
            slots=config.pack,
            weight_init=config.weight_init,
            activation=config.activation,
            axis_name=bn_axis(config),
        ),
        MLPDiscriminator(
            hidden=config.d_width,
            depth=config.d_depth,
            conditioning=config.conditioning,
            num_classes=config.num_classes,
            maxout_pieces=config.d_maxout_pieces,
            weight_init=config.weight_init,
            activation=config.activation,
        ),
    )


MODELS: dict[str, Builder] = {
    'dcgan': _build_dcgan,
    'mlp': _build_mlp,
    'sndcgan': sndcgan.build,
    'resnet': resnet.build,
    'biggan': biggan.build,
    'stylegan2': stylegan2.build,
    'veegan_dcgan': tf_dcgan.build_veegan,
    'unrolled_dcgan': tf_dcgan.build_unrolled,
}


def build_models(
    model_config: ml_collections.ConfigDict, image_shape: tuple[int, ...]
) -> tuple[nn.Module, nn.Module]:
    """Returns (generator, discriminator) for `model_config.name`.

    Besides the `model` keys of experiments/base.py, `model_config` carries
    `num_classes` (the dataset's), `bn_axis_name` (the mesh axis) and `pack`
    (PacGAN's samples per D input), which the builder adds.

    The latent size `model_config.z_dim` is not needed here: Dense layers infer
    their input size from the z passed to `init`.
    """
    try:
        builder = MODELS[model_config.name]
    except KeyError:
        raise ValueError(
            f'Unknown model {model_config.name!r}; available: {", ".join(sorted(MODELS))}'
        ) from None
    if model_config.unit_range_images and model_config.name not in tf_dcgan.UNIT_RANGE_MODELS:
        families = ' and '.join(tf_dcgan.UNIT_RANGE_MODELS)
        raise ValueError(
            f"model.unit_range_images=True is a setting of {families} (PacGAN's TensorFlow "
            f'DCGANs), not of model.name={model_config.name!r}.'
        )
    return builder(model_config, tuple(image_shape))


def count_params(params) -> int:
    """Total number of scalars in a parameter pytree (arrays or shape structs)."""
    return sum(leaf.size for leaf in jax.tree.leaves(params))
