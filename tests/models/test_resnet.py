"""ResNet GANs (SNGAN, SNGAN-projection, WGAN-GP): reference parameter counts,
shapes at every resolution, where spectral norm and shortcuts are, conditioning."""

import collections

import flax
import jax
import jax.numpy as jnp
import ml_collections
import pytest

from gan_jax.models import count_params
from gan_jax.models.resnet import PLANS, ResNetDiscriminator, ResNetGenerator, build
from tests.models import checks

Z_DIM = 128


def make_config(**overrides) -> ml_collections.ConfigDict:
    return checks.model_config(
        dict(name='resnet', z_dim=Z_DIM, g_width=8, d_width=8, d_spectral_norm=True), **overrides
    )


def _labels(n=2):
    return jnp.arange(n, dtype=jnp.int32)


# Reference counts: the PyTorch modules' sum of p.numel() (spectral norm's u/v
# are buffers there, batch_stats here), Chainer's sum of link.params() sizes.
# Commits: kwotsin/mimicry a7fda06, pfnet-research/sngan_projection e84b1a5 (the
# authors' code), igul222/improved_wgan_training fa66c57. z_dim = 128 everywhere.
REFERENCES = {
    # mimicry sngan_32.py defaults (ngf=256, ndf=128). The authors' resnet_32.py
    # (ch=256) G has the same count; their snresnet_32.py (ch=128) D has 1053824:
    # its final linear has no bias, our DiscriminatorHead's always has one.
    'sngan-32': (dict(resolution=32, g_width=256, d_width=128), 4_276_739, 1_053_825),
    # gan_cifar_resnet.py with CONDITIONAL=False, DIM_G=DIM_D=128 (TF; counted
    # from its layer list); mimicry's wgan_gp_32.py with ngf=ndf=128 agrees.
    'wgan-gp-32': (
        dict(resolution=32, g_width=128, d_width=128, d_spectral_norm=False),
        1_204_483,
        1_053_825,
    ),
    # gan_cifar_resnet.py as shipped (CONDITIONAL=ACGAN=True, 10 classes): per-class
    # BN scale/offset in G's blocks, a 128 -> 10 classifier beside D's output.
    'wgan-gp-acgan-32': (
        dict(
            resolution=32,
            g_width=128,
            d_width=128,
            d_spectral_norm=False,
            num_classes=10,
            conditioning='acgan',
        ),
        1_218_307,
        1_055_115,
    ),
    # mimicry sngan_48.py defaults (ngf=512 from 6x6, ndf=1024): the STL-10 ResNet.
    'sngan-48': (dict(resolution=48, g_width=64, d_width=64), 4_878_083, 10_141_441),
    # mimicry sngan_64.py (ngf=ndf=1024) = the authors' resnet_64.py/snresnet_64.py (ch=64).
    'sngan-64': (dict(resolution=64, g_width=64, d_width=64), 12_220_675, 10_141_441),
    # mimicry sngan_128.py (ngf=ndf=1024) = the authors' resnet.py/snresnet.py (ch=64).
    'sngan-128': (dict(resolution=128, g_width=64, d_width=64), 32_150_787, 29_017_857),
    # mimicry cgan_pd_32.py (num_classes=10); the authors' code as configs/
    # sn_cifar10_conditional.yml: same G, D 1055104 (no bias in the final linear).
    'projection-32': (
        dict(resolution=32, g_width=256, d_width=128, num_classes=10, conditioning='projection'),
        4_304_387,
        1_055_105,
    ),
    # The authors' code as configs/sn_projection_64.yml (ch=64, 1000 classes).
    'projection-64': (
        dict(resolution=64, g_width=64, d_width=64, num_classes=1000, conditioning='projection'),
        17_974_915,
        11_165_441,
    ),
    # The authors' code as configs/sn_projection.yml (ch=64, 1000 classes);
    # mimicry's cgan_pd_128.py with ndf=1024 agrees.
    'projection-128': (
        dict(resolution=128, g_width=64, d_width=64, num_classes=1000, conditioning='projection'),
        41_996_931,
        30_041_857,
    ),
}


@pytest.mark.parametrize('name', REFERENCES)
def test_parameter_counts_equal_the_references(name):
    overrides, g_expected, d_expected = REFERENCES[name]
    resolution = overrides.pop('resolution')
    generator, discriminator = build(make_config(**overrides), (resolution, resolution, 3))
    labels = _labels() if overrides.get('conditioning') else None
    g_vars = checks.abstract_variables(generator, jnp.zeros((2, Z_DIM)), labels)
    d_vars = checks.abstract_variables(
        discriminator, jnp.zeros((2, resolution, resolution, 3)), labels
    )
    assert count_params(g_vars['params']) == g_expected
    assert count_params(d_vars['params']) == d_expected


@pytest.mark.parametrize('resolution', sorted(PLANS))
def test_shapes_at_every_resolution(resolution):
    generator, discriminator = build(make_config(g_width=2, d_width=2), (resolution, resolution, 1))

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
    assert images.shape == (3, resolution, resolution, 1)
    assert logits.shape == (3,)


def _kernels(params):
    """Output sizes of every weight matrix (Dense/Conv kernel, Embed table)."""
    flat = flax.traverse_util.flatten_dict(params)
    return collections.Counter(v.shape[-1] for v in flat.values() if v.ndim >= 2)


def _power_vectors(batch_stats):
    flat = flax.traverse_util.flatten_dict(batch_stats)
    return collections.Counter(v.shape[0] for k, v in flat.items() if k[-1].endswith('/u'))


@pytest.mark.parametrize('conditioning', [None, 'projection'])
def test_spectral_norm_on_every_discriminator_layer(conditioning):
    config = make_config(num_classes=10, conditioning=conditioning)
    generator, discriminator = build(config, (32, 32, 3))
    labels = _labels()
    d_vars = checks.abstract_variables(discriminator, jnp.zeros((2, 32, 32, 3)), labels)
    # Convolutions, shortcuts, the head's dense and (projection) its class table.
    assert _power_vectors(d_vars['batch_stats']) == _kernels(d_vars['params'])
    # SNGAN's G has none: its batch_stats are BatchNorm's only.
    g_stats = flax.traverse_util.flatten_dict(
        checks.abstract_variables(
            generator, jnp.zeros((2, Z_DIM)), labels if conditioning else None
        )['batch_stats']
    )
    assert {k[-1] for k in g_stats} == {'mean', 'var'}


def test_spectral_norm_follows_the_config():
    generator, discriminator = build(
        make_config(g_spectral_norm=True, d_spectral_norm=False), (32, 32, 3)
    )
    g_vars = checks.abstract_variables(generator, jnp.zeros((2, Z_DIM)))
    assert _power_vectors(g_vars['batch_stats']) == _kernels(g_vars['params'])
    # WGAN-GP's critic: no normalisation at all.
    assert 'batch_stats' not in checks.abstract_variables(discriminator, jnp.zeros((2, 32, 32, 3)))


@pytest.mark.parametrize(
    'resolution, learnable',
    [
        (32, [True, True, False, False]),  # Optimised, down, then two 128 -> 128 blocks.
        (128, [True] * 5 + [False]),  # Width changes or downsampling up to the last block.
    ],
)
def test_learnable_shortcuts_only_where_width_or_grid_changes(resolution, learnable):
    _, discriminator = build(make_config(), (resolution, resolution, 3))
    params = checks.abstract_variables(discriminator, jnp.zeros((1, resolution, resolution, 3)))[
        'params'
    ]
    assert ['shortcut' in params[f'DBlock_{i}'] for i in range(len(learnable))] == learnable
    for i in range(len(learnable)):
        assert params[f'DBlock_{i}']['conv1']['kernel'].shape[:2] == (3, 3)
    assert params['DBlock_0']['shortcut']['kernel'].shape[:2] == (1, 1)


@pytest.mark.slow
def test_conditional_forward_backward():
    config = make_config(g_width=4, d_width=4, num_classes=10, conditioning='projection')
    generator, discriminator = build(config, (32, 32, 3))
    checks.check_conditional_training_pass(
        generator,
        discriminator,
        z_dim=Z_DIM,
        image_shape=(32, 32, 3),
        min_image_change=1e-4,
        min_score_change=1e-7,
    )


def test_mean_pooling_is_sum_pooling_over_the_grid():
    """WGAN-GP averages D's last 8x8 features where SNGAN sums them."""
    config = make_config(d_width=4, d_spectral_norm=False)
    _, summing = build(config, (32, 32, 3))
    _, averaging = build(
        make_config(d_width=4, d_spectral_norm=False, d_pooling='mean'), (32, 32, 3)
    )
    x = jax.random.normal(checks.rbg_key(0), (2, 32, 32, 3))

    @jax.jit
    def run(x):
        variables = summing.init(checks.rbg_key(1), x, train=False)
        return summing.apply(variables, x, train=False), averaging.apply(variables, x, train=False)

    sums, means = run(x)  # The head's bias starts at 0.
    assert jnp.allclose(sums, 64.0 * means, rtol=1e-5)


def test_generator_needs_labels_when_conditional():
    generator, _ = build(make_config(num_classes=10, conditioning='projection'), (32, 32, 3))
    with pytest.raises(ValueError, match='labels'):
        checks.abstract_variables(generator, jnp.zeros((2, Z_DIM)))


def test_conditioning_without_classes_fails_at_build():
    with pytest.raises(ValueError, match='num_classes is None'):
        build(make_config(conditioning='projection'), (32, 32, 3))


@pytest.mark.parametrize('resolution', [16, 96, 256])
def test_bad_resolution_names_value_and_choices(resolution):
    checks.check_bad_resolution_is_rejected(
        build, make_config(), ResNetGenerator, ResNetDiscriminator, resolution, '32, 48, 64, 128'
    )


def test_bad_pooling_and_shape():
    with pytest.raises(ValueError, match="d_pooling='max'"):
        build(make_config(d_pooling='max'), (32, 32, 3))
    with pytest.raises(ValueError, match=r'\(32, 16, 3\)'):
        build(make_config(), (32, 16, 3))


def test_cross_replica_bn_uses_the_mesh_axis():
    generator, _ = build(make_config(cross_replica_bn=True), (32, 32, 3))
    assert generator.bn_axis_name == 'data'
    assert build(make_config(), (32, 32, 3))[0].bn_axis_name is None
