"""PacGAN (Lin, Khetan, Fanti & Oh, NeurIPS 2018, arXiv:1712.04086): D judges m samples at once.

D sees m samples concatenated (``train.pack``; m = 2, PacGAN2, in every variant
here but the ``*_dcgan`` ones, the unpacked baseline, m = 1; --config.train.pack=1
is the unpacked GAN baseline, 3 and 4 the paper's PacGAN3/4, with
``train.batch_size`` scaled to match). ``train.batch_size`` counts samples, so the packed D batch is
batch_size / m. Loss: the non-saturating GAN loss. Settings from the authors'
code (fjxmlzn/PacGAN).

Variants (``experiments/pacgan.py:<variant>``):
  ring, grid   The 2-D mixtures, as the authors' Blocks code has them
               (synthetic_data_experiments/2DRing_GAN&PacGAN and 2DGrid_GAN&PacGAN,
               config.py and pacgan_task.py; the ring's and grid's task files are
               identical): z ~ N(0, I) of 2; G 4 hidden layers of 400 units, each
               Dense without bias -> BatchNorm (per packing slot, epsilon 1e-4,
               running mean and stdev with momentum 0.95) -> ReLU, then Dense(2)
               with bias; D 3 layers of 200 maxout units of 5 pieces, then
               Dense(1); kernels N(0, 0.02), biases 0; non-saturating loss; one D
               and one G step per iteration from the same parameters
               (train.simultaneous, ALI's algorithm); Adam lr 1e-4, b1 0.2 (their
               beta1 = 0.8 in old Blocks' convention, below), b2 0.999, eps
               1e-8; 100 packed D inputs per batch (100 m samples);
               400 epochs of 1,000 iterations = 400k steps; 2,500 samples from
               fixed latents, BatchNorm in inference mode, a mode captured by one
               sample within 3 std, evaluated every 5,000 steps (the authors: every
               epoch). G 484,802 and D 2000 m + 403,201 parameters. Published
               (Table 1, 10 runs, mean +- standard error), PacGAN2: ring 7.9 +- 0.1
               modes of 8, 95.6 +- 2.0% high-quality samples, reverse KL 0.07 +-
               0.03; grid 23.8 +- 0.7 modes of 25, 91.3 +- 0.8%, reverse KL 0.13 +-
               0.04 (GAN, PacGAN3 and PacGAN4 in reproduce.py's table).
  stacked_mnist, stacked_mnist_dcgan
               Stacked MNIST at 28x28 in the VEEGAN setting, PacDCGAN2 and the
               unpacked DCGAN (stacked_MNIST_experiments/VEEGAN_experiment,
               config.py and model.py; model 'veegan_dcgan'): G Linear(100 ->
               2x2x512), 5x5 stride-2 transposed convolutions to 256, 128, 64
               channels (BatchNorm, ReLU) and 3 (tanh); D 5x5 stride-2 convolutions
               of 64, 128, 256, 512 channels (BatchNorm after all but the first),
               leaky ReLU 0.2, Linear(1); G 4,514,819 and D 4,305,601 + 4,800 m
               parameters; z ~ U[-1, 1] of 100; one D and then two G updates per
               step (train.g_steps), all three on the same latents
               (train.shared_latents); D reads real images in [0, 1] and G's tanh
               as it is (model.unit_range_images: the code divides the images by
               255 and keeps G's tanh; evaluation takes the tanh in [0, 1]);
               64 packed D inputs per batch; Adam lr 2e-4
               with betas (0.5, 0.999); 50 epochs of 128k stacks = 100k steps.
               Published (Table 2, 10 runs): PacDCGAN2 1000.0 +- 0.00 modes of
               1000, KL 0.06 +- 0.003; DCGAN 78.9 +- 6.46 modes, KL 4.50 +- 0.127;
               from 26,000 samples.
  stacked_mnist_d_quarter, stacked_mnist_d_quarter_dcgan,
  stacked_mnist_d_half, stacked_mnist_d_half_dcgan
               Stacked MNIST with D a quarter (half) of G's width, PacDCGAN2 and
               DCGAN: the networks and settings of the Unrolled GAN replication
               (stacked_MNIST_experiments/unrolled_GAN_experiment/D=0.25G and
               D=0.5G, see experiments/unrolled_gan.py), one D and one G update
               per step, 128 packed D inputs per batch, 500k steps. Published
               (Table 3, 50 runs, from 25,600 samples): D=1/4 G, PacDCGAN2 484.5 +-
               32.99 modes, KL 2.61 +- 0.22; DCGAN 78.5 +- 17.56, KL 5.21 +- 0.19;
               D=1/2 G, PacDCGAN2 840.7 +- 15.92, KL 1.00 +- 0.05; DCGAN 487.7 +-
               34.59, KL 2.24 +- 0.15.
  smoke        ring shrunk to three CPU steps.

Not matched in the 2-D runs: the authors resample the 100k-point set with
replacement once per packing slot, so their 100k packed rows keep the same m
points together for the whole run (the rows reshuffled every epoch); here
(``data.on_device``) every sample of every packed input is drawn uniformly with
replacement from the 100k points at each step, so each slot is drawn
independently with replacement as theirs is, but the m points of a row change
every step. Their reverse KL is not in their code;
gan_jax's is KL(p || uniform) of the high-quality samples' nearest modes.
Before each epoch's evaluation their training-set monitoring moves G's
running statistics 50 more times (here not; G with batch statistics gives
the same mode counts at the last checkpoints of ring / PacGAN4 seed 0:
reproductions/batchnorm_check.py).
Adam's b1 = 0.2 is the authors' Blocks ``beta1=0.8`` read as the weight of the
new gradient, as Blocks had it until its commit aa06451 (2017-01-24; since then
it is the first moment's decay, as in the paper and optax). The value comes with
the networks from ALI's ``experiments/gan_mixture.py`` (IshmaelBelghazi/ALI,
2016-06-01, BETA1 = 0.8 and these exact G and D), written under that older
convention (ALI's paper writes its Adam's beta2 as 10^-3, that convention's
0.999), so 0.8 was chosen to mean b1 = 0.2. PacGAN's code (first commit
2018-01-28) asks for Blocks' development version without pinning it, so which
reading its authors ran is not recorded. With b1 = 0.8 (this preset until
2026-12-07, reproductions/pacgan_table1_b1_0.8) ring / PacGAN3 and PacGAN4
seed 0 lost three and two of 8 modes late, fewer than the unpacked GAN's one:
the paper's contrast reversed; with b1 = 0.2 they keep all 8 and every seed-0
cell run with both readings agrees with the published table
(reproductions/ablation_adam_b1_0.2).
In the Stacked MNIST runs: the authors run G once per packing slot, so its
BatchNorm normalises each slot's 64 (128) samples apart, as here, and each
slot's call moves the running statistics by a tenth in turn (here they move a
tenth of the way to the slots' average); the VEEGAN-setting code walks its
randomly stacked set in the same order every epoch, as here
(``data.reshuffle_each_epoch=False``: the run's one seeded permutation of the
stacks), but draws a new set for every run (here the same 128,000 stacks for
every seed, ordered by the seed), and its classifier reads G's tanh unclipped
(here clipped to [0, 1], as a saved image is).
"""

from experiments import common, unrolled_gan

PACK = 2


def mixture_2d(c, source, pack):
    """PacGAN's 2-D networks and training on ``source`` with ``pack`` samples per D input."""
    c.data.source = source
    c.model.name = 'mlp'
    c.model.z_dim = 2
    c.model.g_width, c.model.g_depth, c.model.g_batch_norm = 400, 4, True
    c.model.d_width, c.model.d_depth, c.model.d_maxout_pieces = 200, 3, 5
    c.model.weight_init = 'N02'
    c.train.pack = pack
    c.train.batch_size = 100 * pack
    c.train.simultaneous = True
    c.optim.g_lr = c.optim.d_lr = 1e-4
    c.optim.b1, c.optim.b2 = 0.2, 0.999  # Blocks' beta1=0.8 before 2017: see the notes.
    common.long_run(c, 400_000)
    common.mode_eval(c, num_samples=2500, every_steps=5000)
    # Speed: the points are drawn on the device, 100 updates per compiled call.
    c.data.on_device = True
    c.train.steps_per_call = 100
    c.log.every_steps = 1000


def _mixture(source):
    return lambda c: mixture_2d(c, source, PACK)


def _veegan_stacked_mnist(pack):
    def variant(c):
        c.data.source = 'stacked_mnist'
        c.data.resolution = 28
        c.model.name = 'veegan_dcgan'
        c.model.g_width = c.model.d_width = 64
        c.model.z_dim = 100
        c.model.z_distribution = 'uniform'
        c.model.unit_range_images = True  # D reads reals in [0, 1] against G's tanh.
        c.train.g_steps = 2
        c.train.shared_latents = True  # One latent batch for the D and both G updates.
        c.data.reshuffle_each_epoch = False  # Their fixed stacks walked in order.
        c.train.pack = pack
        c.train.batch_size = 64 * pack
        c.optim.g_lr = c.optim.d_lr = 2e-4
        c.optim.b1, c.optim.b2 = 0.5, 0.999
        common.long_run(c, 100_000)
        common.mode_eval(c, num_samples=26_000, every_steps=10_000)

    return variant


def _replication_stacked_mnist(d_width, pack):
    return lambda c: unrolled_gan.replication_stacked_mnist(c, d_width, pack)


VARIANTS = {
    'ring': _mixture('ring'),
    'grid': _mixture('grid'),
    'stacked_mnist': _veegan_stacked_mnist(PACK),
    'stacked_mnist_dcgan': _veegan_stacked_mnist(1),
    'stacked_mnist_d_quarter': _replication_stacked_mnist(2, PACK),
    'stacked_mnist_d_quarter_dcgan': _replication_stacked_mnist(2, 1),
    'stacked_mnist_d_half': _replication_stacked_mnist(4, PACK),
    'stacked_mnist_d_half_dcgan': _replication_stacked_mnist(4, 1),
}


def get_config(arg=None):
    return common.select('pacgan', arg, VARIANTS)
