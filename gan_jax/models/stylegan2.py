"""StyleGAN2-ADA's generator and discriminator (Karras et al. 2020, NeurIPS).

Structure, initialisation and parameter counts follow NVlabs/stylegan2-ada-pytorch
(``training/networks.py``, at the settings its ``train.py`` builds):

- Equalized learning rate: every weight is stored N(0, 1) (mapping layers:
  N(0, 1 / lr_multiplier)) and scaled at run time by lr_multiplier / sqrt(fan_in);
  biases by lr_multiplier. Leaky ReLU (slope 0.2) outputs are scaled by sqrt(2);
  ``conv_clamp`` clamps convolution outputs to [-conv_clamp, conv_clamp].
- Mapping: z normalised by its second moment (with a label embedding, itself
  normalised, concatenated in conditional runs), ``mapping_layers`` fully
  connected layers at lr multiplier 0.01, a running average of w (the
  ``'batch_stats'`` collection, updated in train mode) for the truncation trick,
  w broadcast to the synthesis layers.
- Synthesis: a learned 4x4 constant; per resolution a modulated 3x3 convolution
  with weight demodulation (upsampling by 2 with the [1, 3, 3, 1] FIR filter
  from 8x8 on), a second one, per-layer noise with a learned strength, and the
  ``skip`` architecture: a 1x1 modulated toRGB at every resolution, summed into
  the FIR-upsampled image.
- Discriminator: ``orig`` (two 3x3 convolutions per resolution, the second
  downsampling) or ``resnet`` (plus a 1x1 shortcut, both branches scaled by
  sqrt(1/2)); then minibatch standard deviation, a 3x3 convolution, two fully
  connected layers; class labels enter by projection onto a mapping of the
  label (the official ``cmap``).

Mixed precision: ``bf16_resolutions`` top resolutions of G's and D's blocks
(never below 8x8) compute in bfloat16, the official ``num_fp16_res`` with
bfloat16 for float16 (whose range needs no pre-scaling); parameters, ws, styles,
demodulation, G's summed image and D's 4x4 epilogue stay in the compute dtype
(``train.compute_dtype``). Differences: the official minibatch-stddev groups take
every n-th example, here consecutive ones (the same statistic for an i.i.d. batch, and the
same groups on 1 or N devices when the local batch is a multiple of the group
size); the engine passes G no random key, so the per-layer noise is drawn from a
key derived from each example's latent (fresh noise for every fresh z, the same
on 1 or N devices).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gan_jax.models.layers import generator_classes, square_image
from gan_jax.models.upfirdn import conv2d_resample, upsample2d

SQRT2 = math.sqrt(2.0)
MAPPING_LR_MULTIPLIER = 0.01
W_AVG_BETA = 0.995  # Decay of the running average of w.
D_MAPPING_LAYERS = 8  # The official D maps labels with MappingNetwork's default depth.
D_ARCHITECTURES = ('orig', 'resnet')
NOISE_SEED = 0x6E6F6973


def channels(resolution, channel_base, channel_max):
    """Feature maps at a resolution: min(channel_base // resolution, channel_max)."""
    return min(channel_base // resolution, channel_max)


def bias_act(x, bias, *, activation, gain=1.0, clamp=None):
    """x + bias, then leaky ReLU times sqrt(2) (``activation``), times gain, clamped."""
    x = x + bias
    if activation:
        x = nn.leaky_relu(x, 0.2) * SQRT2
    if gain != 1.0:
        x = x * gain
    if clamp is not None:
        x = jnp.clip(x, -clamp, clamp)
    return x


def normalize_2nd_moment(x, eps=1e-8):
    return x * lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


def modulated_conv2d(x, weight, styles, *, demodulate=True, up=1):
    """StyleGAN2's modulated convolution of x [N, H, W, I] with an HWIO ``weight``.

    The per-example kernel is ``weight[..., i, o] * styles[n, i]``, divided (with
    ``demodulate``) by its norm over (h, w, i). Computed by scaling the
    activations before and after one convolution shared by the batch (the
    official non-fused form), which XLA:CPU runs faster than a grouped
    convolution of per-example kernels (benchmarks/stylegan2_modconv.py).
    """
    x = x * styles[:, None, None, :].astype(x.dtype)
    x = conv2d_resample(x, weight.astype(x.dtype), up=up)
    if demodulate:  # In float32 also under mixed precision: a sum over fan_in squares.
        s, w = styles.astype(jnp.float32), weight.astype(jnp.float32)
        power = jnp.einsum('ni,io->no', jnp.square(s), jnp.sum(jnp.square(w), (0, 1)))
        x = x * lax.rsqrt(power + 1e-8)[:, None, None, :].astype(x.dtype)
    return x


def _check_labels(network, num_classes, labels):
    if (labels is None) != (not num_classes):
        given = 'no labels' if labels is None else 'labels'
        raise ValueError(f'StyleGAN2 {network} with num_classes={num_classes!r} got {given}')


def bf16_dtype(resolution, top, count, dtype):
    """The dtype of the block at ``resolution`` when the ``count`` highest resolutions up
    to ``top`` (never below 8x8, as the official num_fp16_res) compute in bfloat16."""
    lowest = max(2 ** (int(math.log2(top)) + 1 - count), 8)
    return jnp.bfloat16 if resolution >= lowest else dtype


def _check_bf16_resolutions(count):
    if not isinstance(count, int) or count < 0:
        raise ValueError(f'model.bf16_resolutions={count!r} must be an integer >= 0 (0: none)')


def _check_resolution(resolution, minimum):
    if resolution < minimum or resolution & (resolution - 1):
        raise ValueError(
            f'StyleGAN2 needs a power-of-two resolution >= {minimum}, got {resolution}'
        )


def _normal(stddev=1.0):
    return nn.initializers.normal(stddev)


class FullyConnected(nn.Module):
    """Dense layer with equalized learning rate (the official FullyConnectedLayer)."""

    features: int
    activation: bool = False
    lr_multiplier: float = 1.0
    bias_init: float = 0.0

    @nn.compact
    def __call__(self, x):
        fan_in = x.shape[-1]
        weight = self.param('weight', _normal(1.0 / self.lr_multiplier), (fan_in, self.features))
        bias = self.param('bias', nn.initializers.constant(self.bias_init), (self.features,))
        x = x @ (weight * (self.lr_multiplier / math.sqrt(fan_in))).astype(x.dtype)
        return bias_act(x, (bias * self.lr_multiplier).astype(x.dtype), activation=self.activation)


class Conv2d(nn.Module):
    """Convolution with equalized learning rate, optional 2x FIR downsampling (D's layers)."""

    features: int
    kernel_size: int
    activation: bool = True
    down: int = 1
    use_bias: bool = True
    conv_clamp: float | None = None

    @nn.compact
    def __call__(self, x, gain=1.0):
        k, fan_in = self.kernel_size, x.shape[-1]
        weight = self.param('weight', _normal(), (k, k, fan_in, self.features))
        w = (weight * (1.0 / math.sqrt(fan_in * k * k))).astype(x.dtype)
        x = conv2d_resample(x, w, down=self.down)
        bias = self.param('bias', nn.initializers.zeros, (self.features,)) if self.use_bias else 0.0
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return bias_act(
            x, jnp.asarray(bias, x.dtype), activation=self.activation, gain=gain, clamp=clamp
        )


class MappingNetwork(nn.Module):
    """z [N, z_dim] and/or labels [N] -> w [N, w_dim], or [N, num_ws, w_dim] if ``num_ws``.

    ``track_w_avg``: keep the running average of w (``'batch_stats'`` / ``w_avg``),
    updated in train mode with decay 0.995; ``truncation_psi`` < 1 moves the first
    ``truncation_cutoff`` ws (all for None) towards it (w_avg + psi (w - w_avg)).
    """

    w_dim: int
    num_layers: int
    num_classes: int | None = None
    num_ws: int | None = None
    track_w_avg: bool = True
    lr_multiplier: float = MAPPING_LR_MULTIPLIER

    @nn.compact
    def __call__(self, z, labels=None, *, train, truncation_psi=1.0, truncation_cutoff=None):
        parts = [] if z is None else [normalize_2nd_moment(z)]
        if self.num_classes:
            one_hot = jax.nn.one_hot(
                labels, self.num_classes, dtype=parts[0].dtype if parts else jnp.float32
            )
            parts.append(normalize_2nd_moment(FullyConnected(self.w_dim, name='embed')(one_hot)))
        x = jnp.concatenate(parts, axis=-1)
        for i in range(self.num_layers):
            x = FullyConnected(
                self.w_dim, activation=True, lr_multiplier=self.lr_multiplier, name=f'fc{i}'
            )(x)
        if self.track_w_avg:
            w_avg = self.variable('batch_stats', 'w_avg', jnp.zeros, (self.w_dim,), jnp.float32)
            if train and not self.is_initializing():
                mean = jnp.mean(x.astype(jnp.float32), axis=0)
                w_avg.value = mean + W_AVG_BETA * (w_avg.value - mean)
        if self.num_ws is not None:
            x = jnp.repeat(x[:, None, :], self.num_ws, axis=1)
        if truncation_psi != 1.0:
            if not self.track_w_avg or self.num_ws is None:
                raise ValueError('Truncation needs the tracked w average and broadcast ws.')
            avg = w_avg.value.astype(x.dtype)
            cut = self.num_ws if truncation_cutoff is None else truncation_cutoff
            truncated = avg + truncation_psi * (x[:, :cut] - avg)
            x = jnp.concatenate([truncated, x[:, cut:]], axis=1)
        return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (upsampling by ``up``), noise, bias, leaky ReLU."""

    features: int
    up: int = 1
    conv_clamp: float | None = None

    @nn.compact
    def __call__(self, x, w, noise):
        """``noise`` [N, H', W', 1] at the output's size, or None."""
        styles = FullyConnected(x.shape[-1], bias_init=1.0, name='affine')(w)
        weight = self.param('weight', _normal(), (3, 3, x.shape[-1], self.features))
        x = modulated_conv2d(x, weight, styles, up=self.up)
        strength = self.param('noise_strength', nn.initializers.zeros, ())
        if noise is not None:
            x = x + noise.astype(x.dtype) * strength.astype(x.dtype)
        bias = self.param('bias', nn.initializers.zeros, (self.features,))
        return bias_act(x, bias.astype(x.dtype), activation=True, clamp=self.conv_clamp)


class ToRGB(nn.Module):
    """Modulated 1x1 convolution to the image channels, without demodulation."""

    features: int
    conv_clamp: float | None = None

    @nn.compact
    def __call__(self, x, w):
        fan_in = x.shape[-1]
        styles = FullyConnected(fan_in, bias_init=1.0, name='affine')(w) / math.sqrt(fan_in)
        weight = self.param('weight', _normal(), (1, 1, fan_in, self.features))
        x = modulated_conv2d(x, weight, styles, demodulate=False)
        bias = self.param('bias', nn.initializers.zeros, (self.features,))
        return bias_act(x, bias.astype(x.dtype), activation=False, clamp=self.conv_clamp)


def _resolutions(resolution):
    return [2**i for i in range(2, int(math.log2(resolution)) + 1)]


def num_ws(resolution):
    """The ws the synthesis network reads: its convolutions plus the last toRGB."""
    return 2 * len(_resolutions(resolution))


def synthesis_noise(noise_keys, resolution):
    """The noise [N, r, r, 1] (float32) of every synthesis layer, in layer order.

    One draw of all an example's noise values from its key, cut into the layers:
    a single random-number kernel, where a draw per layer compiles one per size
    (XLA:CPU unrolls the small ones, which compile slowly).
    """
    sizes = [r for r in _resolutions(resolution) for _ in range(1 if r == 4 else 2)]
    ends = np.cumsum([r * r for r in sizes])
    flat = jax.vmap(lambda key: jax.random.normal(key, (int(ends[-1]),)))(noise_keys)
    return [flat[:, end - r * r : end].reshape(-1, r, r, 1) for end, r in zip(ends.tolist(), sizes)]


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> images [N, R, R, C] (``skip`` architecture).

    Block r (4, 8, ..., R) reads ws[i : i + num_conv + 1], i counting the earlier
    blocks' convolutions, so a block's toRGB shares its w with the next block's
    first convolution, as officially. ``noise_keys`` [N] (one key per example)
    draws the per-layer noise; None leaves it out. The top ``bf16_resolutions``
    blocks compute in bfloat16 (``bf16_dtype``), the summed image in ws' dtype.
    """

    resolution: int
    img_channels: int
    channel_base: int
    channel_max: int
    conv_clamp: float | None = None
    bf16_resolutions: int = 0

    def __post_init__(self):
        _check_resolution(self.resolution, 4)
        _check_bf16_resolutions(self.bf16_resolutions)
        super().__post_init__()

    @property
    def num_ws(self):
        return num_ws(self.resolution)

    @nn.compact
    def __call__(self, ws, noise_keys=None):
        if ws.shape[1] != self.num_ws:
            raise ValueError(f'Expected {self.num_ws} ws, got shape {ws.shape}')
        width = lambda r: channels(r, self.channel_base, self.channel_max)  # noqa: E731
        x = self.param('const', _normal(), (4, 4, width(4)))
        x = jnp.broadcast_to(x.astype(ws.dtype), (ws.shape[0], *x.shape))
        noise = (
            [None] * (self.num_ws - 1)
            if noise_keys is None
            else synthesis_noise(noise_keys, self.resolution)
        )
        img, w_index = None, 0
        for r in _resolutions(self.resolution):
            ups = [1] if r == 4 else [2, 1]
            x = x.astype(bf16_dtype(r, self.resolution, self.bf16_resolutions, ws.dtype))
            for j, up in enumerate(ups):
                x = SynthesisLayer(
                    width(r), up, self.conv_clamp, name=f'b{r}_conv{j + 2 - len(ups)}'
                )(x, ws[:, w_index + j], noise[w_index + j])
            y = ToRGB(self.img_channels, self.conv_clamp, name=f'b{r}_torgb')(
                x, ws[:, w_index + len(ups)]
            ).astype(ws.dtype)
            img = y if img is None else upsample2d(img) + y
            w_index += len(ups)
        return img


def mixing_cutoff(key, prob, num_ws):
    """Style mixing's crossover (the official ``StyleGAN2Loss.run_G``): with probability
    ``prob`` a layer drawn uniformly from 1..num_ws - 1, else num_ws (no mixing); one
    draw for the whole batch."""
    mix_key, layer_key = jax.random.split(key)
    cutoff = jax.random.randint(layer_key, (), 1, num_ws)
    return jnp.where(jax.random.uniform(mix_key) < prob, cutoff, num_ws)


def mix_styles(ws, other, cutoff):
    """ws [N, num_ws, w_dim] below layer ``cutoff``, ``other`` from it on."""
    return jnp.where((jnp.arange(ws.shape[1]) < cutoff)[None, :, None], ws, other)


def latent_noise_keys(z):
    """One key per example, a function of its latent's first two values' bits."""
    bits = lax.bitcast_convert_type(lax.stop_gradient(z[:, :2]).astype(jnp.float32), jnp.uint32)
    base = jax.random.PRNGKey(NOISE_SEED)
    return jax.vmap(lambda b: jax.random.fold_in(jax.random.fold_in(base, b[0]), b[-1]))(bits)


class StyleGAN2Generator(nn.Module):
    """Maps latents z [N, z_dim] (and labels [N] if ``num_classes``) to images [N, R, R, C].

    ``truncation_psi`` and ``truncation_cutoff`` truncate w towards its tracked
    average (MappingNetwork); the call's arguments override the fields, which apply
    in inference mode only (``with_truncation_psi``: sampling and evaluation).
    ``mixing`` (z2 [N, z_dim], key, probability): style mixing regularisation, the
    ws of z2 (same labels, w average not updated) from the layer ``mixing_cutoff``
    draws on. ``map`` and ``synthesize`` run the two halves.
    """

    resolution: int
    img_channels: int
    num_classes: int | None = None
    w_dim: int = 512
    mapping_layers: int = 8
    channel_base: int = 32768
    channel_max: int = 512
    conv_clamp: float | None = None
    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None
    bf16_resolutions: int = 0

    def __post_init__(self):
        _check_resolution(self.resolution, 4)
        super().__post_init__()

    def setup(self):
        self.synthesis = SynthesisNetwork(
            self.resolution,
            self.img_channels,
            self.channel_base,
            self.channel_max,
            self.conv_clamp,
            bf16_resolutions=self.bf16_resolutions,
        )
        self.mapping = MappingNetwork(
            self.w_dim, self.mapping_layers, self.num_classes, num_ws=self.synthesis.num_ws
        )

    def map(
        self, z, labels=None, *, train, truncation_psi=None, truncation_cutoff=None, mixing=None
    ):
        _check_labels('generator', self.num_classes, labels)
        if truncation_psi is None and not train:
            truncation_psi, truncation_cutoff = self.truncation_psi, self.truncation_cutoff
        truncation = dict(
            truncation_psi=1.0 if truncation_psi is None else truncation_psi,
            truncation_cutoff=truncation_cutoff,
        )
        ws = self.mapping(z, labels, train=train, **truncation)
        if mixing is not None:
            z2, key, prob = mixing
            other = self.mapping(z2, labels, train=False, **truncation)
            ws = mix_styles(ws, other, mixing_cutoff(key, prob, ws.shape[1]))
        return ws

    def synthesize(self, ws, noise_keys=None):
        return self.synthesis(ws, noise_keys)

    def synthesize_latents(self, ws, z, *, train=False):
        """The images of ``ws`` with the noise ``__call__`` draws for latents ``z``."""
        del train  # The synthesis network has no train-mode behaviour.
        return self.synthesize(ws, latent_noise_keys(z))

    def __call__(
        self, z, labels=None, *, train, truncation_psi=None, truncation_cutoff=None, mixing=None
    ):
        ws = self.map(
            z,
            labels,
            train=train,
            truncation_psi=truncation_psi,
            truncation_cutoff=truncation_cutoff,
            mixing=mixing,
        )
        return self.synthesize_latents(ws, z)


def with_truncation_psi(generator, psi):
    """``generator`` truncating w towards its tracked average by ``psi`` in inference mode
    (StyleGAN's truncation trick, official ``--trunc``); psi 1 is no truncation."""
    if not isinstance(psi, (int, float)) or isinstance(psi, bool) or not math.isfinite(psi):
        raise ValueError(f'truncation_psi={psi!r}: expected a finite number (1: none).')
    if not isinstance(generator, StyleGAN2Generator):
        if psi == 1:
            return generator
        raise ValueError(
            f'truncation_psi={psi}: {type(generator).__name__} has no w space to truncate '
            "in (model.name='stylegan2' has; BigGAN's latent truncation is 'truncation')."
        )
    return generator.clone(truncation_psi=float(psi))


def minibatch_stddev(x, group_size, num_channels=1):
    """Appends, per group of ``group_size`` consecutive examples, the mean over
    channels and pixels of the features' standard deviation over the group
    (``num_channels`` values from as many channel slices)."""
    n, h, w, c = x.shape
    g = min(group_size, n)
    if n % g:
        raise ValueError(
            f'Minibatch stddev: the batch on a device ({n}) is not a multiple of the group size {g}'
        )
    y = x.astype(jnp.float32).reshape(n // g, g, h, w, num_channels, c // num_channels)
    y = jnp.sqrt(jnp.mean(jnp.square(y - jnp.mean(y, axis=1, keepdims=True)), axis=1) + 1e-8)
    y = jnp.mean(y, axis=(1, 2, 4))  # [n / g, F]
    y = jnp.broadcast_to(y[:, None, None, None, :], (n // g, g, h, w, num_channels))
    return jnp.concatenate([x, y.reshape(n, h, w, num_channels).astype(x.dtype)], axis=-1)


class StyleGAN2Discriminator(nn.Module):
    """Maps images [N, R, R, C] (and labels [N] if ``num_classes``) to logits [N].

    The blocks of the top ``bf16_resolutions`` resolutions compute in bfloat16
    (``bf16_dtype``), the 4x4 epilogue in the images' dtype.
    """

    resolution: int
    num_classes: int | None = None
    architecture: str = 'resnet'
    channel_base: int = 32768
    channel_max: int = 512
    mbstd_group_size: int = 4
    mbstd_num_channels: int = 1
    conv_clamp: float | None = None
    bf16_resolutions: int = 0

    def __post_init__(self):
        _check_bf16_resolutions(self.bf16_resolutions)
        if self.architecture not in D_ARCHITECTURES:
            raise ValueError(
                f'StyleGAN2 D architecture {self.architecture!r} is not one of {D_ARCHITECTURES}'
            )
        _check_resolution(self.resolution, 8)
        super().__post_init__()

    @nn.compact
    def __call__(self, img, labels=None, *, train):
        del train  # No train-mode behaviour.
        _check_labels('discriminator', self.num_classes, labels)
        if img.shape[1:3] != (self.resolution, self.resolution):
            raise ValueError(
                f'Expected {self.resolution}x{self.resolution} images, got {img.shape}'
            )
        width = lambda r: channels(r, self.channel_base, self.channel_max)  # noqa: E731
        clamp = self.conv_clamp
        resnet = self.architecture == 'resnet'
        dtype = lambda r: bf16_dtype(r, self.resolution, self.bf16_resolutions, img.dtype)  # noqa: E731
        x = Conv2d(width(self.resolution), 1, conv_clamp=clamp, name=f'b{self.resolution}_fromrgb')(
            img.astype(dtype(self.resolution))
        )
        r = self.resolution
        while r > 4:
            x = x.astype(dtype(r))
            gain = math.sqrt(0.5) if resnet else 1.0
            if resnet:
                skip = Conv2d(
                    width(r // 2), 1, activation=False, down=2, use_bias=False, name=f'b{r}_skip'
                )
                y = skip(x, gain)
            h = Conv2d(width(r), 3, conv_clamp=clamp, name=f'b{r}_conv0')(x)
            x = Conv2d(width(r // 2), 3, down=2, conv_clamp=clamp, name=f'b{r}_conv1')(h, gain)
            if resnet:
                x = y + x
            r //= 2
        # Epilogue at 4x4.
        x = minibatch_stddev(x.astype(img.dtype), self.mbstd_group_size, self.mbstd_num_channels)
        x = Conv2d(width(4), 3, conv_clamp=clamp, name='b4_conv')(x)
        x = FullyConnected(width(4), activation=True, name='b4_fc')(x.reshape(x.shape[0], -1))
        if not self.num_classes:
            return FullyConnected(1, name='b4_out')(x)[:, 0]
        cmap_dim = width(4)
        x = FullyConnected(cmap_dim, name='b4_out')(x)
        cmap = MappingNetwork(
            cmap_dim, D_MAPPING_LAYERS, self.num_classes, track_w_avg=False, name='mapping'
        )(None, labels, train=False)
        return jnp.sum(x * cmap, axis=-1) / math.sqrt(cmap_dim)


def build(model_config, image_shape):
    """(generator, discriminator) from the ``model`` config and the data's (R, R, C)."""
    resolution, img_channels = square_image(image_shape, 'stylegan2')
    if model_config.conditioning not in (None, 'projection'):
        raise ValueError(
            'StyleGAN2 conditions D by projection: model.conditioning must be None or '
            f"'projection', got {model_config.conditioning!r}"
        )
    num_classes = generator_classes(model_config)
    common = dict(
        resolution=resolution,
        num_classes=num_classes,
        channel_base=model_config.channel_base,
        channel_max=model_config.channel_max,
        conv_clamp=model_config.conv_clamp,
        bf16_resolutions=model_config.bf16_resolutions,
    )
    generator = StyleGAN2Generator(
        img_channels=img_channels,
        w_dim=model_config.w_dim,
        mapping_layers=model_config.mapping_layers,
        **common,
    )
    discriminator = StyleGAN2Discriminator(
        architecture=model_config.d_architecture,
        mbstd_group_size=model_config.mbstd_group_size,
        **common,
    )
    return generator, discriminator
