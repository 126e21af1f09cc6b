"""Trains tests.helpers.tiny_config() plus overrides, then saves the final weights.

Run as a script by tests that need a fresh process (see tests/helpers.py):
    train_and_dump.py --workdir W --out F.npz [--overrides JSON]
                      [--coordinator HOST:PORT --num_processes N --process_id I]
"""

import argparse
import json
import os

import jax
import numpy as np

from gan_jax import parallel


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--workdir', required=True)
    parser.add_argument('--out', required=True)
    parser.add_argument('--overrides', default='{}')
    parser.add_argument('--coordinator')
    parser.add_argument('--num_processes', type=int)
    parser.add_argument('--process_id', type=int)
    args = parser.parse_args()
    if args.coordinator:
        parallel.initialize_distributed(args.coordinator, args.num_processes, args.process_id)
    expected = int(os.environ.get('GAN_JAX_TEST_DEVICES', jax.local_device_count()))
    assert jax.local_device_count() == expected and jax.default_backend() == 'cpu', (
        f'expected {expected} CPU devices, got {jax.local_devices()}'
    )
    from gan_jax import train
    from tests import helpers

    state = train.train(helpers.tiny_config(**json.loads(args.overrides)), args.workdir)
    weights = parallel.to_host(
        {
            'g': state.g_params,
            'd': state.d_params,
            'g_bn': state.g_batch_stats,
            'd_bn': state.d_batch_stats,
            'ema': state.ema_params,
            'aux': state.aux,
        }
    )
    flat = {
        jax.tree_util.keystr(path): leaf
        for path, leaf in jax.tree_util.tree_leaves_with_path(weights)
    }
    np.savez(args.out, **flat)


if __name__ == '__main__':
    main()
