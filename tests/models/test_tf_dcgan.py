"""PacGAN's Stacked MNIST networks (TensorFlow DCGANs): parameter counts as the authors'
code, TF's transposed convolution, initialisers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from gan_jax import models
from gan_jax.models import tf_dcgan
from tests.models import checks


def _config(name, g_width, d_width, **overrides):
    return checks.model_config(dict(name=name, g_width=g_width, d_width=d_width), **overrides)


def _counts(name, g_width, d_width, z_dim, pack):
    generator, discriminator = models.build_models(_config(name, g_width, d_width), (28, 28, 3))
    g = jax.eval_shape(
        lambda: generator.init(jax.random.key(0), jnp.zeros((2, z_dim)), train=False)
    )
    x = jnp.zeros((2, 28, 28, 3 * pack))
    d = jax.eval_shape(lambda: discriminator.init(jax.random.key(0), x, train=False))
    return models.count_params(g['params']), models.count_params(d['params'])


@pytest.mark.parametrize('pack', [1, 2, 3, 4])
def test_veegan_setting_parameter_counts_equal_the_authors(pack):
    # Counted from fjxmlzn/PacGAN stacked_MNIST_experiments/VEEGAN_experiment/model.py
    # (generator, discriminator; gf_dim = df_dim = 64, z_dim 100, c_dim 3 per packed
    # image) and ops.py (linear, conv2d and deconv2d all with biases; batch_norm with
    # beta and gamma): G linear 100 -> 2*2*512, BN(512), deconvs 5x5 512 -> 256 -> 128
    # -> 64 with BN, deconv 64 -> 3; D convs 5x5 3m -> 64 -> 128 -> 256 -> 512, BN on
    # the last three, linear 2*2*512 -> 1.
    g_expected = (
        (100 * 2048 + 2048)
        + 2 * 512
        + (25 * 512 * 256 + 256)
        + 2 * 256
        + (25 * 256 * 128 + 128)
        + 2 * 128
        + (25 * 128 * 64 + 64)
        + 2 * 64
        + (25 * 64 * 3 + 3)
    )
    d_expected = (
        (25 * 3 * pack * 64 + 64)
        + (25 * 64 * 128 + 128)
        + 2 * 128
        + (25 * 128 * 256 + 256)
        + 2 * 256
        + (25 * 256 * 512 + 512)
        + 2 * 512
        + (2 * 2 * 512 + 1)
    )
    assert g_expected == 4_514_819 and d_expected == 4_305_601 + 4_800 * pack
    assert _counts('veegan_dcgan', 64, 64, 100, pack) == (g_expected, d_expected)


@pytest.mark.parametrize('d_width, pack', [(4, 1), (4, 2), (2, 1), (2, 2), (2, 4)])
def test_unrolled_replication_parameter_counts_equal_the_authors(d_width, pack):
    # Counted from fjxmlzn/PacGAN stacked_MNIST_experiments/unrolled_GAN_experiment/
    # D=0.5G (D channels 4, 8, 16) and D=0.25G (2, 4, 8), model.py: G linear 256 ->
    # 4*4*64, BN, deconvs 3x3 64 -> 32 -> 16 -> 8 with BN, conv 3x3 stride 1 8 -> 3;
    # D three 3x3 stride-2 convs, each with BN, linear 4*4*C3 -> 1; ops.py biases.
    g_expected = (
        (256 * 1024 + 1024)
        + 2 * 64
        + (9 * 64 * 32 + 32)
        + 2 * 32
        + (9 * 32 * 16 + 16)
        + 2 * 16
        + (9 * 16 * 8 + 8)
        + 2 * 8
        + (9 * 8 * 3 + 3)
    )
    c1, c2, c3 = d_width, 2 * d_width, 4 * d_width
    d_expected = (
        (9 * 3 * pack * c1 + c1)
        + 2 * c1
        + (9 * c1 * c2 + c2)
        + 2 * c2
        + (9 * c2 * c3 + c3)
        + 2 * c3
        + (4 * 4 * c3 + 1)
    )
    assert g_expected == 287_875
    assert d_expected == {4: 1_781 + 108 * pack, 2: 531 + 54 * pack}[d_width]
    assert _counts('unrolled_dcgan', 8, d_width, 256, pack) == (g_expected, d_expected)


@pytest.mark.parametrize(
    'in_size, out_size, kernel', [(2, 4, 5), (4, 7, 5), (14, 28, 5), (4, 7, 3), (7, 14, 3)]
)
def test_transposed_convolution_is_the_adjoint_of_tfs_same_convolution(in_size, out_size, kernel):
    # tf.nn.conv2d_transpose(x, W, output_shape) is the gradient of tf.nn.conv2d(., W,
    # 'SAME') from output_shape: <conv(y), x> = <y, conv_transpose(x)> for all x, y.
    layer = tf_dcgan.TFConvTranspose(
        3, (kernel, kernel), out_size, bias_init=jax.nn.initializers.zeros
    )
    x = jax.random.normal(jax.random.key(0), (2, in_size, in_size, 5))
    variables = layer.init(jax.random.key(1), x)
    kernel_ = variables['params']['kernel']  # (k, k, in, out)
    y = jax.random.normal(jax.random.key(2), (2, out_size, out_size, 3))
    # The forward convolution's HWIO kernel: spatially flipped, in and out swapped.
    forward = jnp.swapaxes(kernel_[::-1, ::-1], 2, 3)
    conv_y = lax.conv_general_dilated(
        y, forward, (2, 2), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')
    )
    assert conv_y.shape == x.shape
    transposed = layer.apply(variables, x)
    assert transposed.shape == y.shape
    np.testing.assert_allclose(jnp.sum(conv_y * x), jnp.sum(y * transposed), rtol=1e-4)


def test_initialisers_are_the_authors():
    generator, discriminator = models.build_models(_config('veegan_dcgan', 64, 64), (28, 28, 3))
    g = generator.init(jax.random.key(0), jnp.zeros((2, 100)), train=False)
    d = discriminator.init(jax.random.key(1), jnp.zeros((2, 28, 28, 6)), train=False)
    # conv2d: truncated normal, std 0.02 before truncation at 2 std.
    conv = np.asarray(d['params']['Conv_2']['kernel'])
    assert np.abs(conv).max() <= 0.04 and 0.016 < conv.std() < 0.019
    # deconv2d and linear: N(0, 0.02), untruncated.
    deconv = np.asarray(g['params']['TFConvTranspose_0']['kernel'])
    assert np.abs(deconv).max() > 0.06 and abs(deconv.std() - 0.02) < 0.001
    biases = [w for p, w in jax.tree_util.tree_leaves_with_path(d) if p[-1].key == 'bias']
    scales = [w for p, w in jax.tree_util.tree_leaves_with_path(g) if p[-1].key == 'scale']
    assert all(float(jnp.abs(b).max()) == 0 for b in biases)
    assert len(scales) == 4 and all(float(jnp.abs(s - 1).max()) == 0 for s in scales)


def test_generator_images_are_28x28_in_tanh_range_and_conditioning_is_refused():
    generator, _ = models.build_models(_config('unrolled_dcgan', 8, 2), (28, 28, 3))
    z = jax.random.normal(jax.random.key(0), (4, 256))
    variables = generator.init(jax.random.key(1), z, train=False)
    images, _ = generator.apply(variables, z, train=True, mutable=['batch_stats'])
    assert images.shape == (4, 28, 28, 3) and float(jnp.abs(images).max()) <= 1.0
    with pytest.raises(ValueError, match="conditioning='projection'"):
        models.build_models(_config('unrolled_dcgan', 8, 2, conditioning='projection'), (28, 28, 3))


def test_unit_range_d_reads_images_in_0_1_and_g_returns_twice_its_tanh_minus_1():
    # The VEEGAN-setting code feeds D reals in [0, 1] and G's tanh as it is: in gan_jax's
    # [-1, 1] images that is D((x + 1) / 2) and G = 2 tanh - 1, on the same parameters.
    shape = (28, 28, 3)
    plain_g, plain_d = models.build_models(_config('veegan_dcgan', 8, 8), shape)
    unit_g, unit_d = models.build_models(
        _config('veegan_dcgan', 8, 8, unit_range_images=True), shape
    )
    z = jax.random.uniform(jax.random.key(0), (4, 100), minval=-1.0, maxval=1.0)
    g_vars = plain_g.init(jax.random.key(1), z, train=False)
    run = lambda g: g.apply(g_vars, z, train=True, mutable=['batch_stats'])[0]
    tanh = run(plain_g)
    np.testing.assert_allclose(run(unit_g), 2 * tanh - 1, atol=1e-6)
    # D's input: real images in [-1, 1] and G's unit-range fakes, as the authors' D sees them.
    x = jax.random.uniform(jax.random.key(2), (4, *shape), minval=-1.0, maxval=1.0)
    d_vars = plain_d.init(jax.random.key(3), x, train=False)
    judge = lambda d, x: d.apply(d_vars, x, train=True, mutable=['batch_stats'])[0]
    np.testing.assert_allclose(judge(unit_d, x), judge(plain_d, (x + 1) / 2), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        judge(unit_d, 2 * tanh - 1), judge(plain_d, tanh), rtol=1e-5, atol=1e-5
    )
    assert float(jnp.abs(judge(unit_d, x) - judge(plain_d, x)).max()) > 1e-3
    with pytest.raises(ValueError, match=r"unit_range_images=True .* not of model.name='dcgan'"):
        models.build_models(checks.model_config(dict(name='dcgan'), unit_range_images=True), shape)


@pytest.mark.parametrize('name, z_dim', [('veegan_dcgan', 100), ('unrolled_dcgan', 256)])
def test_packed_generator_normalises_each_slot_as_if_run_once_per_slot(name, z_dim):
    # The authors run G once per packing slot (model.py: G_sep, one call per z[i]); here G
    # runs once and example i is in slot i % 2: the same images on the same parameters.
    shape = (28, 28, 3)
    packed, _ = models.build_models(_config(name, 8, 8, pack=2), shape)
    single, _ = models.build_models(_config(name, 8, 8), shape)
    z = jax.random.normal(jax.random.key(0), (8, z_dim))
    variables = single.init(jax.random.key(1), z, train=False)
    images, stats = packed.apply(variables, z, train=True, mutable=['batch_stats'])
    per_slot = [
        single.apply(variables, z[j::2], train=True, mutable=['batch_stats']) for j in (0, 1)
    ]
    np.testing.assert_allclose(images[0::2], per_slot[0][0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(images[1::2], per_slot[1][0], rtol=1e-4, atol=1e-5)
    joint = single.apply(variables, z, train=True, mutable=['batch_stats'])[0]
    assert float(jnp.abs(joint - images).max()) > 1e-3  # Statistics over both slots differ.
    # Running statistics move toward the slots' average (the authors' two calls each move
    # them by a tenth in turn).
    average = jax.tree.map(lambda a, b: (a + b) / 2, per_slot[0][1], per_slot[1][1])
    for got, want in zip(jax.tree.leaves(stats), jax.tree.leaves(average)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
