"""gan_jax's train step, written in plain PyTorch, for side-by-side timing.

Four gan_jax architectures, mirrored layer by layer (layer order, kernels,
strides, paddings, biases, BatchNorm, activations, spectral norm, pooling), so
the parameter counts are the same (benchmarks/train_step.py checks them):
DCGAN (gan_jax/models/dcgan.py), SN-DCGAN (sndcgan.py), SNGAN's CIFAR
ResNet (resnet.py) and StyleGAN2's CIFAR networks (stylegan2.py: equalized
learning rate, modulated convolutions, noise, FIR resampling as depthwise
convolutions, skip G, 'orig' D). The step is gan_jax's too: non-saturating loss,
Adam(2e-4, 0.5, 0.999), a D step on a real batch and G(z1).detach(), then a G
step on a fresh G(z2) through D. Spectral norm runs one power iteration per
training forward, as gan_jax's SpectralNorm. Initialisation is PyTorch's
default: it does not change what a step costs. NCHW throughout,
PyTorch's native layout. Benchmark-only: torch is never needed to train.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize

from experiments import stylegan2_ada


class SpectralNorm(nn.Module):
    """W / sigma(W) as a parametrization, computed as gan_jax's SpectralNorm.

    Not torch.nn.utils.parametrizations.spectral_norm: that one writes its u, v
    buffers in place, and under torch.compile a D called twice before one
    backward (real, then fake) overwrites vectors saved for the first call's
    backward (a RuntimeError in the ResNet's D step). Here each iteration binds
    new tensors. The iteration is gan_jax's, from the stored u (size out):
    v = W^T u, u = W v, sigma = u^T W v, the gradient flowing through sigma's
    dependence on W only (PyTorch's starts from v, half an iteration apart).
    """

    def __init__(self, weight, eps=1e-12):
        super().__init__()
        self.eps = eps
        u = F.normalize(torch.randn(weight.shape[0]), dim=0, eps=eps)
        self.register_buffer('u', u)
        self.register_buffer('v', F.normalize(weight.detach().flatten(1).T @ u, dim=0, eps=eps))

    def forward(self, weight):
        matrix = weight.flatten(1)  # [out, in*kh*kw]: gan_jax's [kh*kw*in, out], transposed.
        if self.training:
            with torch.no_grad():
                v = F.normalize(matrix.T @ self.u, dim=0, eps=self.eps)
                self.u, self.v = F.normalize(matrix @ v, dim=0, eps=self.eps), v
        return weight / torch.vdot(self.u, matrix @ self.v)


def spectral_norm(module):
    parametrize.register_parametrization(module, 'weight', SpectralNorm(module.weight))
    return module


class Grid(nn.Module):
    """G's input layer: a dense layer on z, viewed as a [B, features, size, size] grid."""

    def __init__(self, z_dim, features, size, bias):
        super().__init__()
        self.dense = nn.Linear(z_dim, size * size * features, bias=bias)
        self.shape = (features, size, size)

    def forward(self, z):
        return self.dense(z).view(-1, *self.shape)


def _bn_relu(features):
    return [nn.BatchNorm2d(features), nn.ReLU()]  # PyTorch's defaults, as gan_jax's BatchNorm.


def _logit(features, sn=False):
    """D's head (gan_jax's unconditional DiscriminatorHead): a dense layer to one logit [B]."""
    dense = nn.Linear(features, 1)
    return [spectral_norm(dense) if sn else dense, nn.Flatten(0)]  # [B, 1] -> [B].


def _base_grid(resolution):
    for base in (4, 7):
        ratio, rem = divmod(resolution, base)
        if rem == 0 and ratio >= 4 and ratio & (ratio - 1) == 0:
            return base, ratio.bit_length() - 1
    raise ValueError(f'unsupported resolution {resolution}')


def dcgan(channels, resolution, z_dim, width=64):
    """(G, D) of gan_jax.models.dcgan: 4x4 stride-2 (transposed) convs, no bias before BN."""
    base, n = _base_grid(resolution)
    features = width * 2 ** (n - 1)
    g = [Grid(z_dim, features, base, bias=False), *_bn_relu(features)]
    for _ in range(n - 1):
        g += [
            nn.ConvTranspose2d(features, features // 2, 4, 2, 1, bias=False),
            *_bn_relu(features // 2),
        ]
        features //= 2
    g += [nn.ConvTranspose2d(features, channels, 4, 2, 1), nn.Tanh()]
    d = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
    for i in range(1, n):
        d += [
            nn.Conv2d(width * 2 ** (i - 1), width * 2**i, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width * 2**i),
            nn.LeakyReLU(0.2),
        ]
    d += [nn.Flatten(), *_logit(base * base * width * 2 ** (n - 1))]
    return nn.Sequential(*g), nn.Sequential(*d)


# (channels as a multiple of the width, kernel, stride) of SN-DCGAN's D convolutions.
SNDCGAN_D_LAYERS = ((1, 3, 1), (1, 4, 2), (2, 3, 1), (2, 4, 2), (4, 3, 1), (4, 4, 2), (8, 3, 1))


def sndcgan(channels, resolution, z_dim, width=64):
    """(G, D) of gan_jax.models.sndcgan: every layer has a bias, spectral norm on all of D."""
    size = resolution // 8  # The paper's M_g: 4 at 32x32, 6 at 48x48.
    features = 8 * width
    g = [Grid(z_dim, features, size, bias=True), *_bn_relu(features)]
    for _ in range(3):
        g += [nn.ConvTranspose2d(features, features // 2, 4, 2, 1), *_bn_relu(features // 2)]
        features //= 2
    g += [nn.Conv2d(features, channels, 3, 1, 1), nn.Tanh()]
    d, features = [], channels
    for multiple, kernel, stride in SNDCGAN_D_LAYERS:
        d += [
            spectral_norm(nn.Conv2d(features, multiple * width, kernel, stride, 1)),
            nn.LeakyReLU(0.1),
        ]
        features = multiple * width
    d += [nn.Flatten(), *_logit(size * size * features, sn=True)]
    return nn.Sequential(*g), nn.Sequential(*d)


def _up(x):
    return F.interpolate(x, scale_factor=2, mode='nearest')


class GBlock(nn.Module):
    """BN-ReLU-up-conv3x3-BN-ReLU-conv3x3 plus a conv1x1-up shortcut (resnet.GBlock).

    The shortcut convolves before upsampling, as gan_jax (the same function at a
    quarter of the cost of the references' upsample-then-convolve).
    """

    def __init__(self, cin, cout):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, 1, 1)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1)
        self.shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = self.conv1(_up(F.relu(self.bn1(x))))
        h = self.conv2(F.relu(self.bn2(h)))
        return h + _up(self.shortcut(x))


class DBlock(nn.Module):
    """ReLU-conv3x3-ReLU-conv3x3[-avgpool] plus a shortcut, all with spectral norm (resnet.DBlock).

    The shortcut is a conv1x1 (then the same pooling) where the width changes or
    the block downsamples, else the identity. The optimised first block takes the
    image: no leading ReLU, conv1 already to the output width, and its shortcut
    pools before the conv1x1.
    """

    def __init__(self, cin, cout, downsample, optimised=False):
        super().__init__()
        hidden = cout if optimised else cin
        self.conv1 = spectral_norm(nn.Conv2d(cin, hidden, 3, 1, 1))
        self.conv2 = spectral_norm(nn.Conv2d(hidden, cout, 3, 1, 1))
        learnable = optimised or downsample or cin != cout
        self.shortcut = spectral_norm(nn.Conv2d(cin, cout, 1)) if learnable else None
        self.downsample, self.optimised = downsample, optimised

    def forward(self, x):
        h = self.conv2(F.relu(self.conv1(x if self.optimised else F.relu(x))))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        if self.optimised:
            return h + self.shortcut(F.avg_pool2d(x, 2))
        if self.shortcut is None:
            return h + x
        skip = self.shortcut(x)
        return h + (F.avg_pool2d(skip, 2) if self.downsample else skip)


class SumPool(nn.Module):
    def forward(self, x):
        return x.sum((2, 3))


def resnet(channels, resolution, z_dim, g_width=256, d_width=128):
    """(G, D) of gan_jax.models.resnet's 32x32 plan, as SNGAN's CIFAR ResNet.

    Unconditional, d_spectral_norm=True, d_pooling='sum': G goes 4x4 -> 32 in
    three up blocks of g_width; D has four blocks of d_width, the first two
    downsampling (32 -> 8), then ReLU, a global sum and the logit.
    """
    if resolution != 32:
        raise ValueError(f'only the 32x32 ResNet plan is mirrored, not {resolution}')
    g = nn.Sequential(
        Grid(z_dim, g_width, 4, bias=True),
        *(GBlock(g_width, g_width) for _ in range(3)),
        *_bn_relu(g_width),
        nn.Conv2d(g_width, channels, 3, 1, 1),
        nn.Tanh(),
    )
    blocks = (
        DBlock(d_width if i else channels, d_width, downsample=i < 2, optimised=i == 0)
        for i in range(4)
    )
    d = nn.Sequential(*blocks, nn.ReLU(), SumPool(), *_logit(d_width, sn=True))
    return g, d


SQRT2 = 2**0.5


def _fir(x, up=1, down=1, pad=(0, 0), gain=1.0, taps=(1.0, 3.0, 3.0, 1.0)):
    """upfirdn2d of NCHW x (gan_jax.models.upfirdn): zeros inserted, padded, the separable
    FIR filter as one depthwise convolution, every ``down``-th pixel."""
    n, c, h, w = x.shape
    f = torch.tensor(taps, device=x.device)
    f = torch.outer(f, f) / f.sum() ** 2 * gain
    if up > 1:
        x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    return F.conv2d(x, f.to(x.dtype).expand(c, 1, *f.shape), stride=down, groups=c)


def _act(x, clamp):
    return (F.leaky_relu(x, 0.2) * SQRT2).clamp(-clamp, clamp)


class EqualLinear(nn.Module):
    """gan_jax's stylegan2.FullyConnected: weights scaled by lr_multiplier / sqrt(fan_in)."""

    def __init__(self, fan_in, features, activation=False, lr_multiplier=1.0, bias_init=0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(features, fan_in) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([features], float(bias_init)))
        self.scale, self.lr_multiplier = lr_multiplier / fan_in**0.5, lr_multiplier
        self.activation = activation

    def forward(self, x):
        x = F.linear(x, self.weight * self.scale, self.bias * self.lr_multiplier)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.activation else x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution with demodulation (gan_jax's form: activations scaled
    around one shared convolution), optional 2x upsampling, noise, bias, leaky ReLU."""

    def __init__(self, cin, cout, w_dim, up, clamp):
        super().__init__()
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(cout, cin, 3, 3))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.up, self.clamp = up, clamp

    def forward(self, x, w):
        styles = self.affine(w)
        x = x * styles[:, :, None, None]
        if self.up == 2:  # Transposed convolution, then the filter (gain 4).
            x = _fir(
                F.conv_transpose2d(x, self.weight.transpose(0, 1), stride=2), pad=(1, 1), gain=4
            )
        else:
            x = F.conv2d(x, self.weight, padding=1)
        demod = torch.rsqrt(styles.square() @ self.weight.square().sum((2, 3)).T + 1e-8)
        x = x * demod[:, :, None, None]
        noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device)
        return _act(x + noise * self.noise_strength + self.bias[:, None, None], self.clamp)


class ToRGB(nn.Module):
    def __init__(self, cin, channels, w_dim, clamp):
        super().__init__()
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(channels, cin, 1, 1))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.cin, self.clamp = cin, clamp

    def forward(self, x, w):
        styles = self.affine(w) / self.cin**0.5
        x = F.conv2d(x * styles[:, :, None, None], self.weight)
        return (x + self.bias[:, None, None]).clamp(-self.clamp, self.clamp)


class StyleGAN2G(nn.Module):
    """gan_jax's StyleGAN2Generator, unconditional: mapping (z normalised, fully connected
    layers at lr multiplier 0.01, tracked w average), constant input, skip synthesis."""

    def __init__(self, channels, resolution, z_dim, w_dim, width, mapping_layers, clamp):
        super().__init__()
        self.mapping = nn.ModuleList(
            EqualLinear(z_dim if i == 0 else w_dim, w_dim, True, 0.01)
            for i in range(mapping_layers)
        )
        self.register_buffer('w_avg', torch.zeros(w_dim))
        self.const = nn.Parameter(torch.randn(width, 4, 4))
        self.resolutions = [2**i for i in range(2, resolution.bit_length())]
        self.convs = nn.ModuleList(
            SynthesisLayer(width, width, w_dim, 2 if r > 4 and j == 0 else 1, clamp)
            for r in self.resolutions
            for j in range(1 if r == 4 else 2)
        )
        self.torgbs = nn.ModuleList(ToRGB(width, channels, w_dim, clamp) for _ in self.resolutions)

    def forward(self, z):
        w = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)
        for layer in self.mapping:
            w = layer(w)
        if self.training:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().mean(0).lerp(self.w_avg, 0.995))
        x = self.const.expand(z.shape[0], *self.const.shape)
        img, convs = None, iter(self.convs)
        for r, torgb in zip(self.resolutions, self.torgbs):
            for _ in range(1 if r == 4 else 2):
                x = next(convs)(x, w)
            y = torgb(x, w)
            img = y if img is None else _fir(img, up=2, pad=(2, 1), gain=4) + y
        return img


class EqualConv(nn.Module):
    """gan_jax's stylegan2.Conv2d: weights scaled by 1 / sqrt(fan_in), optional FIR
    downsampling (the filter, then a stride-2 convolution), leaky ReLU, clamp."""

    def __init__(self, cin, cout, kernel, down=1, clamp=None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale, self.down, self.clamp = (cin * kernel**2) ** -0.5, down, clamp

    def forward(self, x):
        k = self.weight.shape[-1]
        if self.down == 2:
            x = F.conv2d(_fir(x, pad=(k // 2 + 1, k // 2 + 1)), self.weight * self.scale, stride=2)
        else:
            x = F.conv2d(x, self.weight * self.scale, padding=k // 2)
        return _act(x + self.bias[:, None, None], self.clamp)


class StyleGAN2D(nn.Module):
    """gan_jax's StyleGAN2Discriminator, 'orig', unconditional: fromRGB, two 3x3
    convolutions per resolution (the second downsampling), minibatch stddev over
    consecutive groups, a 3x3 convolution and two fully connected layers at 4x4."""

    def __init__(self, channels, resolution, width, group_size, clamp):
        super().__init__()
        blocks = [EqualConv(channels, width, 1, clamp=clamp)]
        while resolution > 4:
            blocks += [
                EqualConv(width, width, 3, clamp=clamp),
                EqualConv(width, width, 3, 2, clamp),
            ]
            resolution //= 2
        self.blocks = nn.Sequential(*blocks)
        self.conv = EqualConv(width + 1, width, 3, clamp=clamp)
        self.fc = EqualLinear(width * 16, width, activation=True)
        self.out = EqualLinear(width, 1)
        self.group_size = group_size

    def forward(self, img):
        x = self.blocks(img)
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        y = x.reshape(n // g, g, c, h, w)
        y = (y - y.mean(1, keepdim=True)).square().mean(1).add(1e-8).sqrt().mean((1, 2, 3))
        y = y.reshape(-1, 1, 1, 1, 1).expand(n // g, g, 1, h, w).reshape(n, 1, h, w)
        x = self.conv(torch.cat([x, y], 1))
        return self.out(self.fc(x.flatten(1)))[:, 0]


def stylegan2(channels, resolution, z_dim, width=512):
    """(G, D) of experiments/stylegan2_ada.py:cifar10 (the official cfg=cifar), with its
    w_dim, mapping layers, mbstd group size and conv_clamp: ``width`` feature maps at every
    resolution (the preset's 512 at 32x32), skip G, D 'orig'."""
    model = stylegan2_ada.get_config('cifar10').model
    clamp = model.conv_clamp
    return (
        StyleGAN2G(channels, resolution, z_dim, model.w_dim, width, model.mapping_layers, clamp),
        StyleGAN2D(channels, resolution, width, model.mbstd_group_size, clamp),
    )


class Preset(NamedTuple):
    channels: int
    resolution: int
    z_dim: int
    models: Callable  # (channels, resolution, z_dim) -> (G, D).


PRESETS = {
    'dcgan32': Preset(3, 32, 100, dcgan),
    'dcgan64': Preset(3, 64, 100, dcgan),
    'sndcgan32': Preset(3, 32, 128, sndcgan),
    'resnet32': Preset(3, 32, 128, resnet),
    'stylegan2_32': Preset(3, 32, 512, stylegan2),
}


def count_params(module):
    return sum(p.numel() for p in module.parameters())


def make_step(preset, batch, compile_models=False, device='cpu'):
    """(step(real_uint8_nchw), G, D) for a name in PRESETS; a call is one D step, then one G step.

    Models, optimiser state and latents live on ``device`` ('cpu' or 'cuda').
    """
    torch.manual_seed(0)
    channels, resolution, z_dim, models = PRESETS[preset]
    g, d = (model.to(device) for model in models(channels, resolution, z_dim))
    g_opt = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    # Each preset and batch size (and D with and without weight gradients) is a
    # new graph of the same Module code: allow more than the default 8 of them.
    torch._dynamo.config.recompile_limit = 64
    g_run, d_run = (torch.compile(g), torch.compile(d)) if compile_models else (g, d)

    def step(real_uint8):
        real = real_uint8.float() / 127.5 - 1.0
        return d_then_g_steps(
            d_run, d_opt, g_opt, real, lambda: g_run(torch.randn(batch, z_dim, device=device))
        )

    return step, g, d


def d_then_g_steps(d, d_opt, g_opt, real, make_fakes, g_steps=1):
    """One D step on ``real`` and ``make_fakes()`` (detached), then ``g_steps`` G steps on
    fresh fakes through D, non-saturating loss; as the JAX step, no D weight gradients
    in a G step. Returns the last (D loss, G loss)."""
    d_loss = F.softplus(-d(real)).mean() + F.softplus(d(make_fakes().detach())).mean()
    d_opt.zero_grad(set_to_none=True)
    d_loss.backward()
    d_opt.step()
    d.requires_grad_(False)
    for _ in range(g_steps):
        g_loss = F.softplus(-d(make_fakes())).mean()
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
    d.requires_grad_(True)
    return d_loss.detach(), g_loss.detach()


class Maxout(nn.Module):
    """``features`` maxout units of ``pieces`` contiguous linear pieces (Blocks' LinearMaxout)."""

    def __init__(self, in_features, features, pieces):
        super().__init__()
        self.linear = nn.Linear(in_features, features * pieces)
        self.features, self.pieces = features, pieces

    def forward(self, x):
        return self.linear(x).view(x.shape[0], self.features, self.pieces).amax(-1)


def pacgan_2d(pack):
    """PacGAN's 2-D networks (fjxmlzn/PacGAN, pacgan_task.py): the parameter counts of
    gan_jax's ``experiments/pacgan.py:ring`` (G 484,802; D 2000 pack + 403,201)."""
    layers = []
    for fan_in in (2, 400, 400, 400):
        layers += [nn.Linear(fan_in, 400, bias=False), nn.BatchNorm1d(400, eps=1e-4), nn.ReLU()]
    g = nn.Sequential(*layers, nn.Linear(400, 2))
    d = nn.Sequential(
        Maxout(2 * pack, 200, 5), Maxout(200, 200, 5), Maxout(200, 200, 5), nn.Linear(200, 1)
    )
    return g, d


def make_pacgan_2d_step(pack, batch=100):
    """(step(real_packed), G, D): the authors' update, one D and one G step from the same
    parameters on the same fakes (ALI's algorithm), G called once per packing slot.

    ``real_packed`` is [batch, 2 pack]; Adam(1e-4, betas (0.2, 0.999)) for both, as the preset.
    """
    torch.manual_seed(0)
    g, d = pacgan_2d(pack)
    g_opt = torch.optim.Adam(g.parameters(), 1e-4, betas=(0.2, 0.999))
    d_opt = torch.optim.Adam(d.parameters(), 1e-4, betas=(0.2, 0.999))
    g_params, d_params = list(g.parameters()), list(d.parameters())

    def step(real):
        fake = torch.cat([g(torch.randn(batch, 2)) for _ in range(pack)], dim=1)
        d_fake = d(fake)
        d_loss = F.softplus(-d(real)).mean() + F.softplus(d_fake).mean()
        g_loss = F.softplus(-d_fake).mean()
        d_grads = torch.autograd.grad(d_loss, d_params, retain_graph=True)
        g_grads = torch.autograd.grad(g_loss, g_params)
        for params, grads in ((d_params, d_grads), (g_params, g_grads)):
            for p, grad in zip(params, grads):
                p.grad = grad
        d_opt.step()
        g_opt.step()
        return d_loss.detach(), g_loss.detach()

    return step, g, d


def _tf_dcgan_generator(z_dim, channels, widths, kernel, output_conv, base):
    """gan_jax.models.tf_dcgan's G: every layer with a bias; stride-2 transposed
    convolutions with paddings that give TF 'SAME''s grids (2 -> 4 -> 7 -> 14 -> 28 with
    5x5 kernels, 4 -> 7 -> 14 -> 28 with 3x3)."""
    g = [Grid(z_dim, widths[0], base, bias=True), *_bn_relu(widths[0])]
    outs = widths[1:] if output_conv else (*widths[1:], channels)
    size = base
    for i, (cin, cout) in enumerate(zip(widths, outs)):
        target = {2: 4, 4: 7, 7: 14, 14: 28}[size]
        output_padding = target - ((size - 1) * 2 - 2 * (kernel // 2) + kernel)
        g.append(nn.ConvTranspose2d(cin, cout, kernel, 2, kernel // 2, output_padding))
        g += _bn_relu(cout) if i < len(outs) - 1 or output_conv else [nn.Tanh()]
        size = target
    if output_conv:
        g += [nn.Conv2d(widths[-1], channels, kernel, 1, kernel // 2), nn.Tanh()]
    return nn.Sequential(*g)


def _tf_dcgan_discriminator(in_channels, widths, kernel, leak, batch_norm_first):
    """gan_jax.models.tf_dcgan's D on 28x28: stride-2 convolutions (28 -> 14 -> 7 -> 4 -> 2),
    BatchNorm (not after the first unless ``batch_norm_first``), leaky ReLU, Linear(1)."""
    d, size = [], 28
    for i, (cin, cout) in enumerate(zip((in_channels, *widths), widths)):
        d.append(nn.Conv2d(cin, cout, kernel, 2, kernel // 2))
        d += [nn.BatchNorm2d(cout)] if i > 0 or batch_norm_first else []
        d.append(nn.LeakyReLU(leak))
        size = -(-size // 2)
    return nn.Sequential(*d, nn.Flatten(), *_logit(size * size * widths[-1]))


def stacked_mnist_networks(config):
    """(G, D) of a Stacked MNIST preset's ``config`` (experiments/pacgan.py and
    unrolled_gan.py: ``model.name`` 'veegan_dcgan' or 'unrolled_dcgan'), D's input
    ``train.pack`` x 3 channels."""
    m, channels = config.model, 3
    g_widths = tuple(m.g_width * k for k in (8, 4, 2, 1))
    if m.name == 'veegan_dcgan':
        g = _tf_dcgan_generator(m.z_dim, channels, g_widths, 5, False, base=2)
        d_widths = tuple(m.d_width * k for k in (1, 2, 4, 8))
        d = _tf_dcgan_discriminator(channels * config.train.pack, d_widths, 5, 0.2, False)
    elif m.name == 'unrolled_dcgan':
        g = _tf_dcgan_generator(m.z_dim, channels, g_widths, 3, True, base=4)
        d_widths = tuple(m.d_width * k for k in (1, 2, 4))
        d = _tf_dcgan_discriminator(channels * config.train.pack, d_widths, 3, 0.3, True)
    else:
        raise ValueError(f"model.name={m.name!r}: not 'veegan_dcgan' or 'unrolled_dcgan'.")
    return g, d


def make_stacked_mnist_step(config):
    """(step(real [packed batch, pack x 3, 28, 28] in [-1, 1]), G, D): a Stacked MNIST
    preset's update: one D step, then ``train.g_steps`` G steps, non-saturating loss,
    Adam with the preset's rates and betas, z as ``model.z_distribution`` (one draw for
    all of a step's updates with ``train.shared_latents``), D reading real images in
    [0, 1] with ``model.unit_range_images``; G runs once per packing slot, as in the
    authors' code."""
    torch.manual_seed(0)
    g, d = stacked_mnist_networks(config)
    o, pack = config.optim, config.train.pack
    g_opt = torch.optim.Adam(g.parameters(), o.g_lr, betas=(o.b1, o.b2))
    d_opt = torch.optim.Adam(d.parameters(), o.d_lr, betas=(o.b1, o.b2))
    batch, z_dim = config.train.batch_size // pack, config.model.z_dim

    def latents():
        if config.model.z_distribution == 'uniform':
            return [torch.rand(batch, z_dim) * 2 - 1 for _ in range(pack)]
        return [torch.randn(batch, z_dim) for _ in range(pack)]

    def step(real):
        if config.model.unit_range_images:
            real = (real + 1) / 2
        shared = latents()

        def fakes():
            zs = shared if config.train.shared_latents else latents()
            return torch.cat([g(z) for z in zs], dim=1)

        return d_then_g_steps(d, d_opt, g_opt, real, fakes, config.train.g_steps)

    return step, g, d
