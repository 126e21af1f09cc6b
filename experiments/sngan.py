"""SNGAN (Miyato, Kataoka, Koyama & Yoshida, ICLR 2018, arXiv:1802.05957): spectral norm in D.

Variants (``experiments/sngan.py:<variant>``):
  cifar10_resnet  The ResNet run (architecture: appendix B.4; optimiser: appendix
                  B.2) with the hinge loss. Published:
                  Inception score 8.22 +- .05 and FID 21.7 +- .21 on CIFAR-10,
                  unconditional (Table 2, "SN-GANs" ResNet with the hinge loss).
                  Settings from the authors' config (pfnet-research/sngan_projection,
                  configs/sn_cifar10_unconditional.yml): G width 256, D width 128,
                  z of 128, sum pooling, 5 D steps per G step, D batch 64 and 128
                  fakes per G step (n_gen_samples), Adam lr 2e-4 with betas (0,
                  0.9), linearly decayed to 0 over 50k G steps: the preset
                  follows this repository config; the paper itself trains 100k
                  G updates (--config.train.steps=100000 for that).
  cifar10_cnn     The standard CNN (Table 3). Published: Inception score 7.42 +- .08
                  and FID 29.3 on CIFAR-10 (Table 2, "SN-GANs", the non-saturating
                  loss). Settings from the authors' library (pfnet-research/
                  chainer-gan-lib, example.sh: stdgan with sndcgan, Adam lr 2e-4 with
                  betas (0.5, 0.999), one D step; train.py: batch 64, 100k steps),
                  which is the paper's setting C (Table 1); z of 128, width 64.
  smoke           cifar10_resnet shrunk to three CPU steps on offline data.

Evaluation: Inception score (50k samples, 10 splits) and FID every 5k steps;
the paper's appendix B.1 gives its own sample counts.

Not available: the STL-10 runs (Table 2, 48x48): the paper trains on the 100k
unlabelled images, and the TFDS source reads the 5k 'train' split only.
"""

from experiments import common


def resnet_recipe(c, resolution, g_width, d_width):
    """SNGAN's ResNet training (shared with the projection discriminator's runs)."""
    common.resnet_cifar_training(c)
    c.model.g_width, c.model.d_width = g_width, d_width
    c.model.d_spectral_norm = True
    c.model.d_pooling = 'sum'
    c.train.loss = 'hinge'
    c.data.resolution = resolution
    common.image_eval(c)


def _cifar10_resnet(c):
    resnet_recipe(c, 32, g_width=256, d_width=128)
    common.tfds_images(c, 'cifar10', 32)
    common.long_run(c, 50_000)


def _cifar10_cnn(c):
    c.model.name = 'sndcgan'
    c.model.g_width = c.model.d_width = 64
    c.model.z_dim = 128
    c.model.d_spectral_norm = True
    c.train.loss = 'non_saturating'
    c.train.batch_size = 64
    c.optim.g_lr = c.optim.d_lr = 2e-4
    c.optim.b1, c.optim.b2 = 0.5, 0.999
    common.tfds_images(c, 'cifar10', 32)
    common.long_run(c, 100_000)
    common.image_eval(c)


VARIANTS = {'cifar10_resnet': _cifar10_resnet, 'cifar10_cnn': _cifar10_cnn}


def get_config(arg=None):
    return common.select('sngan', arg, VARIANTS)
