"""Train-step speed of gan_jax against the same step in PyTorch, in one process.

    python benchmarks/train_step.py [--preset dcgan32] [--batch 64] [--steps 10] [--repeats 5]
                                    [--torch_compile] [--flax_conv_transpose]

For each preset: compile time, steady-state ms/step and img/s (median over
repeats of ``steps`` updates after warm-up), FLOPs per step from XLA's cost
analysis and the achieved GFLOP/s as a share of a ceiling measured in the same
run (a 2048^3 float32 matmul), and peak host memory. gan_jax and PyTorch are
timed alternately, so machine load affects both alike; measure on a quiet
machine. The last line per preset is

    dcgan32 batch=64 gan_jax=NN.N img/s torch_eager=NN.N img/s ratio=N.NNx

``--flax_conv_transpose`` swaps the generator's PhaseConvTranspose back to
``nn.ConvTranspose`` (the same function) to measure the "before" number.
"""

import argparse
import resource
import statistics
import functools
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from experiments import base
from gan_jax import models, parallel, train
from gan_jax import step as step_lib
from gan_jax.models import dcgan

PRESETS = {  # name: (resolution, channels, width, z_dim)
    'dcgan32': (32, 3, 64, 100),
    'dcgan64': (64, 3, 64, 100),
}


def _median_seconds(run, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_ceiling_gflops(n=2048, repeats=5):
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    jax.block_until_ready(f(a))
    return 2 * n ** 3 / _median_seconds(lambda: jax.block_until_ready(f(a)), repeats) / 1e9


def gan_jax_step(preset, batch):
    resolution, channels, width, z_dim = PRESETS[preset]
    config = base.get_config()
    config.model.update(dict(name='dcgan', z_dim=z_dim, g_width=width, d_width=width))
    # Only the data's shape matters here (the batch below is random).
    config.data.update(dict(source='digits', channels=channels, resolution=resolution))
    config.train.batch_size = batch
    setup = train.build(config)
    mesh = parallel.make_mesh()
    state = jax.jit(setup.init_state, out_shardings=parallel.replicated(mesh))()
    update = step_lib.compile_update(setup.make_update(config), mesh)
    images = np.random.default_rng(0).integers(
        0, 256, (1, batch, resolution, resolution, channels), np.uint8)
    batch_array = jax.device_put({'image': images, 'label': np.zeros((1, batch), np.int32)},
                                 parallel.batch_sharding(mesh))
    start = time.perf_counter()
    compiled = update.lower(state, batch_array).compile()
    compile_s = time.perf_counter() - start
    # XLA counts the per-device program; the step does that on every device.
    flops = compiled.cost_analysis()['flops'] * jax.device_count()
    holder = [state]

    def run(steps):
        for _ in range(steps):
            holder[0], metrics = compiled(holder[0], batch_array)
        jax.block_until_ready(metrics)

    n_params = sum(models.count_params(p) for p in (holder[0].g_params, holder[0].d_params))
    return run, compile_s, flops, n_params


def torch_step(preset, batch, compile_models):
    import torch
    from benchmarks import torch_reference
    resolution, channels, width, z_dim = PRESETS[preset]
    step, g, d = torch_reference.make_step(resolution, channels, width, z_dim, batch,
                                           compile_models)
    real = torch.randint(0, 256, (batch, channels, resolution, resolution), dtype=torch.uint8)

    def run(steps):
        for _ in range(steps):
            step(real)

    start = time.perf_counter()
    run(1)  # Warm-up (and compilation with --torch_compile).
    warmup_s = time.perf_counter() - start
    return run, warmup_s, torch_reference.count_params(g) + torch_reference.count_params(d)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--preset', default='dcgan32', choices=sorted(PRESETS))
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--torch_compile', action='store_true')
    parser.add_argument('--no_torch', action='store_true')
    parser.add_argument('--flax_conv_transpose', action='store_true')
    args = parser.parse_args()
    if args.flax_conv_transpose:
        dcgan._Up = functools.partial(nn.ConvTranspose, kernel_size=(4, 4), strides=(2, 2),
                                      padding='SAME', kernel_init=dcgan.dcgan_normal)

    ceiling = matmul_ceiling_gflops()
    jax_run, compile_s, flops, jax_params = gan_jax_step(args.preset, args.batch)
    jax_run(2)  # Warm-up.
    runners = {'gan_jax': jax_run}
    if not args.no_torch:
        torch_run, torch_warmup_s, torch_params = torch_step(args.preset, args.batch, False)
        assert torch_params == jax_params, (torch_params, jax_params)
        runners['torch_eager'] = torch_run
        if args.torch_compile:
            runners['torch_compile'], _, _ = torch_step(args.preset, args.batch, True)
    times = {name: [] for name in runners}
    for _ in range(args.repeats):  # Alternate, so load affects all alike.
        for name, run in runners.items():
            times[name].append(_median_seconds(lambda: run(args.steps), 1) / args.steps)
    ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    img_s = {name: args.batch / (m / 1e3) for name, m in ms.items()}
    achieved = flops / (ms['gan_jax'] / 1e3) / 1e9
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f'device: {jax.devices()[0].device_kind}, {jax.device_count()} device(s); '
          f'params G+D: {jax_params:,}')
    print(f'ceiling (2048^3 f32 matmul): {ceiling:.1f} GFLOP/s')
    print(f'gan_jax: compile {compile_s:.1f} s, {ms["gan_jax"]:.1f} ms/step, '
          f'{flops / 1e9:.2f} GFLOP/step (XLA), {achieved:.1f} GFLOP/s = '
          f'{100 * achieved / ceiling:.0f}% of ceiling, peak host memory {peak_mib:.0f} MiB')
    for name in runners:
        if name != 'gan_jax':
            print(f'{name}: {ms[name]:.1f} ms/step')
    line = f'{args.preset} batch={args.batch} gan_jax={img_s["gan_jax"]:.1f} img/s'
    if 'torch_eager' in img_s:
        line += (f' torch_eager={img_s["torch_eager"]:.1f} img/s '
                 f'ratio={img_s["gan_jax"] / img_s["torch_eager"]:.2f}x')
    if 'torch_compile' in img_s:
        line += f' torch_compile={img_s["torch_compile"]:.1f} img/s'
    print(line)


if __name__ == '__main__':
    main()
