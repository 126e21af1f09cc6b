"""What the paper presets share: variant selection, data, evaluation and the smoke run.

A preset file maps each variant name to a function that edits the base config in
place; ``select`` is its ``get_config``. Keeping the blocks here means a protocol
(how a paper evaluated, what "offline" means) is written once for every preset.
"""

from experiments import base

SMOKE = 'smoke'
# The paper presets, one file each in experiments/ (the rest of experiments/ is shared code).
PAPERS = (
    'dcgan',
    'wgan',
    'wgan_gp',
    'lsgan',
    'dragan',
    'sngan',
    'sngan_projection',
    'biggan',
    'pacgan',
    'unrolled_gan',
    'stylegan2_ada',
)
# Sources that need a download (TFDS) or MNIST's files (Stacked MNIST).
_ONLINE_SOURCES = ('tfds', 'stacked_mnist')


def select(paper, arg, variants):
    """The base config edited by ``variants[arg]``; ``smoke`` shrinks the first variant.

    Any other name fails at once, listing the accepted ones.
    """
    names = list(variants)
    if arg is None:
        raise ValueError(
            f'experiments/{paper}.py needs a variant: experiments/{paper}.py:'
            f'<variant> with <variant> one of {names + [SMOKE]}.'
        )
    if arg == SMOKE:
        return smoke(select(paper, names[0], variants))
    if arg not in variants:
        raise ValueError(
            f'Unknown {paper} variant {arg!r}; expected one of '
            f'{names + [SMOKE]} (experiments/{paper}.py:<variant>).'
        )
    c = base.get_config()
    variants[arg](c)
    return c


def tfds_images(c, name, resolution):
    """A TFDS image dataset (downloaded on first use) at ``resolution`` x ``resolution``."""
    c.data.source = 'tfds'
    c.data.tfds_name = name
    c.data.resolution = resolution


def resnet_cifar_training(c):
    """The CIFAR-10 ResNet training of WGAN-GP (gan_cifar_resnet.py), which SNGAN kept.

    z of 128; critic batch 64 and 128 fakes per G step; 5 critic steps per G
    step; Adam lr 2e-4, betas (0, 0.9), decayed linearly to 0.
    """
    c.model.name = 'resnet'
    c.model.z_dim = 128
    c.train.batch_size = 64
    c.train.g_batch_size = 128
    c.train.n_dis = 5
    c.optim.g_lr = c.optim.d_lr = 2e-4
    c.optim.b1, c.optim.b2 = 0.0, 0.9
    c.optim.lr_schedule = 'linear_decay'


def long_run(c, steps):
    """``steps`` generator updates, with samples and checkpoints spaced for a long run."""
    c.train.steps = steps
    c.log.sample_every_steps = 1000
    c.checkpoint.every_steps = 5000


def image_eval(c, every_steps=5000, num_samples=50_000):
    """The Inception score protocol of these papers: 50k samples, 10 splits; FID alongside.

    FID and IS use the FID Inception network (converted weights, see README); the
    reference is the whole training split.
    """
    c.eval.every_steps = every_steps
    c.eval.metrics = 'is,fid'
    c.eval.extractor = 'inception'
    c.eval.num_samples = num_samples
    c.eval.best_metric = 'FID'


def mode_eval(c, num_samples, every_steps):
    """Mode counting (2-D mixtures, Stacked MNIST) on ``num_samples`` generated samples."""
    c.eval.every_steps = every_steps
    c.eval.metrics = 'modes'
    c.eval.num_samples = num_samples
    c.eval.best_metric = 'modes'


def offline_data(c):
    """Swaps a downloaded dataset (or a folder not given yet) for scikit-learn's digits at
    the same resolution, in RGB.

    Every image dataset of these presets has 3 channels; the 2-D mixtures are
    generated and stay. The class count changes (10), which only conditional
    models see.
    """
    if c.data.source in _ONLINE_SOURCES or (c.data.source == 'folder' and c.data.path is None):
        c.data.source = 'digits'
        c.data.tfds_name = None
        c.data.path = None
        c.data.channels = 3


def smoke(c):
    """The run shrunk to three steps on CPU, offline: tiny widths and batch, no evaluation.

    The recipe stays (loss, regularisers, n_dis, packing, unrolling, optimiser,
    schedules, EMA), as does the ratio of G's to D's batch.
    """
    offline_data(c)
    ratio = (c.train.g_batch_size or c.train.batch_size) // c.train.batch_size
    c.train.batch_size = 4 * c.train.pack
    if c.train.g_batch_size is not None:
        c.train.g_batch_size = ratio * c.train.batch_size
    c.model.g_width = c.model.d_width = 16 if c.model.name == 'mlp' else 8
    if c.model.name == 'stylegan2':
        c.model.z_dim = c.model.w_dim = c.model.channel_max = 8
    c.train.steps = 3
    c.train.steps_per_call = 1
    c.log.every_steps = 1
    c.log.sample_every_steps = 3
    c.log.num_samples = 16
    c.checkpoint.every_steps = 3
    c.eval.every_steps = 0
    c.data.num_threads = 1
    return c
