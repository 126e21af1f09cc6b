"""SN-DCGAN "standard CNN": reference parameter counts, shapes, spectral norm
placement, conditioning, a compiled forward and backward pass."""

import collections

import flax
import jax
import jax.numpy as jnp
import ml_collections
import pytest

from gan_jax.models import count_params
from gan_jax.models.sndcgan import GRIDS, SNDCGANDiscriminator, SNDCGANGenerator, build
from tests.models import checks

Z_DIM = 128


def make_config(**overrides) -> ml_collections.ConfigDict:
    return checks.model_config(
        dict(name='sndcgan', z_dim=Z_DIM, g_width=64, d_width=64, d_spectral_norm=True), **overrides
    )


# Sums of p.numel() over the trainable parameters of two PyTorch reproductions
# of the paper's Table 3 with z_dim = 128, at M_g = 4 (32x32) and 6 (48x48):
# G: w86763777/pytorch-gan-collections 860e90b, source/models/sngan.py
#    Generator(128, M=M_g).
# D: christiancosgrove/pytorch-spectral-normalization-gan 12dcf94, model.py
#    Discriminator() with its module constant w_g = M_g (its SpectralNorm keeps
#    u and v as requires_grad=False parameters; those are not counted).
# For comparison, the authors' chainer-gan-lib cf9efba (common/net.py,
# DCGANGenerator / SNDCGANDiscriminator) has G 3828739 / 5170179 (BN over the
# flat dense output) and D 5860865 / 5871105 (widths 64, 128, 128, 256, 256, 512, 512).
REFERENCES = {32: (3_813_379, 2_935_873), 48: (5_134_339, 2_946_113)}


@pytest.mark.parametrize('resolution', sorted(REFERENCES))
def test_parameter_counts_equal_the_references(resolution):
    generator, discriminator = build(make_config(), (resolution, resolution, 3))
    g_params = checks.abstract_variables(generator, jnp.zeros((2, Z_DIM)))['params']
    d_params = checks.abstract_variables(discriminator, jnp.zeros((2, resolution, resolution, 3)))[
        'params'
    ]
    assert (count_params(g_params), count_params(d_params)) == REFERENCES[resolution]


@pytest.mark.parametrize('resolution', sorted(GRIDS))
@pytest.mark.parametrize('channels', [1, 3])
def test_shapes(resolution, channels):
    generator, discriminator = build(
        make_config(g_width=4, d_width=4), (resolution, resolution, channels)
    )

    def run(key, z):
        images, _ = generator.apply(
            generator.init(key, z, train=False), z, train=True, mutable=['batch_stats']
        )
        logits, _ = discriminator.apply(
            discriminator.init(key, images, train=False),
            images,
            train=True,
            mutable=['batch_stats'],
        )
        return images, logits

    images, logits = jax.eval_shape(run, jax.random.key(0), jnp.zeros((3, Z_DIM)))
    assert images.shape == (3, resolution, resolution, channels)
    assert logits.shape == (3,)


def _power_vector_sizes(batch_stats):
    flat = flax.traverse_util.flatten_dict(batch_stats)
    return collections.Counter(v.shape[0] for k, v in flat.items() if k[-1].endswith('/u'))


def test_spectral_norm_on_every_discriminator_layer():
    _, discriminator = build(make_config(), (32, 32, 3))
    d_vars = checks.abstract_variables(discriminator, jnp.zeros((2, 32, 32, 3)))
    # Seven convolutions (u has their output width) and the dense head.
    assert _power_vector_sizes(d_vars['batch_stats']) == collections.Counter(
        [64, 64, 128, 128, 256, 256, 512, 1]
    )
    _, plain = build(make_config(d_spectral_norm=False), (32, 32, 3))
    assert 'batch_stats' not in checks.abstract_variables(plain, jnp.zeros((2, 32, 32, 3)))


def test_generator_layers():
    generator, _ = build(make_config(), (48, 48, 3))
    variables = checks.abstract_variables(generator, jnp.zeros((2, Z_DIM)))
    kernels = [
        v.shape
        for k, v in flax.traverse_util.flatten_dict(variables['params']).items()
        if k[-1] == 'kernel'
    ]
    assert sorted(kernels) == sorted(
        [(128, 6 * 6 * 512), (4, 4, 512, 256), (4, 4, 256, 128), (4, 4, 128, 64), (3, 3, 64, 3)]
    )
    # BN after the dense layer and after each transposed convolution, none at the output.
    means = [
        v.shape
        for k, v in flax.traverse_util.flatten_dict(variables['batch_stats']).items()
        if k[-1] == 'mean'
    ]
    assert means == [(512,), (256,), (128,), (64,)]


@pytest.mark.slow
def test_conditional_forward_backward():
    config = make_config(g_width=4, d_width=4, num_classes=10, conditioning='projection')
    generator, discriminator = build(config, (32, 32, 3))
    checks.check_conditional_training_pass(
        generator,
        discriminator,
        z_dim=Z_DIM,
        image_shape=(32, 32, 3),
        min_image_change=1e-5,
        min_score_change=1e-9,
    )


def test_acgan_head_returns_class_logits():
    _, discriminator = build(make_config(num_classes=10, conditioning='acgan'), (32, 32, 3))
    logits, class_logits = jax.eval_shape(
        lambda x: discriminator.apply(
            discriminator.init(jax.random.key(0), x, train=False), x, train=False
        ),
        jnp.zeros((2, 32, 32, 3)),
    )
    assert logits.shape == (2,) and class_logits.shape == (2, 10)


def test_generator_needs_labels_when_conditional():
    generator, _ = build(make_config(num_classes=10, conditioning='projection'), (32, 32, 3))
    with pytest.raises(ValueError, match='labels'):
        checks.abstract_variables(generator, jnp.zeros((2, Z_DIM)))


@pytest.mark.parametrize('resolution', [28, 64, 96])
def test_bad_resolution_names_value_and_choices(resolution):
    checks.check_bad_resolution_is_rejected(
        build, make_config(), SNDCGANGenerator, SNDCGANDiscriminator, resolution, '32, 48'
    )


def test_bad_shapes_and_conditioning():
    with pytest.raises(ValueError, match=r'\(32, 16, 3\)'):
        build(make_config(), (32, 16, 3))
    with pytest.raises(ValueError, match='num_classes is None'):
        build(make_config(conditioning='projection'), (32, 32, 3))
    _, discriminator = build(make_config(), (32, 32, 3))
    with pytest.raises(ValueError, match='32x32'):
        checks.abstract_variables(discriminator, jnp.zeros((1, 48, 48, 3)))
