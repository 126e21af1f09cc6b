"""The TensorFlow DCGANs of PacGAN's Stacked MNIST code (carpedm20/DCGAN-tensorflow's ops).

Two families, as fjxmlzn/PacGAN's stacked_MNIST_experiments build them from their
ops.py:

  ``veegan_dcgan`` (VEEGAN_experiment/model.py): G is Linear(z -> 2x2x8w), BatchNorm,
  ReLU, then four 5x5 stride-2 transposed convolutions to 4x4x4w, 7x7x2w, 14x14xw
  (each BatchNorm, ReLU) and 28x28xC (tanh); D is four 5x5 stride-2 convolutions
  of w, 2w, 4w, 8w channels, BatchNorm after all but the first, leaky ReLU 0.2, then
  Linear(1). w is ``g_width`` / ``d_width`` (the authors': 64 and 64).

  ``unrolled_dcgan`` (unrolled_GAN_experiment/D=0.5G and D=0.25G, model.py): G is
  Linear(z -> 4x4x8w), BatchNorm, ReLU, three 3x3 stride-2 transposed convolutions to
  7x7x4w, 14x14x2w, 28x28xw (each BatchNorm, ReLU), then a 3x3 stride-1 convolution
  to C channels (tanh); D is three 3x3 stride-2 convolutions of w, 2w, 4w channels,
  each with BatchNorm, leaky ReLU 0.3, then Linear(1). The authors' w: G 8
  (64-32-16-8 channels), D 4 (D=0.5G) or 2 (D=0.25G).

Layers as ops.py has them: every convolution, transposed convolution and Linear
has a bias (also before BatchNorm); convolution kernels are truncated normal
(std 0.02, cut at 2 std), transposed-convolution and Linear kernels N(0, 0.02);
BatchNorm is tf.contrib's (decay 0.9, epsilon 1e-5, scale 1 and shift 0 to start), in G
per packing slot, as the authors run G once per slot (``layers.SlotBatchNorm``);
padding is TensorFlow's 'SAME', so the grids halve rounding up (28, 14, 7, 4, 2) and a
transposed convolution is the adjoint of the 'SAME' convolution from its output size.

``unit_range`` (``model.unit_range_images``) is the VEEGAN-setting code's pixel scale:
its D reads real images in [0, 1] and G's tanh output as it is. In gan_jax's [-1, 1]
convention that is D reading ``(x + 1) / 2`` and G returning ``2 tanh - 1``, so D sees
exactly what the authors' D sees, and a saved or evaluated fake is G's tanh in [0, 1],
clipped at 0.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models.conv import Conv, dilated_conv, kernel_and_bias
from gan_jax.models.layers import SlotBatchNorm, bn_axis, check_resolution, square_image

UNIT_RANGE_MODELS = ('veegan_dcgan', 'unrolled_dcgan')  # Those with model.unit_range_images.
normal_02 = nn.initializers.normal(stddev=0.02)  # tf.random_normal_initializer(stddev=0.02)
truncated_02 = nn.initializers.truncated_normal(stddev=0.02)  # tf.truncated_normal_initializer


def halved_sizes(resolution: int, times: int) -> list[int]:
    """[resolution, ceil(resolution / 2), ...]: the grids of ``times`` 'SAME' stride-2 convs."""
    sizes = [resolution]
    for _ in range(times):
        sizes.append(-(-sizes[-1] // 2))
    return sizes


def tf_transpose_padding(in_size: int, out_size: int, kernel: int, stride: int):
    """(before, after) padding of the dilated input that makes a transposed convolution
    the adjoint of TF's 'SAME' convolution from ``out_size`` to ``in_size``."""
    if in_size != -(-out_size // stride):
        raise ValueError(
            f'A stride-{stride} transposed convolution maps {-(-out_size // stride)} to '
            f'{out_size}, not {in_size}.'
        )
    total = max((in_size - 1) * stride + kernel - out_size, 0)
    before = total // 2
    return kernel - 1 - before, kernel - 1 - (total - before)


class TFConvTranspose(nn.Module):
    """tf.nn.conv2d_transpose with stride 2 to a square ``output_size`` grid, plus a bias.

    The kernel is (k, k, in, out), the flipped and transposed form of TF's
    (k, k, out, in) filter: the same functions and parameter count.
    """

    features: int
    kernel_size: tuple[int, int]
    output_size: int
    stride: int = 2
    use_bias: bool = True
    kernel_init: nn.initializers.Initializer = normal_02
    bias_init: nn.initializers.Initializer = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x, kernel, bias = kernel_and_bias(self, x)
        padding = [
            tf_transpose_padding(x.shape[axis], self.output_size, k, self.stride)
            for axis, k in ((1, self.kernel_size[0]), (2, self.kernel_size[1]))
        ]
        return dilated_conv(x, kernel, (self.stride, self.stride), padding) + bias


def tf_batch_norm(slots: int, axis_name: str | None) -> SlotBatchNorm:
    """tf.contrib.layers.batch_norm(decay=0.9, epsilon=1e-5, scale=True), gamma 1, beta 0,
    with statistics per packing slot (``slots``; 1: over the whole batch)."""
    return SlotBatchNorm(slots, momentum=0.9, epsilon=1e-5, running='var', axis_name=axis_name)


class TFDCGANGenerator(nn.Module):
    """z [B, z_dim] -> images [B, R, R, channels] in [-1, 1] (``unit_range``: 2 tanh - 1).

    ``widths``: the channels of the Linear layer's grid and of each transposed
    convolution after it. With ``output_conv`` the last of them is followed by a
    stride-1 convolution to ``channels``; otherwise a last transposed convolution
    makes the image. BatchNorm statistics are per packing slot (``slots``: D's pack).
    """

    resolution: int
    channels: int
    widths: tuple[int, ...]
    kernel: int
    output_conv: bool
    axis_name: str | None = None
    unit_range: bool = False
    slots: int = 1

    @nn.compact
    def __call__(self, z: jax.Array, labels: jax.Array | None = None, *, train: bool) -> jax.Array:
        del labels
        k = (self.kernel, self.kernel)
        ups = len(self.widths) - 1 if self.output_conv else len(self.widths)
        sizes = halved_sizes(self.resolution, ups)[::-1]  # Smallest grid first.

        def norm_relu(x):
            return nn.relu(tf_batch_norm(self.slots, self.axis_name)(x, train=train))

        base = sizes[0]
        x = nn.Dense(base * base * self.widths[0], kernel_init=normal_02)(z)
        x = norm_relu(x.reshape(z.shape[0], base, base, self.widths[0]))
        for width, size in zip(self.widths[1:], sizes[1:]):
            x = norm_relu(TFConvTranspose(width, k, size)(x))
        if self.output_conv:
            x = Conv(self.channels, k, strides=1, padding='SAME', kernel_init=truncated_02)(x)
        else:
            x = TFConvTranspose(self.channels, k, self.resolution)(x)
        return 2 * jnp.tanh(x) - 1 if self.unit_range else jnp.tanh(x)


class TFDCGANDiscriminator(nn.Module):
    """Images [B, R, R, C] (C may be m times the image channels, PacGAN) -> logits [B].

    One 'SAME' stride-2 convolution per entry of ``widths``, each followed by
    BatchNorm (except the first unless ``batch_norm_first``) and a leaky ReLU of
    slope ``leak``, then Linear(1). With ``unit_range`` it reads ``(x + 1) / 2``.
    """

    resolution: int
    widths: tuple[int, ...]
    kernel: int
    leak: float
    batch_norm_first: bool
    axis_name: str | None = None
    unit_range: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, labels: jax.Array | None = None, *, train: bool):
        del labels
        check_resolution(x, self.resolution)
        if self.unit_range:
            x = (x + 1) / 2
        for i, width in enumerate(self.widths):
            x = Conv(
                width,
                (self.kernel, self.kernel),
                strides=2,
                padding='SAME',
                kernel_init=truncated_02,
            )(x)
            if i > 0 or self.batch_norm_first:
                x = tf_batch_norm(1, self.axis_name)(x, train=train)
            x = nn.leaky_relu(x, self.leak)
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(1, kernel_init=normal_02)(x)[:, 0]


def _check(config, family):
    if config.conditioning is not None or config.g_spectral_norm or config.d_spectral_norm:
        raise ValueError(
            f"{family} is unconditional and without spectral norm (the authors' networks); "
            f'got model.conditioning={config.conditioning!r}, model.g_spectral_norm='
            f'{config.g_spectral_norm}, model.d_spectral_norm={config.d_spectral_norm}.'
        )


def build_veegan(config, image_shape):
    """PacGAN's VEEGAN-setting networks (5x5 kernels, 4 layers each side)."""
    _check(config, 'veegan_dcgan')
    resolution, channels = square_image(image_shape, 'veegan_dcgan')
    g, d, axis, unit = config.g_width, config.d_width, bn_axis(config), config.unit_range_images
    return (
        TFDCGANGenerator(
            resolution, channels, (8 * g, 4 * g, 2 * g, g), 5, False, axis, unit, config.pack
        ),
        TFDCGANDiscriminator(resolution, (d, 2 * d, 4 * d, 8 * d), 5, 0.2, False, axis, unit),
    )


def build_unrolled(config, image_shape):
    """PacGAN's replication of the Unrolled GAN's Stacked MNIST networks (3x3 kernels)."""
    _check(config, 'unrolled_dcgan')
    resolution, channels = square_image(image_shape, 'unrolled_dcgan')
    g, d, axis, unit = config.g_width, config.d_width, bn_axis(config), config.unit_range_images
    return (
        TFDCGANGenerator(
            resolution, channels, (8 * g, 4 * g, 2 * g, g), 3, True, axis, unit, config.pack
        ),
        TFDCGANDiscriminator(resolution, (d, 2 * d, 4 * d), 3, 0.3, True, axis, unit),
    )
