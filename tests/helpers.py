"""Shared test utilities: a tiny config and a runner for training in a fresh process.

A fresh process is needed whenever a test wants another device count (fixed when
JAX starts) or several processes (``jax.distributed``).
"""

import gzip
import json
import os
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_AND_DUMP = os.path.join(REPO, 'tests', 'train_and_dump.py')
EVALUATE = os.path.join(REPO, 'evaluate.py')


def tiny_config(**overrides):
    """The default DCGAN experiment shrunk to compile and run in seconds on CPU."""
    sys.path.insert(0, REPO)
    from experiments import dcgan

    c = dcgan.get_config()
    c.model.g_width = 8
    c.model.d_width = 8
    c.model.z_dim = 16
    c.train.batch_size = 8
    c.train.steps = 6
    c.log.every_steps = 2
    c.log.sample_every_steps = 3
    c.log.num_samples = 16
    c.checkpoint.every_steps = 3
    c.data.num_threads = 1
    c.eval.every_steps = 0
    set_overrides(c, overrides)
    c.lock()
    return c


def set_overrides(config, overrides):
    """{'train.steps': 3} -> config.train.steps = 3."""
    for key, value in overrides.items():
        node = config
        *parents, leaf = key.split('.')
        for parent in parents:
            node = node[parent]
        node[leaf] = value


def python_env(devices=1):
    """A subprocess environment with ``devices`` simulated CPU devices (and CPU only, so
    that on a GPU machine a 1-vs-N comparison still compares 1 and N devices)."""
    env = dict(os.environ)
    env['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={devices}'
    env['JAX_PLATFORMS'] = 'cpu'
    env['GAN_JAX_TEST_DEVICES'] = str(devices)
    env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
    return env


def train_in_subprocess(workdir, out, overrides=None, devices=1, timeout=300):
    """Trains tiny_config(**overrides) in a new process; returns its dumped arrays."""
    cmd = [
        sys.executable,
        TRAIN_AND_DUMP,
        '--workdir',
        str(workdir),
        '--out',
        str(out),
        '--overrides',
        json.dumps(overrides or {}),
    ]
    result = subprocess.run(
        cmd, env=python_env(devices), capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return dict(np.load(out))


def max_abs_diff(a, b):
    assert a.keys() == b.keys()
    return max((float(np.max(np.abs(a[k] - b[k]))) for k in a), default=0.0)


def write_idx(path, array):
    """Writes a uint8 array as a gzipped IDX file (MNIST's format)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b''.join(d.to_bytes(4, 'big') for d in array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes()))
