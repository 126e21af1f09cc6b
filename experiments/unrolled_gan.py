"""Unrolled GAN (Metz, Poole, Pfau & Sohl-Dickstein, ICLR 2017, arXiv:1611.02163).

G is trained against D after k more optimiser updates on the current batch,
differentiating through them (``train.unroll_steps``); D itself takes one
ordinary update per step.

Variants (``experiments/unrolled_gan.py:<variant>``):
  ring            The 2-D mixture experiment (section 3.1), as in the co-author's
                  demo (poolio/unrolled_gan, "Unrolled GAN demo.ipynb"): MLPs of 2
                  hidden layers of 128 tanh units, kernels orthogonal with gain 1.4
                  (every layer), biases 0, z ~ N(0, I) of 256, batch 512, the
                  minimax ("saddle") objective, G minimising D's whole loss after 5
                  unrolled D steps on the same batch, D and G stepping
                  simultaneously from the same parameters (one sess.run), Adam with
                  betas (0.5, 0.999) and eps 1e-8, lr 1e-4 for D and 1e-3 for G,
                  25k steps. G 49,666 and D 17,025 parameters. Data: PacGAN's ring
                  (8 modes on the unit circle, std 0.01). Published: qualitative
                  (figure 1: the unrolled G covers the 8 modes, the plain one cycles
                  between them). Evaluated by mode counts on 2,500 samples.
  ring_plain      ring without unrolling (unroll_steps 0): the demo's plain GAN.
  stacked_mnist_d_half     Stacked MNIST with D about half of G's width and 10
  stacked_mnist_d_quarter  unrolling steps (Table 2 of the paper, quoted in PacGAN's
                  Table 3): published 817.4 +- 37.91 modes of 1000 and KL 1.43 +-
                  0.12 (D 1/2), 327.2 +- 74.67 modes and KL 4.66 +- 0.46 (D 1/4),
                  from 25,600 samples. Settings of PacGAN's replication
                  (fjxmlzn/PacGAN, stacked_MNIST_experiments/unrolled_GAN_experiment
                  config.py and model.py): batch 128, z of 256, non-saturating loss,
                  Adam lr 2e-4 (D) and 1e-4 (G) with betas (0.5, 0.99), 500k steps.
  smoke           ring shrunk to three CPU steps.

Not matched: the demo places its modes at linspace(0, 2 pi, 8), whose first and
last angles coincide, so its ring has 7 distinct modes, one with twice the weight
(PacGAN's ring of 8 is used here); the paper's own ring has radius 2 and std 0.02;
the demo's D optimiser is Keras' Adam, whose epsilon is added to sqrt(v) before
the bias correction (optax: after; a difference of order 1e-8); the Stacked
MNIST networks are gan_jax's 28x28 DCGAN (G width 16, D width 8 or 4)
approximating the replication's 3x3-kernel G (64-32-16-8 channels) and 3-layer
D (4-8-16 or 2-4-8 channels).
"""

from experiments import common


def demo_ring(c):
    """The 2-D ring setup of the unrolled GAN demo, which LSGAN's comparison reuses:
    its networks, simultaneous updates and optimisers."""
    c.data.source = 'ring'
    c.model.name = 'mlp'
    c.model.z_dim = 256
    c.model.g_width = c.model.d_width = 128
    c.model.g_depth = c.model.d_depth = 2
    c.model.activation = 'tanh'
    c.model.weight_init = 'ortho1.4'
    c.train.simultaneous = True
    c.train.batch_size = 512
    c.optim.d_lr, c.optim.g_lr = 1e-4, 1e-3
    c.optim.b1 = 0.5
    c.log.sample_every_steps = 1000
    c.checkpoint.every_steps = 5000
    common.mode_eval(c, num_samples=2500, every_steps=5000)
    # Speed: the points are drawn on the device (the demo draws fresh ones every
    # step), 100 updates per compiled call.
    c.data.on_device = True
    c.train.steps_per_call = 100
    c.log.every_steps = 100


def _ring(unroll_steps):
    def variant(c):
        demo_ring(c)
        c.train.loss = 'minimax'
        c.train.unroll_steps = unroll_steps
        c.train.steps = 25_000

    return variant


def replication_stacked_mnist(c, d_width):
    """PacGAN's replication of the paper's Stacked MNIST runs (also PacGAN's Table 3)."""
    c.data.source = 'stacked_mnist'
    c.data.resolution = 28
    c.model.name = 'dcgan'
    c.model.z_dim = 256
    c.model.g_width, c.model.d_width = 16, d_width
    c.train.batch_size = 128
    c.optim.d_lr, c.optim.g_lr = 2e-4, 1e-4
    c.optim.b1, c.optim.b2 = 0.5, 0.99
    common.long_run(c, 500_000)
    common.mode_eval(c, num_samples=25_600, every_steps=10_000)


def _stacked_mnist(d_width):
    def variant(c):
        replication_stacked_mnist(c, d_width)
        c.train.unroll_steps = 10

    return variant


VARIANTS = {
    'ring': _ring(5),
    'ring_plain': _ring(0),
    'stacked_mnist_d_half': _stacked_mnist(8),
    'stacked_mnist_d_quarter': _stacked_mnist(4),
}


def get_config(arg=None):
    return common.select('unrolled_gan', arg, VARIANTS)
