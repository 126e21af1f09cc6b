"""StyleGAN2-ADA: the official parameter counts, modulated convolution, FIR resampling,
equalized learning rate, the w average and truncation, minibatch stddev, a training pass."""

import functools
import importlib
import os
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from jax import lax

from gan_jax.models import build_models, count_params
from gan_jax.models import stylegan2 as sg2
from gan_jax.models.upfirdn import conv2d_resample, downsample2d, upfirdn2d, upsample2d
from tests import helpers
from tests.models import checks


def make_config(**overrides) -> ml_collections.ConfigDict:
    return checks.model_config(dict(name='stylegan2', z_dim=512), **overrides)


# The settings NVlabs/stylegan2-ada-pytorch's train.py builds (cfg_specs): cifar is
# fmaps 1 (channel_base 32768), map 2, mbstd 32, D architecture 'orig'; paper256 is
# fmaps 0.5, map 8, mbstd 8, D 'resnet'; both channel_max 512, conv_clamp 256.
CIFAR = dict(channel_base=32768, mapping_layers=2, mbstd_group_size=32, d_architecture='orig')
PAPER256 = dict(channel_base=16384, mapping_layers=8, mbstd_group_size=8, d_architecture='resnet')


@functools.cache
def _abstract_params(setting, resolution, num_classes):
    overrides = {'cifar': CIFAR, 'paper256': PAPER256}[setting]
    config = make_config(
        **overrides,
        conv_clamp=256.0,
        num_classes=num_classes,
        conditioning=None if num_classes is None else 'projection',
    )
    generator, discriminator = build_models(config, (resolution, resolution, 3))
    labels = None if num_classes is None else jnp.zeros((2,), jnp.int32)
    key = jax.random.key(0)
    g_vars = jax.eval_shape(lambda: generator.init(key, jnp.zeros((2, 512)), labels, train=False))
    images = jnp.zeros((2, resolution, resolution, 3))
    d_vars = jax.eval_shape(lambda: discriminator.init(key, images, labels, train=False))
    return g_vars, d_vars


@pytest.mark.parametrize(
    'setting, resolution, num_classes, mapping, synthesis, d_count',
    [
        # Counted from the official code (NVlabs/stylegan2-ada-pytorch, training/networks.py,
        # torch 2.13 on CPU) at train.py's settings: Generator(z_dim=512, c_dim, w_dim=512,
        # img_resolution, img_channels=3, mapping_kwargs=dict(num_layers=map),
        # synthesis_kwargs=dict(channel_base, channel_max=512, num_fp16_res=4, conv_clamp=256))
        # and Discriminator(c_dim, img_resolution, img_channels=3, architecture, channel_base,
        # channel_max=512, num_fp16_res=4, conv_clamp=256, epilogue_kwargs=dict(mbstd_group_size)),
        # sum(p.numel() for p in net.parameters()) of G.mapping, G.synthesis and D.
        ('cifar', 32, None, 525_312, 19_422_227, 20_720_641),
        ('cifar', 32, 10, 793_088, 19_422_227, 23_089_664),
        ('paper256', 256, None, 2_101_248, 22_666_210, 24_001_089),
    ],
)
def test_parameter_counts_equal_the_official_networks(
    setting, resolution, num_classes, mapping, synthesis, d_count
):
    g_vars, d_vars = _abstract_params(setting, resolution, num_classes)
    assert count_params(g_vars['params']['mapping']) == mapping
    assert count_params(g_vars['params']['synthesis']) == synthesis
    assert count_params(d_vars['params']) == d_count
    # The w average is state, not a parameter.
    assert jax.tree.map(lambda a: a.shape, g_vars['batch_stats']) == {'mapping': {'w_avg': (512,)}}


def test_num_ws_as_official():
    # SynthesisNetwork.num_ws of the official code: 8 at 32x32, 14 at 256x256.
    assert sg2.num_ws(32) == 8 and sg2.num_ws(256) == 14


def _patches(x, k):
    """[N, H, W, I] -> [N, H, W, k, k, I]: each pixel's k x k neighbourhood, zero padded."""
    p = k // 2
    padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    h, w = x.shape[1:3]
    return np.stack(
        [np.stack([padded[:, a : a + h, b : b + w] for b in range(k)], 3) for a in range(k)], 3
    )


def _modulated_reference(x, weight, styles, demodulate):
    """The definition, per example: kernel w[n] = weight * s[n] over inputs, divided by
    its norm over (kh, kw, in); output = correlation of x[n] with w[n]."""
    w = np.einsum('abio,ni->nabio', weight, styles)
    if demodulate:
        w = w / np.sqrt(np.sum(w**2, axis=(1, 2, 3), keepdims=True) + 1e-8)
    return np.einsum('nhwabi,nabio->nhwo', _patches(x, weight.shape[0]), w)


@pytest.mark.parametrize('kernel, demodulate', [(3, True), (1, False)])
def test_modulated_conv_equals_its_definition(kernel, demodulate):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 6, 6, 5)).astype(np.float32)
    weight = rng.standard_normal((kernel, kernel, 5, 4)).astype(np.float32)
    styles = rng.standard_normal((3, 5)).astype(np.float32)
    ours = sg2.modulated_conv2d(x, weight, styles, demodulate=demodulate)
    np.testing.assert_allclose(
        ours, _modulated_reference(x, weight, styles, demodulate), rtol=1e-4, atol=1e-5
    )


def _grouped_modulated_conv(x, weight, styles, up):
    """The official fused form: per-example kernels, one grouped convolution (up=1) or,
    for up=2, each example through conv2d_resample with its own kernel."""
    w = weight[None] * styles[:, None, None, :, None]
    w = w * lax.rsqrt(jnp.sum(w**2, axis=(1, 2, 3), keepdims=True) + 1e-8)
    if up == 2:
        return jax.vmap(lambda xi, wi: conv2d_resample(xi[None], wi, up=2)[0])(x, w)
    n, h, wd, i = x.shape
    grouped = x.transpose(1, 2, 0, 3).reshape(1, h, wd, n * i)
    kernels = w.transpose(1, 2, 3, 0, 4).reshape(3, 3, i, n * w.shape[-1])
    y = lax.conv_general_dilated(
        grouped,
        kernels,
        (1, 1),
        'SAME',
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
        feature_group_count=n,
    )
    return y.reshape(h, wd, n, -1).transpose(2, 0, 1, 3)


@pytest.mark.parametrize('up', [1, 2])
def test_batched_and_grouped_modulated_conv_agree(up):
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((3, 6, 6, 5)), jnp.float32)
    weight = jnp.asarray(rng.standard_normal((3, 3, 5, 4)), jnp.float32)
    styles = jnp.asarray(rng.standard_normal((3, 5)), jnp.float32)
    np.testing.assert_allclose(
        sg2.modulated_conv2d(x, weight, styles, up=up),
        _grouped_modulated_conv(x, weight, styles, up),
        rtol=1e-4,
        atol=1e-5,
    )


def test_demodulation_gives_unit_output_variance():
    # Demodulated kernels have unit norm per output channel, so for i.i.d. unit-variance
    # inputs every output away from the zero padding has variance 1 whatever the styles.
    kx, kw, ks = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (16, 12, 12, 64))
    weight = jax.random.normal(kw, (3, 3, 64, 32))
    styles = jax.random.normal(ks, (16, 64)) * 3.0
    y = jax.jit(sg2.modulated_conv2d)(x, weight, styles)[:, 1:-1, 1:-1]
    assert abs(float(jnp.var(y)) - 1.0) < 0.03
    assert abs(float(jnp.mean(y))) < 0.02


def _upfirdn_reference(x, taps, up, down, pad, gain):
    """The definition for one image [H, W]: zeros inserted, padded, full 2-D convolution
    with the normalised outer-product filter times gain, every down-th pixel kept."""
    f = np.outer(taps, taps)
    f = f / f.sum() * gain
    h, w = x.shape
    u = np.zeros((h * up, w * up))
    u[::up, ::up] = x
    u = np.pad(u, [(max(pad[0], 0), max(pad[1], 0))] * 2)
    crop0, crop1 = max(-pad[0], 0), max(-pad[1], 0)
    u = u[crop0 : u.shape[0] - crop1, crop0 : u.shape[1] - crop1]
    k = len(taps)
    out = np.zeros((u.shape[0] - k + 1, u.shape[1] - k + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            # Convolution: output (i, j) weights input (i + a, j + b) by f[k-1-a, k-1-b].
            out[i, j] = np.sum(u[i : i + k, j : j + k] * f[::-1, ::-1])
    return out[::down, ::down]


@pytest.mark.parametrize(
    'taps, up, down, pad, gain',
    [
        ((1, 3, 3, 1), 2, 1, (2, 1), 4.0),  # upsample2d
        ((1, 3, 3, 1), 1, 2, (1, 1), 1.0),  # downsample2d
        ((1, 2, 5), 2, 1, (3, -1), 2.0),  # asymmetric taps, cropping: the flip shows
        ((1, 2, 5), 1, 3, (0, 2), 1.0),
    ],
)
def test_upfirdn2d_equals_its_definition(taps, up, down, pad, gain):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 7, 7, 3))
    ours = np.asarray(upfirdn2d(jnp.asarray(x), taps, up=up, down=down, pad=pad, gain=gain))
    for n in range(2):
        for c in range(3):
            reference = _upfirdn_reference(x[n, :, :, c], np.array(taps), up, down, pad, gain)
            np.testing.assert_allclose(ours[n, :, :, c], reference, rtol=1e-5, atol=1e-5)


def test_resampling_keeps_a_constant_image_away_from_the_borders():
    up, down = jax.jit(lambda x: (upsample2d(x), downsample2d(x)))(jnp.ones((1, 8, 8, 2)))
    assert up.shape == (1, 16, 16, 2) and down.shape == (1, 4, 4, 2)
    np.testing.assert_allclose(up[:, 2:-2, 2:-2], 1.0, rtol=1e-6)
    np.testing.assert_allclose(down[:, 1:-1, 1:-1], 1.0, rtol=1e-6)


def test_equalized_learning_rate_gives_the_official_initialisation():
    """Stored weights N(0, 1) (mapping: N(0, 1/0.01^2)), run-time scale lr / sqrt(fan_in):
    each layer's effective weights have std 1 / sqrt(fan_in); affine biases start at 1."""
    generator = sg2.StyleGAN2Generator(8, 3, w_dim=256, mapping_layers=1, channel_max=64)
    init = jax.jit(lambda key: generator.init(key, jnp.zeros((1, 256)), train=False))
    params = init(jax.random.key(0))['params']
    fc = params['mapping']['fc0']
    assert abs(float(jnp.std(fc['weight'])) - 100.0) < 2.0
    conv = params['synthesis']['b8_conv0']
    assert abs(float(jnp.std(conv['weight'])) - 1.0) < 0.02
    np.testing.assert_array_equal(conv['affine']['bias'], 1.0)
    assert float(conv['noise_strength']) == 0.0
    # The mapping layer's output pre-activation for unit inputs has unit variance.
    z = jax.random.normal(jax.random.key(1), (1024, 256))
    dense = sg2.FullyConnected(256, lr_multiplier=0.01)
    y = jax.jit(dense.apply)({'params': fc}, z)
    assert abs(float(jnp.var(y)) - 1.0) < 0.05


SMALL = dict(w_dim=32, mapping_layers=2, channel_base=256, channel_max=16)


def test_w_average_moves_in_train_mode_and_truncation_pulls_towards_it():
    generator = sg2.StyleGAN2Generator(16, 3, **SMALL)
    z = jax.random.normal(jax.random.key(0), (6, 32))
    w_avg = jnp.linspace(-1.0, 1.0, 32)

    @jax.jit
    def run(z):
        variables = generator.init(jax.random.key(1), z, train=False)
        variables = {**variables, 'batch_stats': {'mapping': {'w_avg': w_avg}}}
        ws = generator.apply(variables, z, train=False, method='map')
        _, updated = generator.apply(variables, z, train=True, mutable=['batch_stats'])
        truncated = generator.apply(
            variables, z, train=False, truncation_psi=0.25, truncation_cutoff=3, method='map'
        )
        return ws, updated['batch_stats']['mapping']['w_avg'], truncated

    ws, updated, truncated = run(z)
    assert ws.shape == (6, sg2.num_ws(16), 32)
    mean = jnp.mean(ws[:, 0], axis=0)
    np.testing.assert_allclose(updated, mean + 0.995 * (w_avg - mean), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        truncated[:, :3], w_avg + 0.25 * (ws[:, :3] - w_avg), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(truncated[:, 3:], ws[:, 3:])


@pytest.mark.parametrize(
    'top, count, bf16',
    [
        # The official rule (SynthesisNetwork, Discriminator): float16 where
        # res >= max(2 ** (log2(R) + 1 - num_fp16_res), 8).
        (32, 4, (8, 16, 32)),
        (256, 4, (32, 64, 128, 256)),
        (32, 1, (32,)),
        (32, 0, ()),
    ],
)
def test_bf16_resolutions_follow_the_official_num_fp16_res(top, count, bf16):
    resolutions = [2**i for i in range(2, int(np.log2(top)) + 1)]
    dtypes = [sg2.bf16_dtype(r, top, count, jnp.float32) for r in resolutions]
    assert [r for r, d in zip(resolutions, dtypes) if d == jnp.bfloat16] == list(bf16)


@pytest.mark.slow
def test_bf16_resolutions_keep_float32_parameters_and_outputs_close_to_float32():
    """8x8 in bfloat16 (G's 4x4 block and D's epilogue in float32): gradients, images and
    logits stay float32; images and logits differ from the all-float32 networks' by
    bfloat16 rounding."""
    z = jax.random.normal(jax.random.key(0), (4, 32))
    d_widths = dict(channel_base=256, channel_max=16, conv_clamp=256.0, mbstd_group_size=2)

    def networks(count):
        return (
            sg2.StyleGAN2Generator(8, 3, conv_clamp=256.0, bf16_resolutions=count, **SMALL),
            sg2.StyleGAN2Discriminator(8, bf16_resolutions=count, **d_widths),
        )

    generator, discriminator = networks(0)
    g_vars = jax.jit(functools.partial(generator.init, train=False))(jax.random.key(1), z)
    # Nonzero noise strengths, so the noise passes through bfloat16 too.
    g_vars['params'] = jax.tree_util.tree_map_with_path(
        lambda p, a: a + 0.5 if 'noise_strength' in str(p) else a, g_vars['params']
    )
    d_params = jax.jit(functools.partial(discriminator.init, train=False))(
        jax.random.key(2), jnp.zeros((4, 8, 8, 3))
    )

    def forward(count, params):
        generator, discriminator = networks(count)
        images = generator.apply({**g_vars, 'params': params[0]}, z, train=False)
        logits = discriminator.apply(params[1], images, train=False)
        return jnp.mean(logits), (images, logits)

    params = (g_vars['params'], d_params)
    grads, outputs = jax.jit(jax.grad(functools.partial(forward, 1), has_aux=True))(params)
    _, reference = jax.jit(functools.partial(forward, 0))(params)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves((params, grads, outputs)))
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(grads))
    for ours, theirs in zip(outputs, reference):
        error = float(jnp.max(jnp.abs(ours - theirs)))
        assert 0 < error < 0.05 * float(jnp.max(jnp.abs(theirs)))  # 8 significant bits.


def test_minibatch_stddev_equals_a_hand_computation():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 2, 3, 4)).astype(np.float32)
    ours = np.asarray(sg2.minibatch_stddev(jnp.asarray(x), group_size=4, num_channels=2))
    assert ours.shape == (8, 2, 3, 6)
    np.testing.assert_array_equal(ours[..., :4], x)
    for group in range(2):
        members = x[4 * group : 4 * group + 4]
        for f in range(2):
            std = np.sqrt(np.var(members[..., 2 * f : 2 * f + 2], axis=0) + 1e-8).mean()
            np.testing.assert_allclose(ours[4 * group : 4 * group + 4, ..., 4 + f], std, rtol=1e-5)
    with pytest.raises(ValueError, match='multiple of the group size 4'):
        sg2.minibatch_stddev(jnp.zeros((6, 4, 4, 2)), group_size=4)


def test_bad_settings_fail_naming_the_value():
    with pytest.raises(ValueError, match="'skip'"):
        sg2.StyleGAN2Discriminator(32, architecture='skip')
    with pytest.raises(ValueError, match='24'):
        sg2.StyleGAN2Generator(24, 3)
    with pytest.raises(ValueError, match='bf16_resolutions=-1'):
        sg2.StyleGAN2Discriminator(32, bf16_resolutions=-1)
    with pytest.raises(ValueError, match="'acgan'"):
        build_models(make_config(conditioning='acgan', num_classes=10), (32, 32, 3))
    generator = sg2.StyleGAN2Generator(16, 3, num_classes=10, **SMALL)
    with pytest.raises(ValueError, match='num_classes=10 got no labels'):
        generator.init(jax.random.key(0), jnp.zeros((2, 32)), train=False)


@pytest.mark.heavy  # CI's 20 minutes.
@pytest.mark.slow
def test_conditional_training_pass():
    """Train-mode G and D of a small conditional pair: shapes, finite nonzero gradients on
    every parameter, labels that change images and scores, noise keyed by the latent.
    The resnet D (the orig one trains in test_experiments' cifar10 updates)."""
    config = make_config(
        **SMALL,
        z_dim=32,
        d_architecture='resnet',
        mbstd_group_size=2,
        conv_clamp=256.0,
        num_classes=5,
        conditioning='projection',
    )
    generator, discriminator = build_models(config, (16, 16, 3))
    z = jax.random.normal(jax.random.key(0), (4, 32))
    labels, other = jnp.array([0, 1, 2, 3]), jnp.array([4, 0, 1, 2])

    @jax.jit
    def run(z):
        g_vars = generator.init(jax.random.key(1), z, labels, train=False)
        d_vars = discriminator.init(
            jax.random.key(2), jnp.zeros((4, 16, 16, 3)), labels, train=False
        )
        # Nonzero noise strengths so that the noise shows.
        g_params = jax.tree_util.tree_map_with_path(
            lambda p, a: a + 0.5 if 'noise_strength' in str(p) else a, g_vars['params']
        )

        def loss(g_params, d_params):
            g_state = {'params': g_params, 'batch_stats': g_vars['batch_stats']}
            fake, _ = generator.apply(g_state, z, labels, train=True, mutable=['batch_stats'])
            logits = discriminator.apply({'params': d_params}, fake, labels, train=True)
            return jnp.mean(jax.nn.softplus(-logits)), (fake, logits)

        grads, (fake, logits) = jax.grad(loss, argnums=(0, 1), has_aux=True)(
            g_params, d_vars['params']
        )
        g_vars = {**g_vars, 'params': g_params}
        both = jnp.concatenate([labels, other])
        images = generator.apply(g_vars, jnp.concatenate([z, z]), both, train=False)
        scores = discriminator.apply(d_vars, jnp.concatenate([fake, fake]), both, train=False)
        # The noise is a function of z: the same z in another batch, the same image.
        repeat = generator.apply(g_vars, z[:1], labels[:1], train=False)
        return fake, logits, grads, images, scores, repeat

    fake, logits, grads, images, scores, repeat = run(z)
    assert fake.shape == (4, 16, 16, 3) and logits.shape == (4,)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert all(float(jnp.max(jnp.abs(g))) > 0 for g in jax.tree.leaves(grads))
    assert bool(jnp.all(jnp.abs(images[:4] - images[4:]).max(axis=(1, 2, 3)) > 1e-4))
    assert bool(jnp.all(jnp.abs(scores[:4] - scores[4:]) > 1e-6))
    np.testing.assert_allclose(repeat[0], images[0], rtol=1e-4, atol=1e-5)


def _official_networks():
    """NVlabs/stylegan2-ada-pytorch's training.networks from the checkout named by
    STYLEGAN2_ADA_PYTORCH (and torch); skips without them."""
    torch = pytest.importorskip('torch')
    checkout = os.environ.get('STYLEGAN2_ADA_PYTORCH')
    if not checkout or not os.path.isdir(os.path.join(checkout, 'training')):
        pytest.skip('set STYLEGAN2_ADA_PYTORCH to a checkout of NVlabs/stylegan2-ada-pytorch')
    sys.path.insert(0, checkout)
    try:
        return torch, importlib.import_module('training.networks')
    finally:
        sys.path.remove(checkout)


def _to_flax(module, place):
    """A torch module's parameters as a Flax tree: [out, in] -> [in, out], OIHW -> HWIO,
    D's flattened 4x4 features CHW -> HWC; ``place`` maps the module path to ours."""
    tree = {}
    for name, p in module.named_parameters():
        *path, leaf = name.split('.')
        a = p.detach().numpy()
        if leaf == 'weight' and a.ndim == 2 and path[-1] == 'fc' and path[0] == 'b4':
            a = a.reshape(a.shape[0], -1, 4, 4).transpose(2, 3, 1, 0).reshape(-1, a.shape[0])
        elif leaf == 'weight' and a.ndim == 2:
            a = a.T
        elif a.ndim == 4:
            a = a.transpose(2, 3, 1, 0)
        elif leaf == 'const':
            a = a.transpose(1, 2, 0)
        node = tree
        for key in place(path):
            node = node.setdefault(key, {})
        node[leaf] = jnp.asarray(a)
    return tree


def _g_place(path):
    if path[0] == 'mapping':
        return path
    return ['synthesis'] + (['_'.join(path[1:3])] + path[3:] if len(path) > 2 else [])


def _d_place(path):
    return path if path[0] == 'mapping' else ['_'.join(path[:2])] + path[2:]


@pytest.mark.slow
@pytest.mark.parametrize('architecture', sg2.D_ARCHITECTURES)
def test_forward_equals_the_official_networks(architecture):
    """The official G (fused and non-fused modulated convolutions, noise off, truncation)
    and D with the same weights (biases and noise strengths perturbed, a conv_clamp that
    clamps) give our outputs: small conditional networks at 16x16."""
    torch, networks = _official_networks()
    torch.manual_seed(0)
    widths = dict(channel_base=1024, channel_max=64, conv_clamp=0.5)
    official_g = networks.Generator(
        z_dim=32,
        c_dim=3,
        w_dim=32,
        img_resolution=16,
        img_channels=3,
        mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=widths,
    )
    official_d = networks.Discriminator(
        c_dim=3,
        img_resolution=16,
        img_channels=3,
        architecture=architecture,
        epilogue_kwargs=dict(mbstd_group_size=4),
        **widths,
    )
    with torch.no_grad():
        for p in [*official_g.parameters(), *official_d.parameters()]:
            if p.ndim <= 1:
                p.add_(0.1 * torch.randn_like(p))
        official_g.mapping.w_avg.copy_(torch.randn(32))
    generator = sg2.StyleGAN2Generator(16, 3, 3, w_dim=32, mapping_layers=2, **widths)
    discriminator = sg2.StyleGAN2Discriminator(16, 3, architecture, mbstd_group_size=4, **widths)
    g_vars = {
        'params': _to_flax(official_g, _g_place),
        'batch_stats': {'mapping': {'w_avg': jnp.asarray(official_g.mapping.w_avg.numpy())}},
    }
    z, images = torch.randn(4, 32), torch.randn(4, 3, 16, 16)
    labels = np.array([0, 2, 1, 2])
    c = torch.nn.functional.one_hot(torch.from_numpy(labels), 3).float()
    ws = generator.apply(
        g_vars, jnp.asarray(z.numpy()), labels, train=False, truncation_psi=0.7, method='map'
    )
    ours = generator.apply(g_vars, ws, None, method='synthesize')
    with torch.no_grad():
        official_ws = official_g.mapping(z, c, truncation_psi=0.7, skip_w_avg_update=True)
        np.testing.assert_allclose(ws, official_ws.numpy(), rtol=1e-4, atol=1e-5)
        for fused in (True, False):
            official = official_g.synthesis(official_ws, noise_mode='none', fused_modconv=fused)
            np.testing.assert_allclose(
                ours, official.numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-5
            )
        official_logits = official_d(images, c).numpy()[:, 0]
    logits = discriminator.apply(
        {'params': _to_flax(official_d, _d_place)},
        jnp.asarray(images.numpy().transpose(0, 2, 3, 1)),
        labels,
        train=False,
    )
    np.testing.assert_allclose(logits, official_logits, rtol=1e-4, atol=1e-6)


@pytest.mark.heavy
@pytest.mark.slow
def test_training_is_the_same_on_1_and_4_devices(tmp_path):
    """The w average (pmean of the devices' updates), the latent-keyed noise and the
    minibatch-stddev groups (2 divides the 2 examples per device) do not depend on the
    device count: SGD (gradient scale visible), lazy R1, 6 steps of batch 8."""
    overrides = {
        'model.name': 'stylegan2',
        'model.w_dim': 16,
        'model.mapping_layers': 2,
        'model.channel_base': 128,
        'model.channel_max': 8,
        'model.mbstd_group_size': 2,
        'model.d_architecture': 'resnet',
        'model.conv_clamp': 256.0,
        'data.resolution': 16,
        'reg.penalty': 'r1',
        'reg.penalty_weight': 1.0,
        'reg.penalty_every_d_steps': 2,
        'optim.name': 'sgd',
        'optim.g_lr': 0.01,
        'optim.d_lr': 0.01,
    }
    one = helpers.train_in_subprocess(
        tmp_path / 'one', tmp_path / 'one.npz', overrides, timeout=900
    )
    four = helpers.train_in_subprocess(
        tmp_path / 'four', tmp_path / 'four.npz', overrides, devices=4, timeout=900
    )
    assert any('w_avg' in key for key in one)
    assert helpers.max_abs_diff(one, four) < 1e-5
