"""Train-step speed of gan_jax against the same step in PyTorch, in one process.

    python benchmarks/train_step.py [--presets dcgan32,sndcgan32] [--batches 64,256]
        [--steps 10] [--repeats 5] [--torch_compile] [--no_torch]
        [--compute_dtype bfloat16] [--bf16_resolutions 4] [--flax_conv_transpose] [--flax_conv]
        [--xla_default_convolutions]

One step is one D and one G update of the preset's architecture (those of
experiments/dcgan.py, sngan.py and stylegan2_ada.py:cifar10, whose R1, ADA and EMA
are left out) with the non-saturating loss and Adam(2e-4, 0.5, 0.999), in gan_jax
and in benchmarks/torch_reference.py (same parameter count, checked). For each
preset and batch: compile time, steady-state ms/step and img/s (median over repeats
of ``steps`` updates after warm-up), FLOPs per step from XLA's cost analysis and the
achieved rate as a share of a ceiling measured in the same run (a large matrix
product in the compute dtype; on GPUs XLA's count leaves out the cuDNN convolutions,
so no share is given there), and peak memory. gan_jax and PyTorch are timed
alternately, so load affects both alike; measure on a quiet machine. Runs on CPU or
GPU (both frameworks use the first GPU when there is one). The last line per preset is

    dcgan32 batch=64 gan_jax=NN.N img/s torch_eager=NN.N img/s ratio=N.NNx

and ``--markdown`` adds a row for benchmarks/README.md's table.

``--bf16_resolutions N`` computes StyleGAN2's top N resolutions in bfloat16
(``model.bf16_resolutions``; the official runs use N = 4, in float16).
``--flax_conv_transpose`` swaps the generators' PhaseConvTranspose back to
``nn.ConvTranspose`` (the same function) to measure the "before" number;
``--flax_conv`` likewise swaps the models' ``Conv`` (models/conv.py) for ``nn.Conv``;
``--xla_default_convolutions`` compiles without the library's XLA:CPU options
(``gan_jax.parallel.CPU_COMPILER_OPTIONS``), so convolutions run on YNNPACK.
"""

import argparse
import functools
import importlib
import resource
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.timing import median_seconds
from experiments import base
from gan_jax import builder, models, parallel
from gan_jax import step as step_lib
from gan_jax.models import dcgan, resnet, sndcgan


def _preset_model(preset, variant):
    """(resolution, model settings) of ``experiments/<preset>.py:<variant>``."""
    config = importlib.import_module(f'experiments.{preset}').get_config(variant)
    return config.data.resolution, config.model.to_dict()


# name: (resolution, model settings) of the experiments/ preset it times.
PRESETS = {
    'dcgan32': _preset_model('dcgan', 'cifar10'),
    'dcgan64': _preset_model('dcgan', 'celeb_a'),
    'sndcgan32': _preset_model('sngan', 'cifar10_cnn'),
    'resnet32': _preset_model('sngan', 'cifar10_resnet'),
    # The official cfg=cifar.
    'stylegan2_32': _preset_model('stylegan2_ada', 'cifar10'),
}
CHANNELS = 3


def matmul_ceiling_gflops(dtype):
    """GFLOP/s of a large square matrix product: what the convolutions could reach."""
    n = 8192 if jax.default_backend() == 'gpu' else 2048
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    f = jax.jit(lambda a: a @ a)
    jax.block_until_ready(f(a))
    return 2 * n**3 / median_seconds(lambda: jax.block_until_ready(f(a)), 5, warmup=0) / 1e9


def gan_jax_step(preset, batch, compute_dtype, bf16_resolutions=0):
    resolution, model = PRESETS[preset]
    config = base.get_config()
    config.model.update(model)
    config.model.bf16_resolutions = bf16_resolutions
    # Only the data's shape matters here (the batch below is random).
    config.data.update(dict(source='digits', channels=CHANNELS, resolution=resolution))
    config.train.batch_size = batch
    config.train.compute_dtype = compute_dtype
    setup = builder.build(config)
    mesh = parallel.make_mesh()
    state = jax.jit(setup.init_state, out_shardings=parallel.replicated(mesh))()
    update = step_lib.compile_update(setup.make_update(config), mesh)
    images = np.random.default_rng(0).integers(
        0, 256, (1, batch, resolution, resolution, CHANNELS), np.uint8
    )
    batch_array = jax.device_put(
        {'image': images, 'label': np.zeros((1, batch), np.int32)}, parallel.batch_sharding(mesh)
    )
    start = time.perf_counter()
    compiled = update.lower(state, batch_array).compile()
    compile_s = time.perf_counter() - start
    # XLA counts the per-device program; the step does that on every device.
    flops = compiled.cost_analysis()['flops'] * jax.device_count()
    n_params = sum(models.count_params(p) for p in (state.g_params, state.d_params))
    holder = [state]

    def run(steps):
        for _ in range(steps):
            holder[0], metrics = compiled(holder[0], batch_array)
        jax.block_until_ready(metrics)

    return run, compile_s, flops, n_params


def torch_step(preset, batch, compile_models):
    import torch

    from benchmarks import torch_reference

    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    torch.backends.cudnn.benchmark = True  # What a PyTorch user sets for fixed shapes.
    step, g, d = torch_reference.make_step(preset, batch, compile_models, device)
    resolution = PRESETS[preset][0]
    real = torch.randint(
        0, 256, (batch, CHANNELS, resolution, resolution), dtype=torch.uint8, device=device
    )

    def run(steps):
        for _ in range(steps):
            step(real)
        if device == 'cuda':
            torch.cuda.synchronize()

    start = time.perf_counter()
    run(2)  # Warm-up (and compilation with torch.compile).
    warmup_s = time.perf_counter() - start
    return run, warmup_s, torch_reference.count_params(g) + torch_reference.count_params(d)


def _peak_memory():
    host = f'peak host memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB'
    stats = jax.devices()[0].memory_stats() or {}
    if 'peak_bytes_in_use' in stats:
        host += f', peak device memory {stats["peak_bytes_in_use"] / 2**20:.0f} MiB'
    return host


def benchmark(preset, batch, args, ceiling):
    """Times one preset at one batch size; prints the report and returns its last line."""
    jax_run, compile_s, flops, jax_params = gan_jax_step(
        preset, batch, args.compute_dtype, args.bf16_resolutions
    )
    jax_run(2)  # Warm-up.
    runners = {'gan_jax': jax_run}
    warmups = {}
    if not args.no_torch:
        torch_run, warmups['torch_eager'], torch_params = torch_step(preset, batch, False)
        assert torch_params == jax_params, (preset, torch_params, jax_params)
        runners['torch_eager'] = torch_run
        if args.torch_compile:
            try:
                runners['torch_compile'], warmups['torch_compile'], _ = torch_step(
                    preset, batch, True
                )
            except Exception as error:  # Report, keep the other numbers.
                print(f'torch.compile failed for {preset}: {type(error).__name__}: {error}')
    times = {name: [] for name in runners}
    for _ in range(args.repeats):  # Alternate, so load affects all alike.
        for name, run in runners.items():
            times[name].append(median_seconds(lambda: run(args.steps), 1, warmup=0) / args.steps)
    ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    img_s = {name: batch / (m / 1e3) for name, m in ms.items()}
    achieved = flops / (ms['gan_jax'] / 1e3) / 1e9
    share = (
        'n/a'
        if jax.default_backend() == 'gpu'
        else f'{100 * achieved / ceiling:.0f}% of {ceiling:.0f} GFLOP/s'
    )
    print(
        f'{preset} batch {batch}: params G+D {jax_params:,}; gan_jax compile '
        f'{compile_s:.1f} s, {ms["gan_jax"]:.2f} ms/step, {flops / 1e9:.2f} GFLOP/step (XLA), '
        f'{achieved:.1f} GFLOP/s = {share} (ceiling); {_peak_memory()}'
    )
    for name in runners:
        if name != 'gan_jax':
            print(f'  {name}: {ms[name]:.2f} ms/step (first two steps {warmups[name]:.1f} s)')
    line = f'{preset} batch={batch} gan_jax={img_s["gan_jax"]:.1f} img/s'
    if 'torch_eager' in img_s:
        line += (
            f' torch_eager={img_s["torch_eager"]:.1f} img/s '
            f'ratio={img_s["gan_jax"] / img_s["torch_eager"]:.2f}x'
        )
    if 'torch_compile' in img_s:
        line += (
            f' torch_compile={img_s["torch_compile"]:.1f} img/s '
            f'ratio_compile={img_s["gan_jax"] / img_s["torch_compile"]:.2f}x'
        )
    print(line, flush=True)
    if args.markdown:
        torch_cells = [
            f'{img_s[name]:.1f} ({img_s["gan_jax"] / img_s[name]:.2f}x)' if name in img_s else '-'
            for name in ('torch_eager', 'torch_compile')
        ]
        line = ' | '.join(
            [
                '',
                jax.devices()[0].device_kind,
                preset,
                str(batch),
                args.compute_dtype
                + (f', top {args.bf16_resolutions} bf16' if args.bf16_resolutions else ''),
                f'{img_s["gan_jax"]:.1f}',
                *torch_cells,
                share,
                f'{compile_s:.1f} s',
                '',
            ]
        ).strip()
    return line


def _names(text, accepted=None):
    names = [name.strip() for name in text.split(',') if name.strip()]
    unknown = [name for name in names if accepted is not None and name not in accepted]
    if unknown:
        raise SystemExit(f'unknown preset(s) {unknown}; accepted: {sorted(accepted)}')
    return names


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--presets', default='dcgan32', help=f'comma-separated: {sorted(PRESETS)}')
    parser.add_argument('--batches', default='64', help='comma-separated global batch sizes')
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--torch_compile', action='store_true')
    parser.add_argument('--no_torch', action='store_true')
    parser.add_argument(
        '--compute_dtype', default='float32', choices=sorted(step_lib.COMPUTE_DTYPES)
    )
    parser.add_argument('--bf16_resolutions', type=int, default=0)
    parser.add_argument('--flax_conv_transpose', action='store_true')
    parser.add_argument('--flax_conv', action='store_true')
    parser.add_argument('--xla_default_convolutions', action='store_true')
    parser.add_argument('--markdown', action='store_true')
    args = parser.parse_args()
    if args.flax_conv_transpose:
        dcgan._Up = functools.partial(
            nn.ConvTranspose,
            kernel_size=(4, 4),
            strides=(2, 2),
            padding='SAME',
            kernel_init=dcgan.dcgan_normal,
        )
        sndcgan.PhaseConvTranspose = functools.partial(nn.ConvTranspose, padding='SAME')
    if args.xla_default_convolutions:
        parallel.CPU_COMPILER_OPTIONS = {}
    if args.flax_conv:
        dcgan._Down = functools.partial(
            nn.Conv,
            kernel_size=(4, 4),
            strides=(2, 2),
            padding='SAME',
            kernel_init=dcgan.dcgan_normal,
        )
        sndcgan.Conv = resnet.Conv = nn.Conv

    dtype = step_lib.compute_dtype(args.compute_dtype)
    ceiling = matmul_ceiling_gflops(dtype)
    print(
        f'device: {jax.devices()[0].device_kind}, {jax.device_count()} device(s), '
        f'jax {jax.__version__}, compute dtype {args.compute_dtype}; ceiling '
        f'({jnp.dtype(dtype).name} matmul): {ceiling:.1f} GFLOP/s'
    )
    lines = [
        benchmark(preset, int(batch), args, ceiling)
        for preset in _names(args.presets, PRESETS)
        for batch in _names(args.batches)
    ]
    if args.markdown:
        lines = [
            '| device | preset | batch | compute | gan_jax img/s | torch eager img/s '
            '(gan_jax ratio) | torch.compile img/s (ratio) | gan_jax % of ceiling '
            '(XLA FLOPs) | gan_jax compile |',
            '|---' * 9 + '|',
            *lines,
        ]
    print('\n'.join(['summary:', *lines]))


if __name__ == '__main__':
    main()
