"""DCGAN (Radford, Metz & Chintala, ICLR 2016, arXiv:1511.06434).

Architecture as in the paper's section 3 and the authors' code: transposed-conv G
with BatchNorm + ReLU and a tanh output, strided-conv D with LeakyReLU 0.2 and no
BatchNorm on its input layer, N(0, 0.02) init, Adam lr 2e-4 beta1 0.5, batch 128,
non-saturating loss, one D step per G step.

Variants (``experiments/dcgan.py:<variant>``):
  digits         (the default, no variant named) scikit-learn's bundled 8x8 digits
                 resized to 28x28; offline, small enough for a laptop CPU.
  mnist          MNIST 28x28 through TFDS.
  fashion_mnist  Fashion-MNIST 28x28 through TFDS.
  mnist_projection, fashion_mnist_projection
                 the same, class-conditional: class-conditional BatchNorm in G and
                 a projection discriminator (Miyato & Koyama 2018); the generators
                 of applications/ (repair.py, synthetic_data.py). ACGAN
                 (model.conditioning=acgan) is a poor choice with this D: its
                 BatchNorm sees real and fake batches apart, and its class head
                 learns to read G's classes from fake-batch statistics that a real
                 classifier cannot see (applications/README.md).
  cifar10        CIFAR-10 32x32 through TFDS.
  celeb_a        CelebA center-cropped to 64x64 through TFDS (the paper's faces
                 setup at its 64x64 resolution).
  smoke          digits shrunk to three CPU steps.

The paper reports no FID; these presets apply the paper's settings to these
datasets and are not yet a reproduction of a published number. Evaluation:
FID-LeNet (gan_jax's own classifiers) for the digit and clothing sets, FID with
the FID Inception network (converted weights required, see README) otherwise.
"""

from experiments import common

DEFAULT = 'digits'


def _digits(c):
    """Small enough to train on a CPU, offline."""
    c.data.source = 'digits'
    c.data.resolution = 28
    c.model.g_width = c.model.d_width = 32
    c.train.batch_size = 64
    c.train.steps = 2000
    # FID-LeNet-MNIST (gan_jax's MNIST classifier; digits are MNIST-like) of
    # 2,000 samples against all 1,797 digits, every 500 steps.
    c.eval.every_steps = 500
    c.eval.extractor = 'lenet_mnist'
    c.eval.num_samples = 2000
    c.eval.best_metric = 'FID'


def _tfds(name, resolution, steps, extractor):
    def variant(c):
        c.train.batch_size = 128
        c.train.steps = steps
        common.tfds_images(c, name, resolution)
        c.log.sample_every_steps = 1000
        c.checkpoint.every_steps = 2000
        # 10k generated images against the whole train split, as StudioGAN and mimicry.
        c.eval.every_steps = 5000
        c.eval.extractor = extractor
        c.eval.best_metric = 'FID'

    return variant


def _class_conditional(variant):
    def conditional(c):
        variant(c)
        c.model.conditioning = 'projection'

    return conditional


VARIANTS = {
    DEFAULT: _digits,
    'mnist': _tfds('mnist', 28, 10_000, 'lenet_mnist'),
    'fashion_mnist': _tfds('fashion_mnist', 28, 10_000, 'lenet_fashion_mnist'),
    'mnist_projection': _class_conditional(_tfds('mnist', 28, 10_000, 'lenet_mnist')),
    'fashion_mnist_projection': _class_conditional(
        _tfds('fashion_mnist', 28, 10_000, 'lenet_fashion_mnist')
    ),
    'cifar10': _tfds('cifar10', 32, 50_000, 'inception'),
    'celeb_a': _tfds('celeb_a', 64, 50_000, 'inception'),
}


def get_config(arg=None):
    return common.select('dcgan', arg or DEFAULT, VARIANTS)
