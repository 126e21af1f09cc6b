"""The DCGAN train step of gan_jax, written in plain PyTorch, for side-by-side timing.

Same architecture as gan_jax.models.dcgan (same parameter count, checked by
benchmarks/train_step.py), same non-saturating loss, Adam(2e-4, 0.5, 0.999) and
the same step structure: a D step on a real batch and G(z1).detach(), then a G
step on a fresh G(z2) through D. Benchmark-only: torch is never needed to train.
"""

import torch
from torch import nn
from torch.nn import functional as F


def _base_grid(resolution):
    for base in (4, 7):
        ratio, rem = divmod(resolution, base)
        if rem == 0 and ratio >= 4 and ratio & (ratio - 1) == 0:
            return base, ratio.bit_length() - 1
    raise ValueError(f'unsupported resolution {resolution}')


class Generator(nn.Module):
    def __init__(self, resolution, channels, width, z_dim):
        super().__init__()
        self.base, n = _base_grid(resolution)
        self.features = width * 2 ** (n - 1)
        self.project = nn.Linear(z_dim, self.base * self.base * self.features, bias=False)
        layers = [nn.BatchNorm2d(self.features), nn.ReLU()]
        features = self.features
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(features, features // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(features // 2), nn.ReLU()]
            features //= 2
        layers += [nn.ConvTranspose2d(features, channels, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z):
        x = self.project(z).view(-1, self.features, self.base, self.base)
        return self.body(x)


class Discriminator(nn.Module):
    def __init__(self, resolution, channels, width):
        super().__init__()
        base, n = _base_grid(resolution)
        layers = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        for i in range(1, n):
            layers += [nn.Conv2d(width * 2 ** (i - 1), width * 2 ** i, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width * 2 ** i), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(base * base * width * 2 ** (n - 1), 1)

    def forward(self, x):
        return self.head(self.body(x).flatten(1))[:, 0]


def count_params(module):
    return sum(p.numel() for p in module.parameters())


def make_step(resolution, channels, width, z_dim, batch, compile_models=False):
    """Returns (step(real_uint8_nchw), G, D); one call is one D step and one G step."""
    torch.manual_seed(0)
    g = Generator(resolution, channels, width, z_dim)
    d = Discriminator(resolution, channels, width)
    g_opt = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    g_run, d_run = (torch.compile(g), torch.compile(d)) if compile_models else (g, d)

    def step(real_uint8):
        real = real_uint8.float() / 127.5 - 1.0
        fake = g_run(torch.randn(batch, z_dim)).detach()
        d_loss = F.softplus(-d_run(real)).mean() + F.softplus(d_run(fake)).mean()
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        d.requires_grad_(False)  # As the JAX step: no D weight gradients in the G step.
        g_loss = F.softplus(-d_run(g_run(torch.randn(batch, z_dim)))).mean()
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        d.requires_grad_(True)
        return d_loss.detach(), g_loss.detach()

    return step, g, d
