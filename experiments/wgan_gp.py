"""WGAN-GP (Gulrajani et al., NeurIPS 2017, arXiv:1704.00028): the unconditional CIFAR-10 ResNet.

Published: Inception score 7.86 +- .07 on CIFAR-10, unsupervised (Table 3), the
mean over 10 splits of 50k samples (the authors' script scores 50k samples).

Settings from the authors' script (igul222/improved_wgan_training,
gan_cifar_resnet.py) with CONDITIONAL=False: the script's defaults are the
conditional ACGAN run (CONDITIONAL=True, ACGAN=True, Table 3's supervised 8.42),
which this preset does not train. Wasserstein loss, gradient penalty 10 on random
interpolates of each critic batch's reals and fakes, 5 critic updates per
generator update, Adam lr 2e-4 with betas (0, 0.9) for both, linearly decayed to
0 over the 100k generator updates (DECAY=True), critic batch 64 and 128 fakes per
generator step (GEN_BS_MULTIPLE=2). Networks: the ResNet of gan_jax.models.resnet
at 32x32 with 128 channels (DIM_G=DIM_D=128), z of 128, BatchNorm in G, no
normalisation in the critic (NORMALIZATION_D=False), mean pooling.

Variants (``experiments/wgan_gp.py:<variant>``):
  cifar10_resnet  The run above, CIFAR-10 through TFDS.
  smoke           cifar10_resnet shrunk to three CPU steps on offline data.

Evaluation: Inception score (50k samples, 10 splits) and FID every 5k steps
(the script scores every 1k).
"""

from experiments import common


def _cifar10_resnet(c):
    common.resnet_cifar_training(c)
    c.model.g_width = c.model.d_width = 128
    c.model.d_spectral_norm = False
    c.model.d_pooling = 'mean'
    c.train.loss = 'wasserstein'
    c.reg.penalty = 'wgan_gp'
    c.reg.penalty_weight = 10.0
    common.tfds_images(c, 'cifar10', 32)
    common.long_run(c, 100_000)
    common.image_eval(c)


VARIANTS = {'cifar10_resnet': _cifar10_resnet}


def get_config(arg=None):
    return common.select('wgan_gp', arg, VARIANTS)
