"""build_models: config to (generator, discriminator), and its errors."""

import jax
import jax.numpy as jnp
import ml_collections
import pytest

from gan_jax.models import MODELS, build_models, count_params
from gan_jax.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_jax.models.mlp import MLPDiscriminator, MLPGenerator
from tests.models import checks


def make_config(**overrides) -> ml_collections.ConfigDict:
    return checks.model_config(dict(g_width=16, d_width=8), **overrides)


def test_dcgan_from_image_shape():
    generator, discriminator = build_models(make_config(), (32, 32, 3))
    assert generator == DCGANGenerator(32, 3, width=16, bn_axis_name=None)
    assert discriminator == DCGANDiscriminator(32, width=8, bn_axis_name=None)


def test_cross_replica_bn_uses_the_mesh_axis():
    generator, discriminator = build_models(make_config(cross_replica_bn=True), (28, 28, 1))
    assert generator.bn_axis_name == discriminator.bn_axis_name == 'data'


def test_mlp_from_data_shape():
    generator, discriminator = build_models(make_config(name='mlp', g_width=32), (2,))
    assert generator == MLPGenerator(out_dim=2, hidden=32)
    assert discriminator == MLPDiscriminator(hidden=8)


def test_built_models_fit_together():
    config = make_config(name='mlp')
    generator, discriminator = build_models(config, (2,))

    def run(key, z):
        g_vars = generator.init(key, z, train=False)
        samples = generator.apply(g_vars, z, train=False)
        d_vars = discriminator.init(key, samples, train=False)
        return g_vars['params'], discriminator.apply(d_vars, samples, train=False)

    # Abstract evaluation: shapes only, nothing is compiled.
    g_params, logits = jax.eval_shape(run, jax.random.key(0), jnp.zeros((3, config.z_dim)))
    assert logits.shape == (3,)
    # Dense 100 -> 16, 2 x Dense 16 -> 16, Dense 16 -> 2, all with bias.
    assert count_params(g_params) == (100 * 16 + 16) + 2 * (16 * 16 + 16) + (16 * 2 + 2)


def test_unknown_model_names_value_and_choices():
    with pytest.raises(ValueError, match="'stylegan'") as info:
        build_models(make_config(name='stylegan'), (32, 32, 3))
    assert all(name in str(info.value) for name in MODELS)


def test_bad_resolution_names_value():
    with pytest.raises(ValueError, match='48'):
        build_models(make_config(), (48, 48, 3))


@pytest.mark.parametrize(
    'name, shape',
    [
        ('dcgan', (32, 16, 3)),
        ('dcgan', (2,)),
        ('mlp', (28, 28, 1)),
        ('veegan_dcgan', (28, 14, 3)),
        ('unrolled_dcgan', (2,)),
    ],
)
def test_wrong_data_shape_names_it(name, shape):
    with pytest.raises(ValueError, match=str(shape).replace('(', r'\(').replace(')', r'\)')):
        build_models(make_config(name=name), shape)
