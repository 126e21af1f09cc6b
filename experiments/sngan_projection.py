"""cGANs with a projection discriminator (Miyato & Koyama, ICLR 2018, arXiv:1802.05637).

SNGAN's ResNets made class-conditional: conditional BatchNorm in G, D's output
plus the inner product of a class embedding with its pooled features;
spectral norm in D, hinge loss, 5 D steps per G step, Adam lr 2e-4 with betas
(0, 0.9) and a linear decay to 0 (experiments/sngan.py's ResNet recipe).

Variants (``experiments/sngan_projection.py:<variant>``):
  cifar10      Conditional CIFAR-10 at 32x32, the authors' config (pfnet-research/
               sngan_projection, configs/sn_cifar10_conditional.yml): G width 256,
               D width 128, D batch 64, 128 fakes per G step, 50k G steps decayed
               from the start. Published: Inception score 8.62 and FID 17.5 on
               CIFAR-10, class-conditional (the paper's CIFAR-10 result).
  imagenet128  ImageNet (ILSVRC2012) at 128x128, 1000 classes, the paper's main
               run (configs/sn_projection.yml on 4 GPUs, train_mn.py): width 64,
               D batch 64 (16 per GPU), 128 fakes per G step (32 per GPU), 450k
               G steps with the decay over the last 50k. Published (README_paper.md
               and the paper's ImageNet table): Inception score 29.7 and intra-class
               FID 103.1 at 450k steps (36.8 and 92.4 after 850k). TFDS
               'imagenet2012' needs the archives downloaded by hand.
  smoke        cifar10 shrunk to three CPU steps on offline data.

Evaluation: Inception score (50k samples, 10 splits) and FID every 5k steps.
imagenet128's intra-class FID as the authors compute it (evaluations/calc_intra_FID.py
and calc_ref_stats.py): 5,000 generated images of each class against all training images
of that class, FID per class, averaged; it is 5M images, so run it on the final checkpoint:
  python evaluate.py --workdir RUN --metrics intra_fid
(eval.intra_fid_per_class=5000 is set; classes are done in groups that fit in memory).
"""

from experiments import common, sngan


def _conditional(c, tfds_name, resolution, g_width, d_width, steps, decay_start_step):
    sngan.resnet_recipe(c, resolution, g_width=g_width, d_width=d_width)
    c.model.conditioning = 'projection'
    common.tfds_images(c, tfds_name, resolution)
    common.long_run(c, steps)
    c.optim.decay_start_step = decay_start_step


def _cifar10(c):
    _conditional(c, 'cifar10', 32, g_width=256, d_width=128, steps=50_000, decay_start_step=0)


def _imagenet128(c):
    _conditional(
        c, 'imagenet2012', 128, g_width=64, d_width=64, steps=450_000, decay_start_step=400_000
    )
    c.eval.intra_fid_per_class = 5000


VARIANTS = {'cifar10': _cifar10, 'imagenet128': _imagenet128}


def get_config(arg=None):
    return common.select('sngan_projection', arg, VARIANTS)
