"""Compile time of the train step for every experiment preset, at its published settings.

    python benchmarks/compile_time.py [--presets dcgan,biggan]

Each preset variant's update (its architecture, width, batch size, n_dis and
ingredients) is lowered and compiled from abstract shapes, so even BigGAN at
ImageNet 128x128 with batch 2048 needs no memory for parameters or data.
Datasets that need a download are swapped for the offline digits at the same
resolution and channels (common.offline_data), which changes only the class
count of conditional models. Each line gives wall-clock and this process's CPU
seconds: XLA:CPU compiles on one core, so on a loaded machine the CPU seconds are
what the compile would take alone.
"""

import argparse
import importlib
import time

import jax
import numpy as np

from experiments import common
from gan_jax import builder, parallel
from gan_jax import step as step_lib


def variants(preset):
    """The preset's variants; DCGAN's default (offline) run too."""
    names = list(importlib.import_module(f'experiments.{preset}').VARIANTS)
    return [None, *names] if preset == 'dcgan' else names


def compile_seconds(config, setup):
    """(Wall-clock, this process's CPU) seconds to compile the update from abstract state
    and batch shapes."""
    mesh = parallel.make_mesh()
    replicated, batch_sharding = parallel.replicated(mesh), parallel.batch_sharding(mesh)
    state = jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated),
        jax.eval_shape(setup.init_state),
    )
    shape = (config.train.n_dis, config.train.batch_size, *setup.source.image_shape)
    dtype = np.uint8 if len(setup.source.image_shape) == 3 else np.float32
    batch = {
        'image': jax.ShapeDtypeStruct(shape, dtype, sharding=batch_sharding),
        'label': jax.ShapeDtypeStruct(shape[:2], np.int32, sharding=batch_sharding),
    }
    update = step_lib.compile_update(setup.make_update(config), mesh)
    start, cpu_start = time.perf_counter(), time.process_time()
    update.lower(state, batch).compile()
    return time.perf_counter() - start, time.process_time() - cpu_start


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--presets', default=','.join(common.PAPERS))
    args = parser.parse_args()
    rows = []
    for preset in args.presets.split(','):
        for variant in variants(preset):
            config = importlib.import_module(f'experiments.{preset}').get_config(variant)
            common.offline_data(config)
            setup = builder.build(config)
            seconds, cpu_seconds = compile_seconds(config, setup)
            name = preset if variant is None else f'{preset}:{variant}'
            rows.append(seconds)
            shape = 'x'.join(map(str, setup.source.image_shape))
            print(
                f'{name:<37} {config.model.name:<8} {shape:>9} batch '
                f'{config.train.batch_size:>4} n_dis {config.train.n_dis}: '
                f'compile {seconds:5.1f} s (CPU {cpu_seconds:5.1f} s)',
                flush=True,
            )
    print(f'slowest compile: {max(rows):.1f} s on {jax.devices()[0].device_kind}')


if __name__ == '__main__':
    main()
