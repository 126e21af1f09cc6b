"""WGAN with weight clipping (Arjovsky, Chintala & Bottou, ICML 2017, arXiv:1701.07875).

Algorithm 1 with the defaults of the authors' code (martinarjovsky/WassersteinGAN,
main.py): critic loss E[D(G(z))] - E[D(x)], generator loss -E[D(G(z))], every
critic parameter (BatchNorm's included, as main.py clamps netD.parameters())
clipped to [-0.01, 0.01] after each update, 5 critic updates per generator
update, momentum-free RMSProp with learning rate 5e-5 for both networks, batch
64, z of 100, DCGAN networks of width 64.

Variants (``experiments/wgan.py:<variant>``):
  lsun_bedroom  The paper's main run (section 4): LSUN bedrooms at 64x64 through
                TFDS ('lsun/bedroom'), main.py's default 25 epochs, i.e. about
                228k generator updates of 5 critic batches each. Published: sample
                grids and the critic-loss curves (Wasserstein estimate vs sample
                quality), no score.
  cifar10       The weight-clipping baseline of WGAN-GP (Gulrajani et al. 2017,
                figure 3: Inception score vs generator iterations), as in
                igul222/improved_wgan_training gan_cifar.py with MODE='wgan':
                the same optimiser and clipping, width 128 (DIM), z of 128, 200k
                generator updates. Published: a curve, no table entry.
  smoke         lsun_bedroom shrunk to three CPU steps on offline data.

Evaluation: Inception score (50k samples, 10 splits) and FID every 5k steps.

Not matched: main.py trains the critic 100 times (not 5) for the first 25
generator updates and every 500th (n_dis is one number per run here);
gan_cifar.py's 5x5 kernels and its critic's BatchNorm (in MODE='wgan' after the
second and third convolutions; gan_jax's DCGAN D uses 4x4 kernels and BatchNorm
after every convolution but the first).
"""

from experiments import common


def _wgan(c, width):
    c.model.name = 'dcgan'
    c.model.g_width = c.model.d_width = width
    c.train.loss = 'wasserstein'
    c.reg.weight_clip = 0.01
    c.train.n_dis = 5
    c.train.batch_size = 64
    c.optim.name = 'rmsprop'
    c.optim.g_lr = c.optim.d_lr = 5e-5
    common.image_eval(c)


def _lsun_bedroom(c):
    _wgan(c, width=64)
    common.tfds_images(c, 'lsun/bedroom', 64)
    common.long_run(c, 228_000)


def _cifar10(c):
    _wgan(c, width=128)
    c.model.z_dim = 128  # gan_cifar.py's Generator: tf.random_normal([n_samples, 128]).
    common.tfds_images(c, 'cifar10', 32)
    common.long_run(c, 200_000)


VARIANTS = {'lsun_bedroom': _lsun_bedroom, 'cifar10': _cifar10}


def get_config(arg=None):
    return common.select('wgan', arg, VARIANTS)
