"""Defaults shared by every experiment; a preset overrides what its paper changes.

Every key a run can take is declared here with a typed default (``placeholder(T)``
for "no value"), and the config is locked by ``launch.py``: an unknown or
misspelled ``--config.*`` key fails before anything is compiled.
"""

import ml_collections
from ml_collections import config_dict


def get_config(arg=None):
    del arg
    c = ml_collections.ConfigDict()
    c.seed = 0
    # Print the resolved config, parameter counts and device layout, then exit.
    c.dry_run = False

    c.train = ml_collections.ConfigDict()
    c.train.steps = 2000  # Generator updates.
    c.train.batch_size = 64  # Global, over all devices and hosts.
    c.train.n_dis = 1  # Discriminator updates per generator update.
    c.train.loss = 'non_saturating'  # A name in gan_jax.losses.LOSSES.
    c.train.ema_decay = 0.0  # EMA of G's params; 0 disables it.

    c.model = ml_collections.ConfigDict()
    c.model.name = 'dcgan'  # A name in gan_jax.models.MODELS.
    c.model.z_dim = 100
    c.model.g_width = 64
    c.model.d_width = 64
    # BatchNorm statistics over the global batch (all devices) instead of per device.
    c.model.cross_replica_bn = False

    c.optim = ml_collections.ConfigDict()
    c.optim.name = 'adam'  # A name in gan_jax.state.OPTIMIZERS.
    c.optim.g_lr = 2e-4
    c.optim.d_lr = 2e-4
    c.optim.b1 = 0.5  # Adam's betas.
    c.optim.b2 = 0.999

    c.data = ml_collections.ConfigDict()
    c.data.source = 'digits'  # digits | tfds | folder | npz
    c.data.name = config_dict.placeholder(str)  # TFDS dataset name.
    c.data.path = config_dict.placeholder(str)  # Folder of images or .npz file.
    c.data.tfds_data_dir = config_dict.placeholder(str)  # None: TFDS default.
    c.data.download = True  # Let TFDS download a dataset it has not prepared.
    c.data.channels = config_dict.placeholder(int)  # Force 1 or 3; None: dataset's.
    c.data.resolution = 32
    c.data.num_threads = 4  # Host threads decoding and batching.

    c.log = ml_collections.ConfigDict()
    c.log.every_steps = 50  # Scalars to metrics.jsonl, TensorBoard, progress bar.
    c.log.sample_every = 500  # Sample grid from a fixed latent batch.
    c.log.num_samples = 64

    c.eval = ml_collections.ConfigDict()
    c.eval.every_steps = 0  # Evaluate during training every N steps and at the end; 0: never.
    c.eval.metrics = 'fid,kid,is,prdc'  # Comma-separated names in gan_jax.evaluate.METRICS.
    # A name in gan_jax.metrics.extractors.EXTRACTORS: 'inception' (plain FID, needs
    # converted weights, see README) or a gan_jax classifier (FID-LeNet-MNIST, ...).
    c.eval.extractor = 'inception'
    c.eval.inception_weights = config_dict.placeholder(str)  # None: ~/.cache/gan_jax/...
    c.eval.num_samples = 10_000  # Generated images (and reference rows for KID/PRDC).
    c.eval.batch_size = 100  # Global; a multiple of the device count.
    c.eval.use_ema = True  # Evaluate the EMA generator when there is one.
    c.eval.seed = 0  # Latents of the generated images.
    c.eval.reference_split = 'train'  # TFDS split of the reference images.
    c.eval.reference_num = config_dict.placeholder(int)  # None: the whole split.
    c.eval.kid_subsets = 100
    c.eval.kid_subset_size = 1000
    # Keep a 'best' checkpoint by this metric (FID, KID, IS, precision, recall,
    # density, coverage); None keeps none.
    c.eval.best_metric = config_dict.placeholder(str)
    c.eval.cache_dir = config_dict.placeholder(str)  # None: ~/.cache/gan_jax/reference_stats

    c.checkpoint = ml_collections.ConfigDict()
    c.checkpoint.every_steps = 500
    c.checkpoint.keep = 3  # The last N checkpoints are kept.
    return c
