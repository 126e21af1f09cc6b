"""StyleGAN2-ADA (Karras et al., NeurIPS 2020, arXiv:2006.06676).

StyleGAN2's networks (gan_jax/models/stylegan2.py: mapping network, modulated
convolutions, skip generator, minibatch-stddev discriminator), the
non-saturating logistic loss, lazy R1 every 16 D steps and path-length
regularisation every 4 G steps (paper256), each in an optimiser step of its own
after the iteration's main step, as the official Dreg and Greg phases
(``reg.lazy_separate_step``), with Adam's learning rate and betas rescaled for
those k + 1 steps per k iterations, style mixing (paper256), adaptive discriminator
augmentation ('bgc' pipeline, target 0.6, p adjusted every 4 D steps by up to
batch * 4 / 500k) and G's EMA with a half-life in thousands of images. Every
setting is NVlabs/stylegan2-ada-pytorch's ``train.py`` (its ``cfg_specs`` and the
lines after them), ``training/training_loop.py``'s or ``training/loss.py``'s
defaults; the comments in ``_stylegan2_ada`` say which:

Variants (``experiments/stylegan2_ada.py:<variant>``):
  cifar10              ``--cfg=cifar`` (the paper's tuned CIFAR-10 config), unconditional:
                       batch 64, mbstd group 32, fmaps 1 (channel_base 32768,
                       channel_max 512), 2 mapping layers, Adam lr 0.0025 betas (0, 0.99)
                       eps 1e-8 for G and D, R1 gamma 0.01, EMA half-life 500 kimg with
                       ramp-up 0.05, 100,000 kimg (1,562,500 G steps of 64); path length
                       regularisation and style mixing off, D architecture 'orig'
                       (all three as train.py sets them for cifar); z and w of 512,
                       conv_clamp 256; G's Adam rescaled by 4/5 and D's by 16/17
                       (training_loop.py rescales G for its G_reg_interval 4 in every
                       config, cifar's too, while its Greg phase, without path length,
                       makes no step: Adam skips parameters without gradients; nor does
                       it here). Data: TFDS 'cifar10' train split, no x-flips.
  cifar10_conditional  The same with class labels (``--cond=1``): a label embedding in
                       G's mapping, projection onto a mapped label in D.
  ffhq256              ``--cfg=paper256``: batch 64, mbstd group 8, fmaps 0.5 (channel_base
                       16384), 8 mapping layers, lr 0.0025, R1 gamma 1, EMA half-life 20
                       kimg without ramp-up, 25,000 kimg (390,625 G steps), D architecture
                       'resnet', path-length weight 2 every 4 G steps on half the batch
                       (average decay 0.01), style mixing probability 0.9 (loss.py's
                       defaults). Data: a folder of 256x256 images (FFHQ; set data.path).
  smoke                cifar10 shrunk to three CPU steps on offline data.

Published: the paper's abstract reports a record CIFAR-10 FID of 2.42. Protocol
(``metrics/metric_main.py``): fid50k_full, FID of 50k generated images against
the whole training set (50k CIFAR-10 images, no x-flips), and is50k, the
Inception score of 50k images in 10 splits; set here as eval.metrics 'is,fid'
with 50k samples against the whole train split.

Differences from the official training (so these runs are not its exact recipe):
an iteration runs D's phases before G's (officially Gmain, Greg, then Dmain,
Dreg); the R1 phase takes the gradient at the reals as the main D phase augmented
them (officially a fresh augmentation draw), and ADA's sign statistics count the
main phase's logits only (officially the R1 phase's too). Mixed precision:
train.py computes the 4 top resolutions in float16 (``num_fp16_res=4``);
``--config.model.bf16_resolutions=4`` does so in bfloat16, left off here because
bfloat16 is slower on CPUs. The w average is updated in the G step's main pass
only (officially also in D's and the path-length passes). Each device of the
official multi-GPU run keeps its own path-length average and draws its own mixing
layer; here they are global (1 or N devices train alike).
"""

from experiments import common

# train.py: 'cifar' and 'paper256' of cfg_specs; pl_weight and mixing: loss.py's defaults
# (2 and 0.9), which train.py sets to 0 for cfg=cifar.
_CFG = {
    'cifar': dict(
        kimg=100_000,
        mbstd=32,
        fmaps=1,
        gamma=0.01,
        ema=500,
        ramp=0.05,
        map=2,
        arch='orig',
        pl_weight=0.0,
        mixing=0.0,
    ),
    'paper256': dict(
        kimg=25_000,
        mbstd=8,
        fmaps=0.5,
        gamma=1.0,
        ema=20,
        ramp=None,
        map=8,
        arch='resnet',
        pl_weight=2.0,
        mixing=0.9,
    ),
}
BATCH = 64  # Both configs' mb.
LR = 0.0025  # Both configs' lrate.


def _stylegan2_ada(c, cfg):
    spec = _CFG[cfg]
    c.model.name = 'stylegan2'
    c.model.z_dim = c.model.w_dim = 512
    c.model.mapping_layers = spec['map']
    c.model.channel_base = int(spec['fmaps'] * 32768)
    c.model.channel_max = 512
    c.model.d_architecture = spec['arch']
    c.model.mbstd_group_size = spec['mbstd']
    c.model.conv_clamp = 256.0
    c.train.loss = 'non_saturating'
    c.train.batch_size = BATCH
    c.train.n_dis = 1
    c.optim.name = 'adam'
    c.optim.g_lr = c.optim.d_lr = LR
    c.optim.b1, c.optim.b2 = 0.0, 0.99
    c.reg.penalty = 'r1'
    c.reg.penalty_weight = spec['gamma']
    c.reg.penalty_every_d_steps = 16  # training_loop.py: D_reg_interval.
    # loss.py's StyleGAN2Loss defaults; train.py sets pl_weight and style_mixing_prob
    # to 0 for cfg=cifar.
    c.reg.pl_weight = spec['pl_weight']
    c.reg.pl_every_g_steps = 4  # training_loop.py: G_reg_interval.
    c.reg.pl_batch_shrink = 2
    c.reg.pl_decay = 0.01
    c.reg.style_mixing_prob = spec['mixing']
    # training_loop.py: each lazy regulariser in a phase of its own (Dreg, Greg: an optimiser
    # step after the main one), so lr * c and betas ** c, c = interval / (interval + 1).
    c.reg.lazy_separate_step = True
    c.optim.lazy_rescale = True
    c.augment.name = 'ada'
    c.augment.ada_target = 0.6
    c.augment.ada_every_d_steps = 4
    c.augment.ada_speed_kimg = 500.0
    c.ema.name = 'half_life'
    c.ema.half_life_kimg = float(spec['ema'])
    c.ema.rampup = spec['ramp']
    common.long_run(c, spec['kimg'] * 1000 // BATCH)
    common.image_eval(c)


def _cifar10(c):
    _stylegan2_ada(c, 'cifar')
    common.tfds_images(c, 'cifar10', 32)


def _cifar10_conditional(c):
    _cifar10(c)
    c.model.conditioning = 'projection'


def _ffhq256(c):
    _stylegan2_ada(c, 'paper256')
    c.data.source = 'folder'
    c.data.resolution = 256


VARIANTS = {
    'cifar10': _cifar10,
    'cifar10_conditional': _cifar10_conditional,
    'ffhq256': _ffhq256,
}


def get_config(arg=None):
    return common.select('stylegan2_ada', arg, VARIANTS)
