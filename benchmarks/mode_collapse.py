"""The mode-collapse tables' update on CPU: gan_jax against the authors' networks in PyTorch.

    python benchmarks/mode_collapse.py [--packs 1,2,4] [--steps 300] [--repeats 5]
    python benchmarks/mode_collapse.py --stacked_mnist stacked_mnist,stacked_mnist_dcgan
        [--steps 5] [--repeats 3]

PacGAN's 2-D networks (experiments/pacgan.py:ring, the authors' simultaneous
update) with the paper's batch of 100 packed inputs. gan_jax is timed as its
training loop calls the update: one update per call on a host batch
(``train.steps_per_call=1``), and the preset's way, 100 updates per call with
the points drawn on the device. PyTorch eager runs the same networks (same
parameter counts, checked) and update. The two alternate, median of repeats,
in one process; steps per second printed with the CPU model.

``--stacked_mnist`` times the Stacked MNIST presets of experiments/pacgan.py
named instead (their networks, batch, packing and G steps per update; random
images of the data's shape), gan_jax as the preset runs (one update per call).
"""

import argparse
import platform
import sys

import jax
import numpy as np
import torch

from benchmarks import torch_reference
from benchmarks.timing import median_seconds
from experiments import pacgan
from gan_jax import builder, models, parallel
from gan_jax import step as step_lib


def gan_jax_runner(pack, steps, per_call):
    """() -> runs ``steps`` updates of the pacgan ring preset, ``per_call`` per call."""
    config = pacgan.get_config('ring')
    config.train.pack, config.train.batch_size = pack, 100 * pack
    config.train.steps_per_call = per_call
    config.data.on_device = per_call > 1
    setup = builder.build(config)
    shapes = jax.eval_shape(setup.init_state)
    counts = models.count_params(shapes.g_params), models.count_params(shapes.d_params)
    mesh = parallel.make_mesh()
    train_steps = step_lib.compile_update(
        setup.make_train_steps(config), mesh, device_data=config.data.on_device
    )
    state = [jax.jit(setup.init_state, out_shardings=parallel.replicated(mesh))()]
    if config.data.on_device:
        data = jax.device_put(setup.source.as_arrays(), parallel.replicated(mesh))
    else:
        points = np.random.default_rng(0).normal(size=(1, 100 * pack, 2)).astype(np.float32)
        data = jax.device_put(
            {'image': points, 'label': np.zeros((1, 100 * pack), np.int32)},
            parallel.batch_sharding(mesh),
        )

    def run():
        for _ in range(steps // per_call):
            state[0], metrics = train_steps(state[0], data)
        jax.block_until_ready(metrics)

    return run, counts


def stacked_mnist_runners(variant, steps):
    """(gan_jax run, PyTorch eager run, parameter counts of both) for ``steps`` updates
    of ``experiments/pacgan.py:<variant>`` on random images."""
    config = pacgan.get_config(variant)
    config.data.update(source='digits', channels=3, resolution=28, path=None)  # Shape only.
    # The update itself, one per call on a host batch (the D = 1/4 G presets draw 100
    # per call on the device; launch.py's rates in benchmarks/README.md show that).
    config.data.on_device, config.train.steps_per_call = False, 1
    setup = builder.build(config)
    shapes = jax.eval_shape(setup.init_state)
    mesh = parallel.make_mesh()
    train_steps = step_lib.compile_update(setup.make_train_steps(config), mesh)
    state = [jax.jit(setup.init_state, out_shardings=parallel.replicated(mesh))()]
    batch = config.train.batch_size
    images = np.random.default_rng(0).integers(0, 256, (1, batch, 28, 28, 3), np.uint8)
    data = jax.device_put(
        {'image': images, 'label': np.zeros((1, batch), np.int32)}, parallel.batch_sharding(mesh)
    )

    def run_gan_jax():
        for _ in range(steps):
            state[0], metrics = train_steps(state[0], data)
        jax.block_until_ready(metrics)

    step, g, d = torch_reference.make_stacked_mnist_step(config)
    pack = config.train.pack
    real = torch.rand(batch // pack, 3 * pack, 28, 28) * 2 - 1

    def run_torch():
        for _ in range(steps):
            step(real)

    counts = {
        'gan_jax': (models.count_params(shapes.g_params), models.count_params(shapes.d_params)),
        'PyTorch': (torch_reference.count_params(g), torch_reference.count_params(d)),
    }
    return run_gan_jax, run_torch, counts


def torch_runner(pack, steps):
    step, g, d = torch_reference.make_pacgan_2d_step(pack)
    real = torch.randn(100, 2 * pack)
    counts = torch_reference.count_params(g), torch_reference.count_params(d)

    def run():
        for _ in range(steps):
            step(real)

    return run, counts


def stacked_mnist_table(variants, steps, repeats):
    print('| preset | gan_jax it/s | PyTorch eager it/s | ratio |')
    print('|---|---|---|---|')
    for variant in variants:
        run_gan_jax, run_torch, counts = stacked_mnist_runners(variant, steps)
        if counts['gan_jax'] != counts['PyTorch']:
            sys.exit(f'{variant}: parameter counts (G, D) differ: {counts}')
        runs = {'gan_jax': run_gan_jax, 'torch': run_torch}
        times = {name: [] for name in runs}
        for run in runs.values():
            run()  # Warm-up: compilation, allocation.
        for _ in range(repeats):  # Alternating, so a slow minute hits both.
            for name, run in runs.items():
                times[name].append(median_seconds(run, repeats=1, warmup=0))
        rate = {name: steps / float(np.median(t)) for name, t in times.items()}
        print(
            f'| `pacgan.py:{variant}` | {rate["gan_jax"]:.3g} | {rate["torch"]:.3g} '
            f'| {rate["gan_jax"] / rate["torch"]:.2f}x |',
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--packs', default='1,2,4')
    parser.add_argument('--steps', type=int, default=300)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--stacked_mnist', default='', help='pacgan.py variants, comma-separated')
    args = parser.parse_args()
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if 'model name' in line)
    except (OSError, StopIteration):
        pass
    print(
        f'# {cpu}, {jax.device_count()} {jax.default_backend()} device(s), torch '
        f'{torch.__version__} ({torch.get_num_threads()} threads), jax {jax.__version__}'
    )
    if args.stacked_mnist:
        stacked_mnist_table(args.stacked_mnist.split(','), args.steps, args.repeats)
        return
    print(
        '| pack | gan_jax 1/call it/s | gan_jax 100/call, device data it/s | '
        'PyTorch eager it/s | best ratio |'
    )
    print('|---|---|---|---|---|')
    for pack in (int(p) for p in args.packs.split(',')):
        single, counts = gan_jax_runner(pack, args.steps, 1)
        multi, _ = gan_jax_runner(pack, args.steps, 100)
        eager, torch_counts = torch_runner(pack, args.steps)
        if counts != torch_counts:
            sys.exit(f'parameter counts differ: gan_jax {counts}, PyTorch {torch_counts}')
        times = {name: [] for name in ('single', 'multi', 'eager')}
        for _ in range(args.repeats):  # Alternating, so a slow minute hits all three.
            for name, run in (('single', single), ('multi', multi), ('eager', eager)):
                times[name].append(median_seconds(run, repeats=1))
        rate = {name: args.steps / float(np.median(t)) for name, t in times.items()}
        best = max(rate['single'], rate['multi']) / rate['eager']
        print(
            f'| {pack} | {rate["single"]:.1f} | {rate["multi"]:.1f} | {rate["eager"]:.1f} '
            f'| {best:.2f}x |',
            flush=True,
        )


if __name__ == '__main__':
    main()
