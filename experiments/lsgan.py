"""LSGAN (Mao et al., ICCV 2017, arXiv:1611.04076): least squares instead of cross-entropy.

D minimises 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2] and G 1/2 E[(D(G(z)) - 1)^2]
(the paper's 0-1 coding a=0, b=c=1).

Variants (``experiments/lsgan.py:<variant>``):
  ring   The paper's stability comparison on a 2-D ring of Gaussians, with the
         authors' script (xudonmao/LSGAN, stability_comparison/mixture_gaussian/
         ls.py, built on the unrolled GAN demo): MLPs of 2 hidden layers of 128
         tanh units with orthogonal kernels of gain 1.4, D and G stepping
         simultaneously, z of 256, batch 512, Adam with betas (0.5, 0.999), lr 1e-4 for D
         and 1e-3 for G, 35k steps; data: a ring of radius 1 and std 0.01, which
         is PacGAN's ring. Published: qualitative (LSGAN spreads over the modes
         where the regular GAN collapses onto one); no score. Evaluated by mode
         counts on 2,500 samples. --config.train.loss=non_saturating gives the
         regular GAN of the comparison.
  smoke  ring shrunk to three CPU steps.

The paper's LSUN scenes (112x112, its own VGG-like networks) are not available:
gan_jax has no model at that resolution.

Not matched: its ring puts
the 9 components of linspace(0, 2 pi, 9) on 8 points, so one mode has twice the
weight (here all 8 are equally likely); its losses sum over the batch, here they
average (Adam makes the two nearly equal).
"""

from experiments import common, unrolled_gan


def _ring(c):
    unrolled_gan.demo_ring(c)
    c.train.loss = 'least_squares'
    c.train.steps = 35_000


VARIANTS = {'ring': _ring}


def get_config(arg=None):
    return common.select('lsgan', arg, VARIANTS)
