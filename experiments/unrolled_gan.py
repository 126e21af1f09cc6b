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
  stacked_mnist_d_half     Stacked MNIST with D half (quarter) of G's width and 10
  stacked_mnist_d_quarter  unrolling steps (Table 2 of the paper, quoted in PacGAN's
                  Table 3): published 817.4 +- 37.91 modes of 1000 and KL 1.43 +-
                  0.12 (D 1/2), 327.2 +- 74.67 modes and KL 4.66 +- 0.46 (D 1/4),
                  from 25,600 samples. Networks and settings of PacGAN's replication
                  (fjxmlzn/PacGAN, stacked_MNIST_experiments/unrolled_GAN_experiment/
                  D=0.5G and D=0.25G, config.py and model.py; model 'unrolled_dcgan'):
                  G Linear(256 -> 4x4x64), 3x3 stride-2 transposed convolutions to 32,
                  16, 8 channels (BatchNorm, ReLU), a 3x3 convolution to 3 (tanh); D
                  three 3x3 stride-2 convolutions of 4, 8, 16 (D=0.5G) or 2, 4, 8
                  (D=0.25G) channels, each with BatchNorm and leaky ReLU 0.3, then
                  Linear(1); G 287,875 and D 1,889 or 585 parameters; batch 128, z ~
                  N(0, I) of 256, the D and the G update on the same latents
                  (train.shared_latents), non-saturating loss, Adam lr 2e-4 (D) and
                  1e-4 (G) with betas (0.5, 0.99), 500k steps; each batch's stacks
                  drawn anew (here with replacement from the 128,000 stacks, on the
                  device); evaluated with G's BatchNorm in training mode on batches
                  of 128 latents per packing slot (eval.g_batch_statistics), as
                  their sampler runs.
  smoke           ring shrunk to three CPU steps.

Not matched: the demo places its modes at linspace(0, 2 pi, 8), whose first and
last angles coincide, so its ring has 7 distinct modes, one with twice the weight
(PacGAN's ring of 8 is used here); the paper's own ring has radius 2 and std 0.02;
the demo's Adams (Keras' for D, TensorFlow's for G) add epsilon to the uncorrected
sqrt(v) (optax: to the bias-corrected one; a difference of order 1e-8). Stacked MNIST:
the replication stacks fresh digits from MNIST's 60,000 training images for every
batch (here batches drawn with replacement from the fixed 128,000 stacks of train
and test digits of the VEEGAN setting, data/stacked_mnist.py); its code has no
unrolling (it trains PacGAN's rows of Table 3), so the 10 unrolling steps here are
train.unroll_steps on its networks and settings.
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


def replication_stacked_mnist(c, d_width, pack=1):
    """PacGAN's replication of the paper's Stacked MNIST runs (also PacGAN's Table 3), with
    D's first layer ``d_width`` channels (4: D=0.5G, 2: D=0.25G), ``pack`` images per D
    input (128 per packing slot)."""
    c.data.source = 'stacked_mnist'
    c.data.resolution = 28
    c.model.name = 'unrolled_dcgan'
    c.model.z_dim = 256
    c.model.g_width, c.model.d_width = 8, d_width
    c.train.pack = pack
    c.train.batch_size = 128 * pack
    c.train.shared_latents = True  # The D and G updates on one latent batch, as theirs.
    c.optim.d_lr, c.optim.g_lr = 2e-4, 1e-4
    c.optim.b1, c.optim.b2 = 0.5, 0.99
    common.long_run(c, 500_000)
    common.mode_eval(c, num_samples=25_600, every_steps=10_000)
    # Their sampler runs G in training mode on 128 latents at a time (per packing slot).
    c.eval.g_batch_statistics = True
    c.eval.batch_size = 128 * pack
    # Speed (these networks are small; a host pipeline would set the pace): the stacks
    # on the device, each batch drawn from them with replacement, as their code draws
    # fresh stacks for every batch; 100 updates per compiled call.
    c.data.on_device = True
    c.train.steps_per_call = 100
    c.log.every_steps = 1000


def _stacked_mnist(d_width):
    def variant(c):
        replication_stacked_mnist(c, d_width)
        c.train.unroll_steps = 10

    return variant


VARIANTS = {
    'ring': _ring(5),
    'ring_plain': _ring(0),
    'stacked_mnist_d_half': _stacked_mnist(4),
    'stacked_mnist_d_quarter': _stacked_mnist(2),
}


def get_config(arg=None):
    return common.select('unrolled_gan', arg, VARIANTS)
