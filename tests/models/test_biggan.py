"""BigGAN: the reference's parameter counts, shapes, spectral norm and attention
placement, class and latent conditioning, and one compiled training step."""

import collections
import functools

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gan_jax.models import count_params
from gan_jax.models.biggan import BigGANDiscriminator, BigGANGenerator, build
from tests.models import checks


def make_config(**overrides) -> ml_collections.ConfigDict:
    """Defaults: the reference's CIFAR-10 run."""
    return checks.model_config(
        dict(
            name='biggan',
            z_dim=128,
            g_width=64,
            d_width=64,
            num_classes=10,
            conditioning='projection',
            g_spectral_norm=True,
            d_spectral_norm=True,
            weight_init='N02',
        ),
        **overrides,
    )


# ajbrock/BigGAN-PyTorch at 98459431a5d618d644d54cd1e9fceb1e5045648d, settings of
# scripts/launch_cifar_ema.sh (C10: G_ch = D_ch = 64, dim_z = 128, no G_shared,
# no hier, G_attn = D_attn = 0, N02 init; the rest utils.py defaults) and
# scripts/launch_BigGAN_bs256x8.sh (I128: G_ch = D_ch = 96, dim_z = 120,
# G_shared, shared_dim = 128, hier, G_attn = D_attn = 64, ortho init).
CIFAR10 = make_config()
IMAGENET128 = make_config(
    z_dim=120,
    g_width=96,
    d_width=96,
    num_classes=1000,
    shared_embedding_dim=128,
    hierarchical_latent=True,
    attention_resolution=64,
    weight_init='ortho',
)
SETTINGS = {'cifar10': (CIFAR10, 32), 'imagenet128': (IMAGENET128, 128)}


@functools.cache
def _abstract(setting: str):
    """(G variables, images, D variables, logits) of `setting` as shapes: nothing
    is compiled or allocated, so the 158M-parameter ImageNet pair is cheap."""
    config, resolution = SETTINGS[setting]
    generator, discriminator = build(config, (resolution, resolution, 3))

    def run(key, z, labels):
        g_vars = generator.init(key, z, labels, train=False)
        images, _ = generator.apply(g_vars, z, labels, train=True, mutable=['batch_stats'])
        d_vars = discriminator.init(key, images, labels, train=False)
        logits, _ = discriminator.apply(d_vars, images, labels, train=True, mutable=['batch_stats'])
        return g_vars, images, d_vars, logits

    z = jax.ShapeDtypeStruct((2, config.z_dim), jnp.float32)
    labels = jax.ShapeDtypeStruct((2,), jnp.int32)
    return jax.eval_shape(run, jax.random.key(0), z, labels)


@pytest.mark.parametrize(
    'setting, g_count, d_count',
    [
        # sum(p.numel() for p in model.parameters()) of BigGAN.Generator(..., no_optim=True)
        # and BigGAN.Discriminator(...) built with those settings (torch 2.13); the
        # spectral-norm vectors u0/sv0 and BN running stats are buffers, not counted.
        ('cifar10', 4_304_387, 4_207_361),
        ('imagenet128', 70_433_988, 87_982_370),
    ],
)
def test_parameter_counts_match_the_reference(setting, g_count, d_count):
    g_vars, _, d_vars, _ = _abstract(setting)
    assert count_params(g_vars['params']) == g_count
    assert count_params(d_vars['params']) == d_count


@pytest.mark.parametrize('setting', SETTINGS)
def test_output_shapes(setting):
    _, resolution = SETTINGS[setting]
    _, images, _, logits = _abstract(setting)
    assert images.shape == (2, resolution, resolution, 3) and images.dtype == jnp.float32
    assert logits.shape == (2,)


def _weights_by_owner(params):
    """{(owning module path, weight name): output sizes} of every matrix-like weight."""
    found = collections.defaultdict(list)
    for path, value in flax.traverse_util.flatten_dict(params).items():
        if value.ndim >= 2:  # path = (*owner, layer, weight name)
            found[path[:-2], path[-1]].append(value.shape[-1])
    return {key: sorted(sizes) for key, sizes in found.items()}


def _spectral_norms_by_owner(batch_stats):
    """The same keys for the weights that SpectralNorm wrappers normalise (their u)."""
    found = collections.defaultdict(list)
    for path, value in flax.traverse_util.flatten_dict(batch_stats).items():
        if path[-1].endswith('/u'):  # path = (*owner, "SpectralNorm_k", "<weight name>/u")
            found[path[:-2], path[-1].removesuffix('/u')].append(value.shape[0])
    return {key: sorted(sizes) for key, sizes in found.items()}


@pytest.mark.parametrize('setting', SETTINGS)
def test_spectral_norm_on_every_conv_and_linear_layer(setting):
    g_vars, _, d_vars, _ = _abstract(setting)
    g_weights = _weights_by_owner(g_vars['params'])
    if setting == 'imagenet128':
        # Only the shared class embedding is left alone (the reference: SN on it cripples G).
        assert g_weights.pop(((), 'embedding')) == [128]
    else:
        # Without a shared embedding, the conditional BNs' per-class gain and bias
        # tables are plain embeddings in the reference, not spectrally normalised.
        tables = [key for key in g_weights if key[0] and key[0][-1] in ('bn1', 'bn2')]
        assert len(tables) == 6  # 3 blocks x 2 BNs.
        for key in tables:
            del g_weights[key]
    assert _spectral_norms_by_owner(g_vars['batch_stats']) == g_weights
    # D: every conv and linear layer, and the projection's class embedding too.
    d_weights = _weights_by_owner(d_vars['params'])
    assert (('DiscriminatorHead_0',), 'embedding') in d_weights
    assert _spectral_norms_by_owner(d_vars['batch_stats']) == d_weights


def test_attention_at_64x64_in_both_networks():
    g_vars, _, d_vars, _ = _abstract('imagenet128')
    # G's only 64x64 block outputs 2 * 96 channels, D's 96: the shapes pin the place.
    g_attention = g_vars['params']['SelfAttention_0']
    d_attention = d_vars['params']['SelfAttention_0']
    for attention, channels in [(g_attention, 192), (d_attention, 96)]:
        shapes = {
            name: layer['kernel'].shape for name, layer in attention.items() if name != 'gamma'
        }
        assert shapes == {
            'theta': (1, 1, channels, channels // 8),
            'phi': (1, 1, channels, channels // 8),
            'g': (1, 1, channels, channels // 2),
            'o': (1, 1, channels // 2, channels),
        }
        assert attention['gamma'].shape == ()
    cifar_g, _, cifar_d, _ = _abstract('cifar10')
    assert not any('SelfAttention' in name for name in cifar_g['params'] | cifar_d['params'])


def _key(seed: int) -> jax.Array:
    """An RBG key: XLA on CPU compiles its sampling faster than threefry's."""
    return jax.random.key(seed, impl='rbg')


# A small hierarchical pair at 32x32 for the compiled tests: z = 4 chunks of 2
# (linear layer + 3 blocks), attention after G's second block and D's first.
TINY = make_config(
    z_dim=8,
    g_width=4,
    d_width=4,
    num_classes=3,
    shared_embedding_dim=8,
    hierarchical_latent=True,
    attention_resolution=16,
    weight_init='ortho',
)


@functools.cache
def _tiny_variables():
    generator, discriminator = build(TINY, (32, 32, 3))
    # Eager: on CPU, compiling these inits (orthogonal init, spectral-norm setup)
    # as one program takes about twice as long as running them op by op.
    labels = jnp.zeros((2,), jnp.int32)
    g_vars = generator.init(_key(0), jnp.zeros((2, TINY.z_dim)), labels, train=False)
    d_vars = discriminator.init(_key(1), jnp.zeros((2, 32, 32, 3)), labels, train=False)
    return generator, discriminator, g_vars, d_vars


@pytest.mark.slow
def test_every_latent_chunk_and_the_label_change_the_output():
    generator, discriminator, g_vars, d_vars = _tiny_variables()
    z = jax.random.normal(_key(2), (TINY.z_dim,))
    other = jax.random.normal(_key(3), (TINY.z_dim,))
    # Row 0: (z, class 0); rows 1-4: one 2-wide chunk of z replaced; row 5: class 1.
    variants = [z] + [z.at[i : i + 2].set(other[i : i + 2]) for i in range(0, 8, 2)] + [z]
    labels = jnp.array([0, 0, 0, 0, 0, 1])

    @jax.jit
    def run(z, labels, images):
        # Eval mode: BN uses running statistics, so the rows do not interact.
        return (
            generator.apply(g_vars, z, labels, train=False),
            discriminator.apply(d_vars, images, labels, train=False),
        )

    images = jax.random.uniform(_key(4), (6, 32, 32, 3), minval=-1.0, maxval=1.0)
    samples, logits = run(jnp.stack(variants), labels, images.at[5].set(images[0]))
    assert samples.shape == (6, 32, 32, 3) and jnp.all(jnp.abs(samples) <= 1.0)
    for row in range(1, 6):
        assert float(jnp.abs(samples[row] - samples[0]).max()) > 1e-3, row
    assert abs(float(logits[5] - logits[0])) > 1e-4  # Same image, other class.


@pytest.mark.slow
def test_jitted_forward_and_backward_are_finite():
    generator, discriminator, g_vars, d_vars = _tiny_variables()

    def loss_fn(g_params, d_params, z, labels):
        images, g_stats = generator.apply(
            g_vars | {'params': g_params}, z, labels, train=True, mutable=['batch_stats']
        )
        logits, d_stats = discriminator.apply(
            d_vars | {'params': d_params}, images, labels, train=True, mutable=['batch_stats']
        )
        return jnp.mean(jax.nn.softplus(-logits)), (g_stats, d_stats)

    step = jax.jit(jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True))
    z = jax.random.normal(_key(5), (2, TINY.z_dim))
    (loss, (g_stats, d_stats)), grads = step(
        g_vars['params'], d_vars['params'], z, jnp.array([0, 2])
    )
    assert jnp.isfinite(loss)
    assert all(jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads))
    # The attention blocks are wired in: their gains (0 at init) get gradients.
    assert all(float(jnp.abs(g['SelfAttention_0']['gamma'])) > 0 for g in grads)
    # Training mode moves BN's running statistics and the power-iteration vectors.
    assert not jnp.allclose(g_stats['batch_stats']['output_bn']['mean'], 0.0)
    u = ('DBlock_0', 'SpectralNorm_0', 'kernel/u')
    d_u = [flax.traverse_util.flatten_dict(v['batch_stats'])[u] for v in (d_vars, d_stats)]
    assert not jnp.allclose(*d_u)


def test_build_reads_the_config():
    config = IMAGENET128.copy_and_resolve_references()
    config.cross_replica_bn = True
    generator, discriminator = build(config, (128, 128, 3))
    assert generator == BigGANGenerator(
        128,
        3,
        1000,
        width=96,
        z_dim=120,
        shared_embedding_dim=128,
        hierarchical_latent=True,
        attention_resolution=64,
        spectral_norm=True,
        weight_init='ortho',
        bn_axis_name='data',
    )
    assert discriminator == BigGANDiscriminator(
        128,
        1000,
        width=96,
        attention_resolution=64,
        spectral_norm=True,
        weight_init='ortho',
    )


@pytest.mark.parametrize(
    'overrides',
    [
        dict(conditioning=None),
        dict(conditioning='acgan'),
        dict(num_classes=None),
    ],
)
def test_build_requires_projection_conditioning(overrides):
    with pytest.raises(ValueError, match="class-conditional.*conditioning='projection'"):
        build(make_config(**overrides), (32, 32, 3))


def test_networks_require_labels():
    generator, discriminator = build(CIFAR10, (32, 32, 3))
    for module, x in [(generator, jnp.zeros((1, 128))), (discriminator, jnp.zeros((1, 32, 32, 3)))]:
        with pytest.raises(ValueError, match='class-conditional: pass labels'):
            jax.eval_shape(lambda: module.init(jax.random.key(0), x, train=False))


@pytest.mark.parametrize(
    'image_shape, overrides, message',
    [
        ((64, 64, 3), {}, r'resolution 64\b.*32, 128'),
        (
            (32, 32, 3),
            dict(attention_resolution=12),
            r'attention_resolution=12 .*generator.*\[8, 16, 32\]',
        ),
        (
            (128, 128, 3),
            dict(attention_resolution=128),
            r'attention_resolution=128 .*discriminator',
        ),
        (
            (128, 128, 3),
            dict(shared_embedding_dim=128, hierarchical_latent=True, z_dim=128),
            r'6 equal chunks.*z_dim=128 is not a multiple of 6',
        ),
        ((32, 32, 3), dict(hierarchical_latent=True), 'needs a shared class embedding'),
        ((32, 32, 3), dict(weight_init='xavier'), "weight_init='xavier'"),
    ],
)
def test_bad_settings_are_rejected_at_construction(image_shape, overrides, message):
    with pytest.raises(ValueError, match=message):
        build(make_config(**overrides), image_shape)


@pytest.mark.slow
def test_class_vectors_mix_the_shared_class_embedding():
    generator, _, g_vars, _ = _tiny_variables()
    z = jnp.tile(jax.random.normal(_key(5), (1, TINY.z_dim)), (3, 1))
    run = jax.jit(lambda labels: generator.apply(g_vars, z, labels, train=False))
    by_label = run(jnp.array([0, 2, 1]))
    vectors = jnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.0, 0.5]])
    by_vector = run(vectors)
    np.testing.assert_allclose(by_vector[:2], by_label[:2], atol=1e-6)  # One-hot = lookup.
    for row in (0, 1):  # The midway mix is neither end.
        assert float(jnp.abs(by_vector[2] - by_vector[row]).max()) > 1e-4
