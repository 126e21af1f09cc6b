"""BigGAN (Brock, Donahue & Simonyan, ICLR 2019, arXiv:1809.11096).

Class-conditional ResNets with spectral norm in G and D, conditional BatchNorm
in G, a projection discriminator, the hinge loss, Adam with betas (0, 0.999)
and an exponential moving average of G's weights (decay 0.9999), which is what
is evaluated and sampled.

Variants (``experiments/biggan.py:<variant>``):
  cifar10      The authors' CIFAR-10 script (ajbrock/BigGAN-PyTorch,
               scripts/launch_cifar_ema.sh, with utils.py's defaults): batch 50, 4
               D steps per G step, lr 2e-4 for both, width 64 (G_ch = D_ch), z of
               128, N(0, 0.02) init, no attention, no shared embedding or
               hierarchical z, EMA from step 1000 (ema_start), no orthogonal
               regularisation (G_ortho 0.0), 500 epochs = 125k G steps (each step
               reads 4 x 50 images). Published: Inception score 9.22 and FID 14.73
               on CIFAR-10, class-conditional (the paper's CIFAR-10 result, its
               own TensorFlow training).
  imagenet128  ImageNet (ILSVRC2012) at 128x128, the paper's full model
               (section 3 and appendix): batch 2048, 2 D steps per G step, lr 5e-5
               (G) and 2e-4 (D) (the paper's values, as README.md's "Key
               Differences" lists them), orthogonal regularisation beta = 1e-4,
               width 96, z of 120 split over G's blocks, a shared class embedding
               of 128, self-attention at 64x64, orthogonal init, cross-replica
               BatchNorm, EMA from step 20k (launch_BigGAN_bs256x8.sh). The batch
               is taken as 8 accumulated micro-batches of 256, as that script does
               (--batch_size 256 --num_D_accumulations 8 --num_G_accumulations 8;
               BatchNorm statistics per micro-batch of 256). The paper
               trains until collapse and reports its best checkpoint; 200k G steps
               is a cap, and the best FID is kept. Published: Inception score 166.3
               and FID 9.6 at 128x128 with the truncation trick (abstract of the
               first arXiv version; the final version's 166.5 and 7.4 are its best
               128x128 model), 50k samples.
  smoke        cifar10 shrunk to three CPU steps on offline data.

Orthogonal regularisation: gan_jax adds beta ||W^T W * (1 - I)||_F^2 to G's
loss, the paper's eq. 3, so ``reg.ortho_weight`` is the paper's beta. The
authors' PyTorch code adds the gradient 2 s (W W^T * (1 - I)) W directly, half
that of eq. 3, so its --G_ortho s equals beta = s / 2 here; both of its launch
scripts set s = 0.

Evaluation: Inception score (50k samples, 10 splits) and FID every 5k steps.

Not matched: the PyTorch ImageNet script's adam_eps 1e-6 (optax's Adam uses
1e-8; no config key), the truncation trick and standing BatchNorm statistics
at evaluation.
"""

from experiments import common


def _biggan(c, tfds_name, resolution, width, steps):
    c.model.name = 'biggan'
    c.model.conditioning = 'projection'
    c.model.g_spectral_norm = c.model.d_spectral_norm = True
    c.model.g_width = c.model.d_width = width
    c.train.loss = 'hinge'
    c.optim.b1, c.optim.b2 = 0.0, 0.999
    c.ema.name = 'decay'
    c.ema.decay = 0.9999
    common.tfds_images(c, tfds_name, resolution)
    common.long_run(c, steps)
    common.image_eval(c)


def _cifar10(c):
    _biggan(c, 'cifar10', 32, width=64, steps=125_000)
    c.model.z_dim = 128
    c.model.weight_init = 'N02'
    c.model.shared_embedding_dim = None
    c.model.hierarchical_latent = False
    c.model.attention_resolution = None
    c.train.batch_size = 50
    c.train.n_dis = 4
    c.optim.g_lr = c.optim.d_lr = 2e-4
    c.ema.start_step = 1000
    c.reg.ortho_weight = 0.0


def _imagenet128(c):
    _biggan(c, 'imagenet2012', 128, width=96, steps=200_000)
    c.model.z_dim = 120
    c.model.weight_init = 'ortho'
    c.model.shared_embedding_dim = 128
    c.model.hierarchical_latent = True
    c.model.attention_resolution = 64
    c.model.cross_replica_bn = True
    c.train.batch_size = 2048
    c.train.grad_accum = 8  # 8 x 256, as launch_BigGAN_bs256x8.sh.
    c.train.n_dis = 2
    c.optim.g_lr, c.optim.d_lr = 5e-5, 2e-4
    c.ema.start_step = 20_000
    c.reg.ortho_weight = 1e-4


VARIANTS = {'cifar10': _cifar10, 'imagenet128': _imagenet128}


def get_config(arg=None):
    return common.select('biggan', arg, VARIANTS)
