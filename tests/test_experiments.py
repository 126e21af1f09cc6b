"""The paper presets: every variant loads locked, builds, dry-runs, keeps its published
settings and takes two real updates on CPU; every smoke variant trains end to end."""

import importlib
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from experiments import common
from gan_jax import builder, parallel, train
from gan_jax import step as step_lib
from tests import helpers


def _preset(name):
    return importlib.import_module(f'experiments.{name}')


VARIANTS = [(p, v) for p in common.PAPERS for v in _preset(p).VARIANTS]

# The settings each docstring cites, by variant (keys as on the command line).
_SNGAN_RESNET = {
    'model.name': 'resnet',
    'train.loss': 'hinge',
    'train.batch_size': 64,
    'train.g_batch_size': 128,
    'train.n_dis': 5,
    'optim.name': 'adam',
    'optim.g_lr': 2e-4,
    'optim.d_lr': 2e-4,
    'optim.b1': 0.0,
    'optim.b2': 0.9,
    'optim.lr_schedule': 'linear_decay',
    'model.z_dim': 128,
    'model.d_spectral_norm': True,
    'model.d_pooling': 'sum',
}
# poolio/unrolled_gan "Unrolled GAN demo.ipynb" (params dict, slim.arg_scope with
# orthogonal_initializer(gain=1.4), tanh slim.stack, one sess.run of both train ops);
# xudonmao/LSGAN's ls.py copies them.
_RING_DEMO = {
    'data.source': 'ring',
    'model.name': 'mlp',
    'model.activation': 'tanh',
    'model.weight_init': 'ortho1.4',
    'model.z_distribution': 'normal',
    'train.simultaneous': True,
    'optim.b2': 0.999,
    'model.z_dim': 256,
    'model.g_width': 128,
    'model.d_width': 128,
    'model.g_depth': 2,
    'model.d_depth': 2,
    'train.batch_size': 512,
    'optim.d_lr': 1e-4,
    'optim.g_lr': 1e-3,
    'optim.b1': 0.5,
    'eval.metrics': 'modes',
    'eval.num_samples': 2500,
}
# fjxmlzn/PacGAN stacked_MNIST_experiments/unrolled_GAN_experiment/D=0.25G and D=0.5G,
# config.py (disc/gen learning rates, beta1 0.5, beta2 0.99, batch_size 128, z_dim 256,
# num_training_sample 500000 * 128, num_test_sample 25600) and model.py (the networks,
# np.random.normal latents, one feed_dict_z for d_optim and g_optim, the sampler's
# BatchNorm left in training mode on batch_size latents).
_REPLICATION = {
    'data.source': 'stacked_mnist',
    'data.resolution': 28,
    'model.name': 'unrolled_dcgan',
    'model.g_width': 8,
    'model.z_dim': 256,
    'model.z_distribution': 'normal',
    'train.g_steps': 1,
    'train.shared_latents': True,
    'train.loss': 'non_saturating',
    'optim.d_lr': 2e-4,
    'optim.g_lr': 1e-4,
    'optim.b1': 0.5,
    'optim.b2': 0.99,
    'train.steps': 500_000,
    'eval.metrics': 'modes',
    'eval.num_samples': 25_600,
    'eval.g_batch_statistics': True,
}
# fjxmlzn/PacGAN stacked_MNIST_experiments/VEEGAN_experiment config.py (epoch 50,
# learning_rate 2e-4, beta1 0.5, batch_size 64, z_dim 100, num_training_sample 128000,
# num_test_sample 26000) and model.py (np.random.uniform(-1, 1) latents, g_optim run
# twice per d_optim on d_optim's feed_dict_z, gf_dim = df_dim = 64, load_mnist's
# X_stacked / 255. fed to D against G's tanh, train's batches data_X[idx * batch_size:
# (idx + 1) * batch_size] in the same order every epoch).
_VEEGAN = {
    'data.source': 'stacked_mnist',
    'data.resolution': 28,
    'model.name': 'veegan_dcgan',
    'model.g_width': 64,
    'model.d_width': 64,
    'model.z_dim': 100,
    'model.z_distribution': 'uniform',
    'model.unit_range_images': True,
    'data.reshuffle_each_epoch': False,
    'train.g_steps': 2,
    'train.shared_latents': True,
    'train.n_dis': 1,
    'train.loss': 'non_saturating',
    'optim.g_lr': 2e-4,
    'optim.d_lr': 2e-4,
    'optim.b1': 0.5,
    'optim.b2': 0.999,
    'train.steps': 100_000,
    'eval.metrics': 'modes',
    'eval.num_samples': 26_000,
}
# fjxmlzn/PacGAN synthetic_data_experiments/2DRing_GAN&PacGAN config.py and pacgan_task.py
# (gen_hidden_size 400 x 4 with BatchNorm, disc_hidden_size 200 x 3 maxout of 5 pieces,
# IsotropicGaussian(0.02), Adam(1e-4, beta1 0.8), batch_size 100, 400 epochs of 1000
# iterations, num_log_figure_sample 2500, ALI's simultaneous D and G update). Blocks' Adam
# before its commit aa06451 (2017-01-24), for which ALI chose beta1 = 0.8, weighted the new
# gradient by beta1: optax's b1 = 1 - 0.8.
_PACGAN_2D = {
    'model.name': 'mlp',
    'model.z_dim': 2,
    'model.g_width': 400,
    'model.g_depth': 4,
    'model.g_batch_norm': True,
    'model.d_width': 200,
    'model.d_depth': 3,
    'model.d_maxout_pieces': 5,
    'model.weight_init': 'N02',
    'train.pack': 2,
    'train.batch_size': 200,
    'train.simultaneous': True,
    'train.n_dis': 1,
    'optim.name': 'adam',
    'optim.g_lr': 1e-4,
    'optim.d_lr': 1e-4,
    'optim.b1': 0.2,
    'optim.b2': 0.999,
    'train.steps': 400_000,
    'train.loss': 'non_saturating',
    'eval.metrics': 'modes',
    'eval.num_samples': 2500,
}
_WGAN = {
    'train.loss': 'wasserstein',
    'reg.weight_clip': 0.01,
    'reg.penalty': None,
    'train.n_dis': 5,
    'train.batch_size': 64,
    'optim.name': 'rmsprop',
    'optim.g_lr': 5e-5,
    'optim.d_lr': 5e-5,
    'model.name': 'dcgan',
}
_IMAGE_EVAL = {'eval.metrics': 'is,fid', 'eval.extractor': 'inception', 'eval.num_samples': 50_000}
_DCGAN = {
    'model.name': 'dcgan',
    'train.loss': 'non_saturating',
    'train.n_dis': 1,
    'train.batch_size': 128,
    'optim.name': 'adam',
    'optim.g_lr': 2e-4,
    'optim.d_lr': 2e-4,
    'optim.b1': 0.5,
}
# NVlabs/stylegan2-ada-pytorch train.py (cfg_specs cifar / paper256 and the lines after
# them), training/training_loop.py's defaults (D_reg_interval 16, G_reg_interval 4 with
# the Adam rescaling, ada_interval 4, ada_kimg 500) and training/loss.py's (pl_batch_shrink
# 2, pl_decay 0.01, pl_weight 2, style_mixing_prob 0.9; train.py: both 0 for cfg=cifar).
_STYLEGAN2_ADA = {
    **_IMAGE_EVAL,
    'model.name': 'stylegan2',
    'model.z_dim': 512,
    'model.w_dim': 512,
    'model.channel_max': 512,
    'model.conv_clamp': 256.0,
    'train.loss': 'non_saturating',
    'train.batch_size': 64,
    'train.n_dis': 1,
    'optim.g_lr': 0.0025,
    'optim.d_lr': 0.0025,
    'optim.b1': 0.0,
    'optim.b2': 0.99,
    'reg.penalty': 'r1',
    'reg.penalty_every_d_steps': 16,
    'reg.pl_every_g_steps': 4,
    'reg.pl_batch_shrink': 2,
    'reg.pl_decay': 0.01,
    'optim.lazy_rescale': True,
    'reg.lazy_separate_step': True,
    'augment.name': 'ada',
    'augment.ada_target': 0.6,
    'augment.ada_every_d_steps': 4,
    'augment.ada_speed_kimg': 500.0,
    'ema.name': 'half_life',
}
_STYLEGAN2_CIFAR = {
    **_STYLEGAN2_ADA,
    'data.tfds_name': 'cifar10',
    'data.resolution': 32,
    'model.channel_base': 32768,
    'model.mapping_layers': 2,
    'model.mbstd_group_size': 32,
    'model.d_architecture': 'orig',
    'reg.penalty_weight': 0.01,
    'reg.pl_weight': 0.0,
    'reg.style_mixing_prob': 0.0,
    'ema.half_life_kimg': 500.0,
    'ema.rampup': 0.05,
    'train.steps': 1_562_500,
}
PUBLISHED = {
    ('wgan', 'lsun_bedroom'): {
        **_WGAN,
        'data.tfds_name': 'lsun/bedroom',
        'data.resolution': 64,
        'model.g_width': 64,
        'train.steps': 228_000,
    },
    ('wgan', 'cifar10'): {
        **_WGAN,
        'data.tfds_name': 'cifar10',
        'model.g_width': 128,
        'model.z_dim': 128,  # gan_cifar.py: tf.random_normal([n_samples, 128]).
        'train.steps': 200_000,
    },
    ('wgan_gp', 'cifar10_resnet'): {
        **_IMAGE_EVAL,
        'model.name': 'resnet',
        'optim.name': 'adam',
        'optim.g_lr': 2e-4,
        'optim.d_lr': 2e-4,
        'optim.b1': 0.0,
        'optim.b2': 0.9,
        'train.n_dis': 5,
        'optim.lr_schedule': 'linear_decay',
        'optim.decay_start_step': 0,
        'train.steps': 100_000,
        'model.conditioning': None,
        'train.loss': 'wasserstein',
        'reg.penalty': 'wgan_gp',
        'reg.penalty_weight': 10.0,
        'train.batch_size': 64,
        'train.g_batch_size': 128,
        'model.g_width': 128,
        'model.d_width': 128,
        'model.z_dim': 128,
        'model.d_spectral_norm': False,
        'model.d_pooling': 'mean',
        'data.tfds_name': 'cifar10',
    },
    ('lsgan', 'ring'): {
        **_RING_DEMO,
        'train.loss': 'least_squares',
        'train.steps': 35_000,
        'train.unroll_steps': 0,
    },
    ('dragan', 'cifar10'): {
        **_IMAGE_EVAL,
        'reg.penalty': 'dragan',
        'reg.penalty_weight': 10.0,
        'train.loss': 'non_saturating',
        'optim.g_lr': 1e-4,
        'optim.d_lr': 1e-4,
        'optim.b1': 0.5,
        'optim.b2': 0.9,
        'train.n_dis': 1,
        'train.batch_size': 128,  # kodalinaveen3/DRAGAN DRAGAN.ipynb: batch_size = 128.
        'model.name': 'dcgan',
    },
    ('sngan', 'cifar10_resnet'): {
        **_SNGAN_RESNET,
        **_IMAGE_EVAL,
        'train.steps': 50_000,
        'optim.decay_start_step': 0,
        'model.g_width': 256,
        'model.d_width': 128,
        'model.conditioning': None,
    },
    ('sngan', 'cifar10_cnn'): {
        'model.name': 'sndcgan',
        'model.d_spectral_norm': True,
        'train.loss': 'non_saturating',
        'optim.g_lr': 2e-4,
        'optim.b1': 0.5,
        'optim.b2': 0.999,
        'train.n_dis': 1,
        'train.batch_size': 64,
        'train.steps': 100_000,
        'model.z_dim': 128,
    },
    ('sngan_projection', 'cifar10'): {
        **_SNGAN_RESNET,
        'model.conditioning': 'projection',
        'train.steps': 50_000,
        'optim.decay_start_step': 0,
        'model.g_width': 256,
        'model.d_width': 128,
    },
    ('sngan_projection', 'imagenet128'): {
        **_SNGAN_RESNET,
        'model.conditioning': 'projection',
        'data.tfds_name': 'imagenet2012',
        'data.resolution': 128,
        'train.steps': 450_000,
        'optim.decay_start_step': 400_000,
        'model.g_width': 64,
        'model.d_width': 64,
    },
    ('biggan', 'cifar10'): {
        **_IMAGE_EVAL,
        'model.name': 'biggan',
        'model.conditioning': 'projection',
        'train.batch_size': 50,
        'train.g_batch_size': None,
        'train.n_dis': 4,
        'optim.g_lr': 2e-4,
        'optim.d_lr': 2e-4,
        'optim.b1': 0.0,
        'optim.b2': 0.999,
        'ema.name': 'decay',
        'ema.decay': 0.9999,
        'ema.start_step': 1000,
        'reg.ortho_weight': 0.0,
        'model.g_width': 64,
        'model.d_width': 64,
        'model.z_dim': 128,
        'model.shared_embedding_dim': None,
        'model.hierarchical_latent': False,
        'model.attention_resolution': None,
        'model.weight_init': 'N02',
        'model.g_spectral_norm': True,
        'model.d_spectral_norm': True,
        'train.loss': 'hinge',
        'train.steps': 125_000,
    },
    ('biggan', 'imagenet128'): {
        'train.batch_size': 2048,
        'train.grad_accum': 8,
        'train.n_dis': 2,
        'optim.g_lr': 5e-5,
        'optim.d_lr': 2e-4,
        'optim.b1': 0.0,
        'optim.b2': 0.999,
        'reg.ortho_weight': 1e-4,
        'model.g_width': 96,
        'model.z_dim': 120,
        'model.shared_embedding_dim': 128,
        'model.hierarchical_latent': True,
        'model.attention_resolution': 64,
        'model.weight_init': 'ortho',
        'ema.start_step': 20_000,
        'data.resolution': 128,
    },
    ('pacgan', 'ring'): {**_PACGAN_2D, 'data.source': 'ring'},
    ('pacgan', 'grid'): {**_PACGAN_2D, 'data.source': 'grid'},
    ('pacgan', 'stacked_mnist'): {**_VEEGAN, 'train.pack': 2, 'train.batch_size': 128},
    ('pacgan', 'stacked_mnist_dcgan'): {**_VEEGAN, 'train.pack': 1, 'train.batch_size': 64},
    ('pacgan', 'stacked_mnist_d_quarter'): {
        **_REPLICATION,
        'train.pack': 2,
        'train.batch_size': 256,
        'eval.batch_size': 256,
        'model.d_width': 2,
        'train.unroll_steps': 0,
    },
    ('pacgan', 'stacked_mnist_d_quarter_dcgan'): {
        **_REPLICATION,
        'train.pack': 1,
        'train.batch_size': 128,
        'eval.batch_size': 128,
        'model.d_width': 2,
        'train.unroll_steps': 0,
    },
    ('pacgan', 'stacked_mnist_d_half'): {
        **_REPLICATION,
        'train.pack': 2,
        'train.batch_size': 256,
        'eval.batch_size': 256,
        'model.d_width': 4,
        'train.unroll_steps': 0,
    },
    ('pacgan', 'stacked_mnist_d_half_dcgan'): {
        **_REPLICATION,
        'train.pack': 1,
        'train.batch_size': 128,
        'eval.batch_size': 128,
        'model.d_width': 4,
        'train.unroll_steps': 0,
    },
    ('unrolled_gan', 'ring'): {
        **_RING_DEMO,
        'train.loss': 'minimax',
        'train.unroll_steps': 5,
        'train.steps': 25_000,
    },
    ('unrolled_gan', 'ring_plain'): {
        **_RING_DEMO,
        'train.loss': 'minimax',
        'train.unroll_steps': 0,
        'train.steps': 25_000,
    },
    ('unrolled_gan', 'stacked_mnist_d_half'): {
        **_REPLICATION,
        'train.unroll_steps': 10,
        'train.batch_size': 128,
        'eval.batch_size': 128,
        'model.d_width': 4,
    },
    ('unrolled_gan', 'stacked_mnist_d_quarter'): {
        **_REPLICATION,
        'train.unroll_steps': 10,
        'eval.batch_size': 128,
        'model.d_width': 2,
    },
    ('stylegan2_ada', 'cifar10'): {**_STYLEGAN2_CIFAR, 'model.conditioning': None},
    ('stylegan2_ada', 'cifar10_conditional'): {
        **_STYLEGAN2_CIFAR,
        'model.conditioning': 'projection',
    },
    ('stylegan2_ada', 'ffhq256'): {
        **_STYLEGAN2_ADA,
        'data.source': 'folder',
        'data.resolution': 256,
        'model.channel_base': 16384,
        'model.mapping_layers': 8,
        'model.mbstd_group_size': 8,
        'model.d_architecture': 'resnet',
        'reg.penalty_weight': 1.0,
        'reg.pl_weight': 2.0,
        'reg.style_mixing_prob': 0.9,
        'ema.half_life_kimg': 20.0,
        'ema.rampup': None,
        'train.steps': 390_625,
    },
    # Radford et al. 2016, section 3: Adam lr 2e-4 beta1 0.5, batch 128 (the digits run: 64).
    ('dcgan', 'digits'): {**_DCGAN, 'data.source': 'digits', 'train.batch_size': 64},
    ('dcgan', 'mnist'): {**_DCGAN, 'data.tfds_name': 'mnist', 'data.resolution': 28},
    ('dcgan', 'fashion_mnist'): {**_DCGAN, 'data.tfds_name': 'fashion_mnist'},
    # Miyato & Koyama 2018: class-conditional BatchNorm in G, projection in D.
    ('dcgan', 'mnist_projection'): {
        **_DCGAN,
        'data.tfds_name': 'mnist',
        'model.conditioning': 'projection',
    },
    ('dcgan', 'fashion_mnist_projection'): {
        **_DCGAN,
        'data.tfds_name': 'fashion_mnist',
        'model.conditioning': 'projection',
    },
    ('dcgan', 'cifar10'): {**_DCGAN, 'data.tfds_name': 'cifar10', 'data.resolution': 32},
    ('dcgan', 'celeb_a'): {**_DCGAN, 'data.tfds_name': 'celeb_a', 'data.resolution': 64},
}

# Two updates of the 128x128 presets at their real widths took 125 s (BigGAN, width 96)
# and 60 s (SNGAN-projection, width 64) on 2 CPU cores, so their two-update test runs at
# this width (StyleGAN2 at 256x256: channel_max 8); everything else (resolution, n_dis,
# loss, regularisers, optimiser, classes) stays at the published settings.
CPU_WIDTH_128 = 8


@pytest.fixture(scope='module', autouse=True)
def _quick_compiles():
    """XLA's cheapest optimisation level: these programs run twice, compiling dominates."""
    previous = jax.config.read('jax_disable_most_optimizations')
    jax.config.update('jax_disable_most_optimizations', True)
    yield
    jax.config.update('jax_disable_most_optimizations', previous)


def _get(config, key):
    for part in key.split('.'):
        config = config[part]
    return config


def _locked(preset, variant):
    config = _preset(preset).get_config(variant)
    config.lock()  # As launch.py does (lock_config=True).
    return config


def _offline(config, tmp_path):
    """The data swapped for an offline source of the same shape and class count."""
    if config.data.source == 'tfds' and config.data.tfds_name == 'imagenet2012':
        # 1000 classes: the class embeddings keep their published size.
        labels = np.arange(4) * 333
        path = tmp_path / 'imagenet_like.npz'
        np.savez(path, x=np.zeros((4, 8, 8, 3), np.uint8), y=labels)
        with config.unlocked():
            config.data.source, config.data.path, config.data.tfds_name = 'npz', str(path), None
    else:
        common.offline_data(config)
    return config


def test_every_preset_and_variant_is_covered():
    assert set(PUBLISHED) == set(VARIANTS)


def test_the_paper_list_is_every_preset_file():
    folder = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'experiments')
    files = {name[:-3] for name in os.listdir(folder) if name.endswith('.py')}
    assert files - set(common.PAPERS) == {'base', 'common', 'tables'}
    assert set(common.PAPERS) <= files


@pytest.mark.parametrize('preset', common.PAPERS)
def test_unknown_or_missing_variant_fails_listing_the_variants(preset):
    # dcgan.py alone has a default variant: the default run (launch.py --config dcgan.py).
    if preset == 'dcgan':
        assert _preset(preset).get_config(None) == _preset(preset).get_config('digits')
    for arg in ('nope',) if preset == 'dcgan' else ('nope', None):
        with pytest.raises(ValueError, match='smoke') as error:
            _preset(preset).get_config(arg)
        assert all(v in str(error.value) for v in _preset(preset).VARIANTS)


@pytest.mark.parametrize('preset, variant', VARIANTS + [(p, 'smoke') for p in common.PAPERS])
def test_config_is_locked_and_builds_and_describes(preset, variant, tmp_path):
    config = _locked(preset, variant)
    with pytest.raises(AttributeError):
        config.train.stepz = 3
    setup = builder.build(_offline(config, tmp_path))
    report = builder.describe(config, setup)
    assert 'G params: ' in report and 'D params: ' in report
    assert f'{config.train.n_dis} D step(s) per G step' in report
    if config.reg.lazy_separate_step:  # The regularisers with steps of their own are listed.
        every = config.reg.penalty_every_d_steps
        assert f'D penalty x {config.reg.penalty_weight:g} (own step every {every})' in report


@pytest.mark.parametrize('preset, variant', VARIANTS)
def test_published_settings(preset, variant):
    config = _locked(preset, variant)
    for key, value in PUBLISHED[preset, variant].items():
        assert _get(config, key) == value, key


def _tiny_batch(config, setup, n_dis, batch, seed):
    """(n_dis, batch, ...) reals as the pipeline gives them: uint8 images or float points."""
    rng = np.random.default_rng(seed)
    shape = (n_dis, batch, *setup.source.image_shape)
    if len(setup.source.image_shape) == 3:
        images = rng.integers(0, 256, shape, dtype=np.uint8)
    else:
        images = rng.normal(size=shape).astype(np.float32)
    labels = rng.integers(0, setup.source.num_classes or 1, (n_dis, batch)).astype(np.int32)
    return {'image': images, 'label': labels}


# The largest networks' updates are heavy (minutes): their builds and dry runs stay in CI.
HEAVY_UPDATES = {
    ('stylegan2_ada', 'cifar10'),
    ('stylegan2_ada', 'cifar10_conditional'),
    ('stylegan2_ada', 'ffhq256'),
    ('unrolled_gan', 'stacked_mnist_d_half'),
    ('unrolled_gan', 'stacked_mnist_d_quarter'),
    ('biggan', 'imagenet128'),
    ('sngan_projection', 'imagenet128'),
    # CI's 20 minutes: their smoke variants train end to end in CI.
    ('biggan', 'cifar10'),
    ('sngan_projection', 'cifar10'),
    # dcgan mnist's networks with the projection head that sngan_projection's smoke trains.
    ('dcgan', 'mnist_projection'),
    ('dcgan', 'fashion_mnist_projection'),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    'preset, variant',
    [
        pytest.param(*v, marks=pytest.mark.heavy) if tuple(v) in HEAVY_UPDATES else v
        for v in VARIANTS
    ],
)
def test_two_updates_at_real_settings(preset, variant, tmp_path):
    config = _offline(_locked(preset, variant), tmp_path)
    n_dev = jax.device_count()
    with config.unlocked():
        ratio = builder.g_batch_size(config) // config.train.batch_size
        config.train.batch_size = 2 * n_dev * config.train.pack * config.train.grad_accum
        if config.train.g_batch_size is not None:
            config.train.g_batch_size = ratio * config.train.batch_size
        if config.data.resolution == 128 and config.model.name != 'mlp':
            config.model.g_width = config.model.d_width = CPU_WIDTH_128
        if config.model.name == 'stylegan2' and config.data.resolution >= 128:
            config.model.channel_max = CPU_WIDTH_128
    setup = builder.build(config)
    mesh = parallel.make_mesh()
    state = jax.jit(setup.init_state, out_shardings=parallel.replicated(mesh))()
    before = parallel.to_host({'g': state.g_params, 'd': state.d_params})
    update = step_lib.compile_update(setup.make_update(config), mesh)
    for step in range(2):
        state, metrics = update(
            state, _tiny_batch(config, setup, config.train.n_dis, config.train.batch_size, step)
        )
    metrics = parallel.to_host(metrics)
    assert all(np.isfinite(v) for v in metrics.values()), metrics
    after = parallel.to_host({'g': state.g_params, 'd': state.d_params})
    for net in ('g', 'd'):
        changed = jax.tree.leaves(
            jax.tree.map(lambda a, b: not np.array_equal(a, b), before[net], after[net])
        )
        assert any(changed), f'{net} did not change'
    assert int(parallel.to_host(state.step)) == 2


@pytest.mark.slow
@pytest.mark.parametrize('preset', common.PAPERS)
def test_smoke_variant_trains_end_to_end(preset, tmp_path):
    config = _locked(preset, 'smoke')
    assert config.eval.every_steps == 0 and config.data.source not in ('tfds', 'stacked_mnist')
    state = train.train(config, str(tmp_path))
    assert int(parallel.to_host(state.step)) == config.train.steps == 3
    rows = [json.loads(line) for line in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
    assert [r['step'] for r in rows if 'd_loss' in r] == [1, 2, 3]


def test_launch_dry_run_of_a_preset():
    run = subprocess.run(
        [
            sys.executable,
            'launch.py',
            '--config=experiments/biggan.py:smoke',
            '--config.dry_run=True',
        ],
        env=helpers.python_env(),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=helpers.REPO,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert 'G params: ' in run.stdout and 'loss: hinge' in run.stdout
