"""DRAGAN (Kodali, Abernethy, Hays & Kira, 2017, arXiv:1705.07215, "On Convergence and
Stability of GANs"): a gradient penalty around the data instead of between data and fakes.

D's loss gets 10 E[(||grad D(x_p)|| - 1)^2] at points x_p on the segment from a
real batch x to x + 0.5 std(x) U(0, 1), as in the authors' notebook
(kodalinaveen3/DRAGAN, DRAGAN.ipynb: get_perturbed_batch, lambd = 10); the
non-saturating GAN loss otherwise; Adam lr 1e-4 with betas (0.5, 0.9) for both
networks, one D step per G step (the notebook's values).

Variants (``experiments/dragan.py:<variant>``):
  cifar10  The paper's CIFAR-10 comparison with the DCGAN architecture (width 64,
           z of 100), batch 128 (the notebook's batch_size; no source for another
           was found), 200k generator updates (the notebook's loop; the paper's
           count was not found). Published: Inception score 6.90, as
           quoted from the paper in pfnet-research/chainer-gan-lib's README
           ("Inception (Official)"); 50k samples, 10 splits here.
  smoke    cifar10 shrunk to three CPU steps on offline data.

The notebook's own experiment (MLPs on flattened MNIST) is not available: the
MLP models take 1-D data only.
"""

from experiments import common


def _cifar10(c):
    c.model.name = 'dcgan'
    c.model.g_width = c.model.d_width = 64
    c.train.loss = 'non_saturating'
    c.reg.penalty = 'dragan'
    c.reg.penalty_weight = 10.0
    c.train.batch_size = 128  # DRAGAN.ipynb: batch_size = 128.
    c.optim.g_lr = c.optim.d_lr = 1e-4
    c.optim.b1, c.optim.b2 = 0.5, 0.9
    common.tfds_images(c, 'cifar10', 32)
    common.long_run(c, 200_000)
    common.image_eval(c)


VARIANTS = {'cifar10': _cifar10}


def get_config(arg=None):
    return common.select('dragan', arg, VARIANTS)
