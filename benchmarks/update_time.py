"""Compile time and time per update of an experiment's train step, on this machine.

    python benchmarks/update_time.py --config sngan:cifar10_resnet [--batch 64] [--n_dis 5]
        [--repeats 5]

The update as launch.py builds it for the experiment (models, objective,
``n_dis``), optionally at another batch size or ``n_dis``, with datasets that
need a download swapped for the offline digits at the same image shape
(common.offline_data) and a batch of zeros. Prints one line: seconds to lower
and compile, and the median seconds per update over ``repeats`` updates after
two warm-up updates. It uses only the library's public entry points, so a
"before" number is this script run with an older checkout first on PYTHONPATH.
"""

import argparse
import importlib
import time

import jax
import numpy as np

from benchmarks.timing import median_seconds
from experiments import common
from gan_jax import builder, parallel
from gan_jax import step as step_lib


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--config', required=True, help='experiment:variant')
    parser.add_argument('--batch', type=int, help="default: the experiment's")
    parser.add_argument('--n_dis', type=int, help="default: the experiment's")
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args()
    experiment, _, variant = args.config.partition(':')
    config = importlib.import_module(f'experiments.{experiment}').get_config(variant or None)
    common.offline_data(config)
    config.train.batch_size = args.batch or config.train.batch_size
    config.train.n_dis = args.n_dis or config.train.n_dis
    setup = builder.build(config)
    mesh = parallel.make_mesh()
    state = jax.jit(setup.init_state, out_shardings=parallel.replicated(mesh))()
    update = step_lib.compile_update(setup.make_update(config), mesh)
    n_dis, batch_size = config.train.n_dis, config.train.batch_size
    shape = setup.source.image_shape
    batch = jax.device_put(
        {
            'image': np.zeros(
                (n_dis, batch_size, *shape), np.uint8 if len(shape) == 3 else np.float32
            ),
            'label': np.zeros((n_dis, batch_size), np.int32),
        },
        parallel.batch_sharding(mesh),
    )
    start = time.perf_counter()
    compiled = update.lower(state, batch).compile()
    compile_s = time.perf_counter() - start
    holder = [state]

    def one_update():
        holder[0], metrics = compiled(holder[0], batch)
        jax.block_until_ready(metrics)

    seconds = median_seconds(one_update, args.repeats, warmup=2)
    print(
        f'{args.config} batch {batch_size} n_dis {n_dis} on {jax.devices()[0].device_kind}: '
        f'compile {compile_s:.1f} s, {seconds * 1e3:.0f} ms per update'
    )


if __name__ == '__main__':
    main()
