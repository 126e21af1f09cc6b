"""DCGAN shapes, parameter counts, initialisation and cross-replica BatchNorm."""

import json
import os
import pathlib
import subprocess
import sys

import flax
import jax
import jax.numpy as jnp
import pytest

from gan_jax.models import count_params
from gan_jax.models.dcgan import DCGANDiscriminator, DCGANGenerator, base_grid

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
Z_DIM = 100


def _key(seed: int) -> jax.Array:
    """An RBG key: XLA on CPU compiles its sampling ~4x faster than threefry's,
    and the tests only depend on the distributions drawn, not the bits."""
    return jax.random.key(seed, impl='rbg')


def _init(module, x):
    # jit: eager init would compile every small op separately.
    return jax.jit(lambda key, x: module.init(key, x, train=False))(_key(0), x)


def _apply(module, variables, x):
    """Returns (train-mode output, new batch_stats, eval-mode output)."""

    def run(variables, x):
        out, updates = module.apply(variables, x, train=True, mutable=['batch_stats'])
        return out, updates['batch_stats'], module.apply(variables, x, train=False)

    return jax.jit(run)(variables, x)


def _shapes(module, x):
    """Abstract init/apply: shapes and dtypes without compiling anything."""

    def run(key, x):
        variables = module.init(key, x, train=False)
        out, _ = module.apply(variables, x, train=True, mutable=['batch_stats'])
        return variables, out, module.apply(variables, x, train=False)

    return jax.eval_shape(run, jax.random.key(0), x)


@pytest.mark.parametrize('resolution', [28, 32, 64])
@pytest.mark.parametrize('channels', [1, 3])
def test_shapes_and_dtypes(resolution, channels):
    batch = 3
    z = jax.ShapeDtypeStruct((batch, Z_DIM), jnp.float32)
    g_vars, images, eval_images = _shapes(DCGANGenerator(resolution, channels, width=8), z)
    assert images.shape == eval_images.shape == (batch, resolution, resolution, channels)

    d_vars, logits, eval_logits = _shapes(DCGANDiscriminator(resolution, width=8), images)
    assert logits.shape == eval_logits.shape == (batch,)
    outputs = [images, eval_images, logits, eval_logits]
    assert all(x.dtype == jnp.float32 for x in outputs + jax.tree.leaves(g_vars | d_vars))


def test_forward_values():
    # One concrete run (compiling is slow on CPU); layer code is shared by all
    # resolutions.
    z = 3.0 * jax.random.normal(_key(1), (3, Z_DIM))
    generator = DCGANGenerator(28, 1, width=8)
    images, g_stats, eval_images = _apply(generator, _init(generator, z), z)
    assert jnp.all(jnp.abs(images) <= 1.0) and jnp.all(jnp.abs(eval_images) <= 1.0)
    # Train mode updates the running statistics; eval mode only reads them.
    assert not jnp.allclose(g_stats['BatchNorm_0']['mean'], 0.0)

    discriminator = DCGANDiscriminator(28, width=8)
    logits, d_stats, eval_logits = _apply(discriminator, _init(discriminator, images), images)
    assert jnp.all(jnp.isfinite(logits)) and jnp.all(jnp.isfinite(eval_logits))
    assert not jnp.allclose(d_stats['BatchNorm_0']['var'], 1.0)


def _param_shapes(module, x):
    return jax.eval_shape(lambda: module.init(jax.random.key(0), x, train=False))['params']


def test_parameter_counts_at_64():
    # Convolutions followed by BatchNorm have no bias; BN has scale + bias.
    generator = DCGANGenerator(64, 3, width=64)
    g_expected = (
        100 * 4 * 4 * 512
        + 2 * 512  # Dense 100 -> 4x4x512 (no bias) + BN
        + 4 * 4 * 512 * 256
        + 2 * 256  # ConvT 4x4 512 -> 256, 8x8 + BN
        + 4 * 4 * 256 * 128
        + 2 * 128  # ConvT 256 -> 128, 16x16 + BN
        + 4 * 4 * 128 * 64
        + 2 * 64  # ConvT 128 -> 64, 32x32 + BN
        + 4 * 4 * 64 * 3
        + 3  # ConvT 64 -> 3, 64x64, with bias, no BN
    )
    assert count_params(_param_shapes(generator, jnp.zeros((1, 100)))) == g_expected

    discriminator = DCGANDiscriminator(64, width=64)
    d_expected = (
        4 * 4 * 3 * 64
        + 64  # Conv 3 -> 64, 32x32, with bias, no BN
        + 4 * 4 * 64 * 128
        + 2 * 128  # Conv 64 -> 128, 16x16 + BN
        + 4 * 4 * 128 * 256
        + 2 * 256  # Conv 128 -> 256, 8x8 + BN
        + 4 * 4 * 256 * 512
        + 2 * 512  # Conv 256 -> 512, 4x4 + BN
        + 4 * 4 * 512
        + 1  # Dense 4x4x512 -> 1
    )
    d_params = _param_shapes(discriminator, jnp.zeros((1, 64, 64, 3)))
    assert count_params(d_params) == d_expected


def test_initialisation_statistics():
    variables = {
        'G': _init(DCGANGenerator(28, 3, width=64), jnp.zeros((2, Z_DIM))),
        'D': _init(DCGANDiscriminator(28, width=64), jnp.zeros((2, 28, 28, 3))),
    }
    params = flax.traverse_util.flatten_dict({k: v['params'] for k, v in variables.items()})
    kernels = [v for path, v in params.items() if path[-1] == 'kernel']
    scales = jnp.concatenate([v for path, v in params.items() if path[-1] == 'scale'])
    biases = [v for path, v in params.items() if path[-1] == 'bias']
    assert len(kernels) == 6  # G: Dense + 2 ConvT; D: 2 Conv + Dense.
    for kernel in kernels:
        # Every kernel has >= 16*64*3 = 3072 entries, so the sample std of
        # N(0, 0.02) is within ~1.3% (1 sigma); allow 5%.
        assert abs(float(kernel.std()) - 0.02) < 0.05 * 0.02
        assert abs(float(kernel.mean())) < 0.002
    # 128 + 64 (G) + 128 (D) BN scales ~ N(1, 0.02): the mean is within ~0.001 of 1.
    assert abs(float(scales.mean()) - 1.0) < 0.01
    assert 0.01 < float(scales.std()) < 0.03
    assert all(jnp.all(b == 0) for b in biases)


@pytest.mark.parametrize(
    'resolution, expected', [(16, (4, 2)), (28, (7, 2)), (56, (7, 3)), (128, (4, 5))]
)
def test_base_grid(resolution, expected):
    assert base_grid(resolution) == expected


@pytest.mark.parametrize('resolution', [0, 7, 8, 14, 48, 100])
@pytest.mark.parametrize('module', [lambda r: DCGANGenerator(r, 3), DCGANDiscriminator])
def test_bad_resolution_is_rejected_at_construction(module, resolution):
    with pytest.raises(ValueError, match=rf'resolution {resolution}\b.*28, 32, 64, 128'):
        module(resolution)


def test_discriminator_rejects_mismatched_images():
    with pytest.raises(ValueError, match='32x32'):
        DCGANDiscriminator(32, width=8).init(
            jax.random.key(0), jnp.zeros((1, 28, 28, 1)), train=False
        )


def test_cross_replica_batch_norm_matches_full_batch():
    # The device count is fixed when jax is first imported, so the sharded
    # check needs a fresh process with 4 forced host devices.
    env = os.environ | {
        'XLA_FLAGS': '--xla_force_host_platform_device_count=4',
        'JAX_PLATFORMS': 'cpu',
        'PYTHONPATH': os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get('PYTHONPATH')])),
    }
    script = pathlib.Path(__file__).with_name('cross_replica_bn_check.py')
    result = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    diffs = json.loads(result.stdout.strip().splitlines()[-1])
    # Relative differences against the single-device full-batch pass.
    assert diffs['cross_replica_logits'] < 1e-5
    assert diffs['cross_replica_stats'] < 1e-5
    assert diffs['per_device_logits'] > 1e-2
