"""PacGAN (Lin, Khetan, Fanti & Oh, NeurIPS 2018, arXiv:1712.04086): D judges m samples at once.

D sees m samples concatenated (``train.pack``; m = 2, PacGAN2, in every variant
here; --config.train.pack=1 is the unpacked GAN baseline, 3 and 4 the paper's
PacGAN3/4). ``train.batch_size`` counts samples, so the packed D batch is
batch_size / m. Loss: the non-saturating GAN loss. Settings from the authors'
code (fjxmlzn/PacGAN).

Variants (``experiments/pacgan.py:<variant>``):
  ring, grid   The 2-D mixtures (synthetic_data_experiments/2DRing_GAN&PacGAN and
               2DGrid_GAN&PacGAN, config.py and pacgan_task.py): z of 2, G 4
               hidden layers of 400 units, D 3 hidden layers of 200, Adam lr 1e-4
               with betas (0.8, 0.999), 100 packed D inputs per batch, 400 epochs
               of 100k points = 400k steps; modes counted on 2,500 samples within
               3 std of a mode. Published (Table 1, PacGAN2, 10 runs): ring 7.9
               +- 0.1 modes of 8, 95.6 +- 2.0% high-quality samples, reverse KL
               0.07 +- 0.03; grid 23.8 +- 0.7 modes of 25, 91.3 +- 0.8%, reverse KL
               0.13 +- 0.04.
  stacked_mnist
               Stacked MNIST at 28x28 in the VEEGAN setting (stacked_MNIST_experiments/
               VEEGAN_experiment, config.py and model.py): DCGAN of width 64, z of
               100, 64 packed D inputs per batch, Adam lr 2e-4 with betas (0.5,
               0.999), 50 epochs of 128k stacks = 100k steps. Published (Table 2,
               PacDCGAN2, 10 runs): 1000.0 +- 0.00 modes of 1000, KL 0.06 +- 0.003,
               from 26,000 samples.
  stacked_mnist_d_quarter
               Stacked MNIST with D a quarter of G (the unrolled GAN's setting,
               experiments/unrolled_gan.py). Published (Table 3, PacDCGAN2, 50
               runs): 484.5 +- 32.99 modes, KL 2.61 +- 0.22, from 25,600 samples.
  smoke        ring shrunk to three CPU steps.

Not matched: the 2-D G's BatchNorm and D's maxout units (5 pieces), and their
N(0, 0.02) init (gan_jax's MLP: ReLU, Flax's init, no BatchNorm); the VEEGAN
run's two G updates per D update, uniform z and 4-layer 5x5-kernel networks
(gan_jax's 28x28 DCGAN has 2 layers of 4x4 kernels in each network); PacGAN
redraws each packed slot from the data with replacement, here a packed input
is m consecutive examples of the shuffled set.
"""

from experiments import common, unrolled_gan

PACK = 2


def _mixture(source):
    def variant(c):
        c.data.source = source
        c.model.name = 'mlp'
        c.model.z_dim = 2
        c.model.g_width, c.model.g_depth = 400, 4
        c.model.d_width, c.model.d_depth = 200, 3
        c.train.pack = PACK
        c.train.batch_size = 100 * PACK
        c.optim.g_lr = c.optim.d_lr = 1e-4
        c.optim.b1, c.optim.b2 = 0.8, 0.999
        common.long_run(c, 400_000)
        common.mode_eval(c, num_samples=2500, every_steps=10_000)
    return variant


def _stacked_mnist(c):
    c.data.source = 'stacked_mnist'
    c.data.resolution = 28
    c.model.name = 'dcgan'
    c.model.g_width = c.model.d_width = 64
    c.train.pack = PACK
    c.train.batch_size = 64 * PACK
    c.optim.g_lr = c.optim.d_lr = 2e-4
    c.optim.b1, c.optim.b2 = 0.5, 0.999
    common.long_run(c, 100_000)
    common.mode_eval(c, num_samples=26_000, every_steps=10_000)


def _stacked_mnist_d_quarter(c):
    unrolled_gan.replication_stacked_mnist(c, d_width=4)
    c.train.pack = PACK
    c.train.batch_size *= PACK


VARIANTS = {'ring': _mixture('ring'), 'grid': _mixture('grid'),
            'stacked_mnist': _stacked_mnist,
            'stacked_mnist_d_quarter': _stacked_mnist_d_quarter}


def get_config(arg=None):
    return common.select('pacgan', arg, VARIANTS)
