"""The PyTorch reference the speed benchmarks compare with has gan_jax's architectures."""

import jax
import pytest

from experiments import base, pacgan
from gan_jax import builder, models

torch_reference = pytest.importorskip('benchmarks.torch_reference')  # Needs torch.
from benchmarks import train_step  # noqa: E402  (after the skip: imports torch lazily)


@pytest.mark.parametrize('preset', sorted(train_step.PRESETS))
def test_torch_reference_has_the_same_parameter_counts_as_gan_jax(preset):
    resolution, model = train_step.PRESETS[preset]
    config = base.get_config()
    config.model.update(model)
    config.data.update(dict(source='digits', channels=train_step.CHANNELS, resolution=resolution))
    shapes = jax.eval_shape(builder.build(config).init_state)
    reference = torch_reference.PRESETS[preset]
    assert (reference.channels, reference.resolution, reference.z_dim) == (
        train_step.CHANNELS,
        resolution,
        model['z_dim'],
    )
    g, d = reference.models(reference.channels, reference.resolution, reference.z_dim)
    assert torch_reference.count_params(g) == models.count_params(shapes.g_params)
    assert torch_reference.count_params(d) == models.count_params(shapes.d_params)


def test_torch_reference_step_updates_both_networks():
    step, g, d = torch_reference.make_step('dcgan32', batch=4)
    before = [p.detach().clone() for p in (*g.parameters(), *d.parameters())]
    real = torch_reference.torch.randint(0, 256, (4, 3, 32, 32), dtype=torch_reference.torch.uint8)
    d_loss, g_loss = step(real)
    after = list((*g.parameters(), *d.parameters()))
    assert all(not bool((a == b).all()) for a, b in zip(after, before))
    assert bool(d_loss.isfinite()) and bool(g_loss.isfinite())


def test_torch_stylegan2_matches_gan_jax_at_another_width_and_runs():
    """The mirrored StyleGAN2 at 16 feature maps: the same parameter counts as gan_jax's
    (so the count does not match by accident at 512), images [N, 3, 32, 32], logits [N]."""
    resolution, model = train_step.PRESETS['stylegan2_32']
    config = base.get_config()
    config.model.update(model | dict(channel_max=16))
    config.data.update(dict(source='digits', channels=3, resolution=resolution))
    shapes = jax.eval_shape(builder.build(config).init_state)
    g, d = torch_reference.stylegan2(3, resolution, model['z_dim'], width=16)
    assert torch_reference.count_params(g) == models.count_params(shapes.g_params)
    assert torch_reference.count_params(d) == models.count_params(shapes.d_params)
    torch = torch_reference.torch
    images = g(torch.randn(2, model['z_dim']))
    assert images.shape == (2, 3, resolution, resolution)
    assert d(images).shape == (2,)


@pytest.mark.parametrize(
    'variant, g_count, d_count',
    [
        # The preset's docstring, counted from the authors' model.py: G 4,514,819,
        # D 4,305,601 + 4,800 m (5x5 kernels over 3 m input channels, 64 filters).
        ('stacked_mnist', 4_514_819, 4_305_601 + 4_800 * 2),
        ('stacked_mnist_dcgan', 4_514_819, 4_305_601 + 4_800),
        # Counted by hand from the Unrolled GAN replication's model.py (3x3 kernels, biases,
        # BatchNorm scale and shift): G Linear 256 -> 4x4x64 (263,168) + BN 128, then
        # 64 -> 32 -> 16 -> 8 transposed (18,464 + 64, 4,624 + 32, 1,160 + 16), 8 -> 3 (219);
        # D = 1/4 G on 6 channels: 110 + 4, 76 + 8, 296 + 16, Linear 129;
        # D = 1/2 G on 3: 112 + 8, 296 + 16, 1,168 + 32, Linear 257.
        ('stacked_mnist_d_quarter', 287_875, 639),
        ('stacked_mnist_d_half_dcgan', 287_875, 1_889),
    ],
)
def test_torch_stacked_mnist_networks_have_gan_jax_parameter_counts(variant, g_count, d_count):
    config = pacgan.get_config(variant)
    config.data.update(dict(source='digits', channels=3, resolution=28, path=None))
    shapes = jax.eval_shape(builder.build(config).init_state)
    g, d = torch_reference.stacked_mnist_networks(config)
    counts = torch_reference.count_params(g), torch_reference.count_params(d)
    assert counts == (models.count_params(shapes.g_params), models.count_params(shapes.d_params))
    assert counts == (g_count, d_count)


def test_torch_stacked_mnist_step_updates_both_networks_with_the_presets_shapes():
    config = pacgan.get_config('stacked_mnist_d_quarter')
    config.train.batch_size = 4 * config.train.pack  # 4 packed D inputs.
    step, g, d = torch_reference.make_stacked_mnist_step(config)
    torch = torch_reference.torch
    assert g(torch.randn(2, config.model.z_dim)).shape == (2, 3, 28, 28)
    before = [p.detach().clone() for p in (*g.parameters(), *d.parameters())]
    d_loss, g_loss = step(torch.rand(4, 3 * config.train.pack, 28, 28) * 2 - 1)
    after = list((*g.parameters(), *d.parameters()))
    assert all(not bool((a == b).all()) for a, b in zip(after, before))
    assert bool(d_loss.isfinite()) and bool(g_loss.isfinite())
