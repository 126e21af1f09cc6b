"""Defaults shared by every experiment; a preset overrides what its paper changes.

Every key a run can take is declared here with a typed default (``placeholder(T)``
for "no value"), and the config is locked by ``launch.py``: an unknown or
misspelled ``--config.*`` key fails before anything is compiled (a renamed key
names its new name, see ``gan_jax.config.RENAMED_KEYS``).

Naming scheme:
  - ``<section>.name`` selects an implementation by its name in a registry
    (``model.name``, ``optim.name``, ``augment.name``, ``ema.name``).
  - ``*_weight`` is a loss term's weight; 0 switches the term off.
  - A "step" is one generator update (``train.steps`` counts them; with
    ``train.g_steps`` above 1, one step is that many); a count of
    discriminator updates says ``d_step``: ``*_every_steps`` / ``*_start_step``
    in G steps, ``*_every_d_steps`` / ``*_start_d_step`` in D steps,
    ``*_every_g_steps`` in G updates (the same as steps unless ``train.g_steps`` > 1).
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
    # Fakes per G step (SNGAN's ResNet runs use 2x D's batch); None: batch_size.
    c.train.g_batch_size = config_dict.placeholder(int)
    c.train.n_dis = 1  # Discriminator updates per generator update.
    # Generator updates per step, each on fresh latents against the same D (PacGAN's
    # Stacked MNIST run in the VEEGAN setting: 2); not simultaneous, a constant lr.
    c.train.g_steps = 1
    # Every G step of an update on the latents of its last D step instead of fresh ones
    # (PacGAN's VEEGAN-setting code feeds one latent batch to its D and both G updates).
    c.train.shared_latents = False
    c.train.loss = 'non_saturating'  # A name in gan_jax.losses.LOSSES.
    c.train.pack = 1  # PacGAN: samples per D input (Lin et al. 2018); 1 = no packing.
    # Unrolled GAN: D updates G looks ahead through (Metz et al. 2017); 0 = none.
    c.train.unroll_steps = 0
    # D and G both step from the parameters before the update, as one simultaneous
    # gradient step (PacGAN's 2-D and the Unrolled GAN demo code); needs n_dis 1.
    c.train.simultaneous = False
    # Updates per compiled call (one lax.scan): the host dispatches once per call, which
    # pays off for small models; the log, sample, eval and checkpoint intervals must be
    # multiples of it.
    c.train.steps_per_call = 1
    # What G and D compute in during training: 'float32', or 'bfloat16' (mixed
    # precision: parameters, optimiser state and losses stay float32).
    c.train.compute_dtype = 'float32'
    # Gradient accumulation: each D and G step takes its gradient over this many
    # micro-batches of train.batch_size / grad_accum (over all devices), one after
    # another, then makes one optimiser step: the update of the whole batch in less
    # memory (BigGAN-PyTorch's num_D_accumulations / num_G_accumulations). Exact for
    # losses and penalties that are means over examples; BatchNorm normalises each
    # micro-batch by its own statistics (README: Gradient accumulation).
    c.train.grad_accum = 1

    c.model = ml_collections.ConfigDict()
    c.model.name = 'dcgan'  # A name in gan_jax.models.MODELS.
    c.model.z_dim = 100
    c.model.z_distribution = 'normal'  # Latents: 'normal' N(0, I) or 'uniform' U[-1, 1].
    c.model.g_width = 64
    c.model.d_width = 64
    # BatchNorm statistics over the global batch (all devices) instead of per device.
    c.model.cross_replica_bn = False
    # How labels enter: None (unconditional), 'projection' (Miyato & Koyama 2018)
    # or 'acgan' (Odena et al. 2017) in D; G then uses class-conditional BatchNorm.
    c.model.conditioning = config_dict.placeholder(str)
    c.model.g_spectral_norm = False  # Spectral norm (Miyato et al. 2018) on G's layers.
    c.model.d_spectral_norm = False  # ... on D's layers.
    c.model.d_pooling = 'sum'  # resnet: D's global pooling, 'sum' (SNGAN) or 'mean' (WGAN-GP).
    # biggan: None gives per-class BN tables (the authors' CIFAR run); an int, a
    # shared class embedding of that size (ImageNet: 128) ...
    c.model.shared_embedding_dim = config_dict.placeholder(int)
    c.model.hierarchical_latent = False  # ... z split over G's blocks (needs the above) ...
    c.model.attention_resolution = config_dict.placeholder(int)  # ... self-attention here.
    # Kernel initialiser, 'ortho' or 'N02' (N(0, 0.02)), for mlp also 'ortho1.4'
    # (orthogonal, gain 1.4); None: the family's own (biggan: 'ortho', BigGAN's
    # ImageNet runs; mlp: Flax's LeCun normal).
    c.model.weight_init = config_dict.placeholder(str)
    # mlp: hidden layers of G and of D (PacGAN's 2-D runs: 4 and 3; Unrolled GAN's: 2 and 2),
    # G's BatchNorm per packing slot and D's maxout units (PacGAN's 2-D runs: True and 5).
    c.model.g_batch_norm = False
    c.model.d_maxout_pieces = 1  # 1: ReLU units.
    c.model.g_depth = 3
    c.model.d_depth = 3
    # stylegan2 (NVlabs/stylegan2-ada-pytorch train.py; defaults: its paper256 cfg;
    # its z is model.z_dim 512): W's size, G's mapping layers, feature maps per resolution
    # min(channel_base // resolution, channel_max) in G and D (channel_base is its
    # fmaps x 32768), D's 'orig' or 'resnet' architecture and its minibatch-stddev
    # group size (per device), and the clamp of convolution outputs (None: none;
    # train.py clamps at 256).
    c.model.w_dim = 512
    c.model.mapping_layers = 8
    c.model.channel_base = 16384
    c.model.channel_max = 512
    c.model.d_architecture = 'resnet'
    c.model.mbstd_group_size = 8
    c.model.conv_clamp = config_dict.placeholder(float)
    # stylegan2: the top resolutions of G and D computed in bfloat16, never below 8x8 (the
    # official num_fp16_res, float16 there; train.py sets 4); 0: all in train.compute_dtype.
    c.model.bf16_resolutions = 0
    c.model.activation = 'relu'  # mlp: hidden units, 'relu' or 'tanh' (the Unrolled GAN demo).
    # veegan_dcgan, unrolled_dcgan: D reads images in [0, 1] and G's tanh is an image in
    # [0, 1] (below 0 black when saved or evaluated), as PacGAN's VEEGAN-setting code
    # feeds D reals in [0, 1] against G's tanh; False: both in [-1, 1].
    c.model.unit_range_images = False

    c.optim = ml_collections.ConfigDict()
    c.optim.name = 'adam'  # A name in gan_jax.state.OPTIMIZERS.
    c.optim.g_lr = 2e-4
    c.optim.d_lr = 2e-4
    c.optim.b1 = 0.5  # Adam's betas.
    c.optim.b2 = 0.999
    c.optim.lr_schedule = 'constant'  # A name in gan_jax.schedules.LR_SCHEDULES.
    c.optim.decay_start_step = 0  # 'linear_decay': G step where the decay to 0 begins.
    # Lazy regularisation's Adam rescaling (StyleGAN2, official training_loop.py): with
    # c = k / (k + 1), lr * c and betas ** c, k = reg.pl_every_g_steps for G and
    # reg.penalty_every_d_steps for D (whether or not those regularisers are on): Adam for
    # k + 1 steps per k iterations, i.e. with reg.lazy_separate_step=True.
    c.optim.lazy_rescale = False

    # Regularisers (gan_jax/objective.py); a weight of 0 switches one off.
    c.reg = ml_collections.ConfigDict()
    # Gradient penalty on D, a name in gan_jax.penalties.PENALTIES (wgan_gp,
    # one_sided_gp, dragan, r1, r2) or None; for r1/r2 the weight is gamma.
    c.reg.penalty = config_dict.placeholder(str)
    c.reg.penalty_weight = 10.0
    c.reg.penalty_every_d_steps = 1  # Lazy regularisation: every k D steps, scaled by k.
    # The lazy regularisers (reg.penalty, reg.pl_weight) in an optimiser step of their own,
    # after the iteration's main step and on its new parameters, with the same optimiser
    # state (StyleGAN2's official Dreg / Greg phases; with optim.lazy_rescale, the official
    # scheme). False: they join the loss of the iteration they fall on.
    c.reg.lazy_separate_step = False
    c.reg.weight_clip = config_dict.placeholder(float)  # WGAN: clip D's params to [-c, c].
    c.reg.ortho_weight = 0.0  # BigGAN's orthogonal regularisation of G's kernels.
    c.reg.acgan_weight = 1.0  # ACGAN class loss (used with model.conditioning='acgan').
    c.reg.bcr_real_weight = 0.0  # bCR (Zhao et al. 2021) on reals ...
    c.reg.bcr_fake_weight = 0.0  # ... and on fakes.
    c.reg.cr_policy = 'flip,translation'  # bCR's transformation (DiffAugment op names).
    c.reg.zcr_d_weight = 0.0  # zCR (Zhao et al. 2021), D side ...
    c.reg.zcr_g_weight = 0.0  # ... and G side.
    c.reg.zcr_sigma = 0.03  # zCR's latent noise std.
    c.reg.mode_seeking_weight = 0.0  # Mode seeking (Mao et al. 2019, MSGAN), G side.
    c.reg.lecam_weight = 0.0  # LeCam (Tseng et al. 2021).
    c.reg.lecam_decay = 0.99  # Its EMA of D's mean outputs ...
    c.reg.lecam_start_d_step = 1000  # ... which copies the batch means before this D step.
    # StyleGAN2 (model.name='stylegan2'): path-length regularisation of G (Karras et al.
    # 2020) every k G updates (scaled by k), on 1 / pl_batch_shrink of the batch, its
    # average of the lengths moving by pl_decay (not with train.grad_accum) ...
    c.reg.pl_weight = 0.0
    c.reg.pl_every_g_steps = 4
    c.reg.pl_batch_shrink = 2
    c.reg.pl_decay = 0.01
    # ... and style mixing: the probability that a G run takes the ws of a second z
    # from a crossover layer on.
    c.reg.style_mixing_prob = 0.0

    # Differentiable augmentation of every D input (gan_jax/augment.py).
    c.augment = ml_collections.ConfigDict()
    c.augment.name = config_dict.placeholder(str)  # None | 'diffaugment' | 'ada'
    c.augment.policy = 'color,translation,cutout'  # DiffAugment's ops, in order.
    c.augment.ada_target = 0.6  # ADA: target of E[sign(D(real))] ...
    c.augment.ada_every_d_steps = 4  # ... checked every this many D steps ...
    c.augment.ada_speed_kimg = 500.0  # ... p moving 0 -> 1 over this many kimg at most.
    c.augment.ada_p_init = 0.0

    # Exponential moving average of G's params (evaluated and sampled when set).
    c.ema = ml_collections.ConfigDict()
    c.ema.name = config_dict.placeholder(str)  # None | 'decay' | 'half_life'
    c.ema.decay = 0.9999  # 'decay' ...
    c.ema.start_step = 0  # ... copying G before this step (BigGAN) ...
    c.ema.warmup = False  # ... with min(decay, (1 + t) / (10 + t)).
    c.ema.half_life_kimg = 10.0  # 'half_life' (StyleGAN2) ...
    c.ema.rampup = config_dict.placeholder(float)  # ... at most rampup x images seen.

    c.data = ml_collections.ConfigDict()
    c.data.source = 'digits'  # digits | tfds | folder | npz | ring | grid | stacked_mnist
    c.data.tfds_name = config_dict.placeholder(str)  # TFDS dataset name.
    c.data.path = config_dict.placeholder(str)  # Folder of images or .npz file.
    c.data.tfds_data_dir = config_dict.placeholder(str)  # None: TFDS default.
    c.data.download = True  # Let TFDS download a dataset it has not prepared.
    c.data.channels = config_dict.placeholder(int)  # Force 1 or 3; None: dataset's.
    c.data.resolution = 32
    c.data.num_threads = 4  # Host threads decoding and batching.
    # folder: leave out (and log) image files that cannot be read; False: they stop the run
    # before training, named.
    c.data.skip_corrupt = False
    # Hold the whole dataset on the device and draw every real example there,
    # uniformly with replacement (small datasets: the 2-D mixtures); False: Grain
    # reshuffles the dataset every epoch on the host ...
    c.data.on_device = False
    # ... or, False here, walks the run's one (seeded) permutation every epoch.
    c.data.reshuffle_each_epoch = True

    c.log = ml_collections.ConfigDict()
    c.log.every_steps = 50  # Scalars to metrics.jsonl, TensorBoard, progress bar.
    c.log.sample_every_steps = 500  # Sample grid from a fixed latent batch.
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
    # intra_fid's generated images per class (sample i has class i % classes); None: those of
    # eval.num_samples. Another value generates C x this many images for intra_fid alone.
    c.eval.intra_fid_per_class = config_dict.placeholder(int)
    c.eval.use_ema = True  # Evaluate the EMA generator when there is one.
    # G's BatchNorm in training mode while evaluating: each batch of eval.batch_size
    # (per device, unless model.cross_replica_bn) normalised by its own statistics, as
    # PacGAN's replication of the Unrolled GAN's Stacked MNIST runs samples; False: the
    # running averages.
    c.eval.g_batch_statistics = False
    c.eval.seed = 0  # Latents of the generated images.
    # StyleGAN2's truncation trick: w moved toward its tracked average by psi (1: none).
    c.eval.truncation_psi = 1.0
    c.eval.reference_split = 'train'  # TFDS split of the reference images.
    c.eval.reference_num = config_dict.placeholder(int)  # None: the whole split.
    c.eval.kid_subsets = 100
    c.eval.kid_subset_size = 1000
    # Keep a 'best' checkpoint by this metric (FID, KID, IS, precision, recall,
    # density, coverage, intra_FID, modes, ...); None keeps none.
    c.eval.best_metric = config_dict.placeholder(str)
    c.eval.cache_dir = config_dict.placeholder(str)  # None: ~/.cache/gan_jax/reference_stats

    c.checkpoint = ml_collections.ConfigDict()
    c.checkpoint.every_steps = 500
    c.checkpoint.keep = 3  # The last N checkpoints are kept.
    return c
