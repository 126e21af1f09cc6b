"""Generates with a checkpoint of a run folder written by launch.py.

    python sample.py --workdir RUN [--step best|latest|N] [--[no]ema] --num N --out DIR|FILE.npz
                     [--seed S] [--classes 3,5] [--truncation T] [--truncation_psi PSI]
                     [--batch_size B]
    python sample.py --workdir RUN --grid FILE.png [--classes 0,7,9] [--per_class 8]
    python sample.py --workdir RUN --interpolate seeds|classes [--seeds 0,1,2] [--classes 1,7]
                     [--steps 8] --grid FILE.png [--gif FILE.gif]
    python sample.py --workdir RUN --truncation_sweep 2,1,0.5 --out CURVE.png [--metrics fid,is]

Sample i of --seed S is sample i that evaluate.py draws with eval.seed = S, on any
number of devices. The logic is in gan_jax/generation.py and gan_jax/truncation_sweep.py.
"""

import json
import sys

import jax
from absl import app, flags

from gan_jax import generation, runs
from gan_jax import logging as log_lib

_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder written by launch.py.', required=True)
_STEP = flags.DEFINE_string('step', 'latest', 'latest, best, or a checkpoint step.')
_EMA = flags.DEFINE_bool('ema', None, 'Use the EMA generator (default: eval.use_ema).')
_NUM = flags.DEFINE_integer('num', None, 'Samples to write (with --out).')
_OUT = flags.DEFINE_string(
    'out', None, 'A folder of PNGs, a .npz file, or (--truncation_sweep) the plot .png.'
)
_SEED = flags.DEFINE_integer('seed', 0, 'Latent seed (as eval.seed).')
_CLASSES = flags.DEFINE_list('classes', None, 'Classes to draw (default: all in turn).')
_TRUNCATION = flags.DEFINE_float(
    'truncation', None, "BigGAN's truncation of the latents: the threshold (> 0)."
)
_PSI = flags.DEFINE_float(
    'truncation_psi',
    None,
    "StyleGAN2's truncation of w toward its average: psi (1: none; default eval.truncation_psi).",
)
_BATCH = flags.DEFINE_integer('batch_size', None, 'Samples per call (default: eval.batch_size).')
_GRID = flags.DEFINE_string('grid', None, 'Write a grid PNG: a row per class, or interpolations.')
_PER_CLASS = flags.DEFINE_integer('per_class', 8, 'Samples per row of a class grid.')
_INTERPOLATE = flags.DEFINE_enum(
    'interpolate', None, ['seeds', 'classes'], 'Interpolate between seeds or classes.'
)
_SEEDS = flags.DEFINE_list('seeds', ['0', '1'], 'Seeds of the interpolation rows.')
_STEPS = flags.DEFINE_integer('steps', 8, 'Frames of an interpolation.')
_GIF = flags.DEFINE_string('gif', None, 'Also write the interpolation as an animated GIF.')
_SWEEP = flags.DEFINE_list(
    'truncation_sweep', None, 'Truncation thresholds to evaluate (none = no truncation).'
)
_METRICS = flags.DEFINE_string('metrics', 'fid,is', 'Metrics of the truncation sweep.')
_NUM_SAMPLES = flags.DEFINE_integer(
    'num_samples', None, 'Samples per sweep point (default: eval.num_samples).'
)


def _ints(values):
    return None if values is None else [int(v) for v in values]


def main(argv):
    del argv
    if _SWEEP.value is not None:
        from gan_jax import truncation_sweep

        if not _OUT.value or not _OUT.value.endswith('.png'):
            raise app.UsageError('--truncation_sweep writes a plot: give --out CURVE.png.')
        result = truncation_sweep.run(
            _WORKDIR.value,
            step=_STEP.value,
            ema=_EMA.value,
            thresholds=[None if t == 'none' else float(t) for t in _SWEEP.value],
            metrics=_METRICS.value,
            num_samples=_NUM_SAMPLES.value,
            plot_path=_OUT.value,
        )
        if jax.process_index() == 0:
            print(json.dumps(result, indent=2))
        return
    run = runs.load_run(_WORKDIR.value, step=_STEP.value, ema=_EMA.value, truncation_psi=_PSI.value)
    if _BATCH.value is not None:
        run.config.eval.batch_size = _BATCH.value
    classes = _ints(_CLASSES.value)
    truncation = _TRUNCATION.value
    if _INTERPOLATE.value is not None:
        if not _GRID.value:
            raise app.UsageError('--interpolate writes --grid FILE.png (and --gif FILE.gif).')
        frames = generation.interpolate(
            run.sampler,
            run.device_variables,
            _INTERPOLATE.value,
            _ints(_SEEDS.value),
            classes,
            _STEPS.value,
            truncation,
        )
        if jax.process_index() == 0:
            generation.write_grid_and_gif(frames, _GRID.value, _GIF.value)
            print(f'Wrote {_GRID.value}' + (f' and {_GIF.value}' if _GIF.value else ''))
        return
    if _GRID.value is not None:
        grid = generation.class_grid(
            run.sampler, run.device_variables, classes, _PER_CLASS.value, _SEED.value, truncation
        )
        if jax.process_index() == 0:
            log_lib.save_png(_GRID.value, grid)
            print(f'Wrote {_GRID.value}')
        return
    if not _OUT.value or not _NUM.value:
        raise app.UsageError('Give --num N --out DIR|FILE.npz (or --grid / --interpolate).')
    generation.export(
        run.sampler, run.device_variables, _NUM.value, _OUT.value, _SEED.value, classes, truncation
    )
    print(f'Wrote {_NUM.value} samples to {_OUT.value}', file=sys.stderr)


if __name__ == '__main__':
    app.run(main)
