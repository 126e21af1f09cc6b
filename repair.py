"""Repairs damaged test images with a run's generator (GAN inversion) and classical baselines.

    python repair.py --workdir RUN [--step latest|best|N] --task cs|inpaint_center|inpaint_pixels|
        inpaint_boxes|inpaint_mask|denoise|superres --dataset mnist|fashion_mnist|cifar10
        [--num_images 300] [--measurements 10,25,50,...] [--steps 1000] [--restarts 10] ...

The test images are the first ``--num_images`` of the dataset's test split in ``--data_dir``
(never seen in training). Writes ``--out`` (default ``RUN/repair/<task>-step<N>``):
results.json (every number and its protocol), grid_*.png (damaged | ours | baselines |
original), and for cs cs_mse.png (MSE against m). The defaults are Bora et al. 2017's protocol.
"""

import json
import os
import sys

import jax
import numpy as np
from absl import app, flags

from gan_jax import inversion, parallel, runs
from gan_jax import repair as repair_lib
from gan_jax.metrics import train_classifier

_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder written by launch.py.', required=True)
_STEP = flags.DEFINE_string('step', 'latest', 'latest, best, or a checkpoint step.')
_EMA = flags.DEFINE_bool('ema', None, 'Use the EMA generator (default: eval.use_ema).')
_TASK = flags.DEFINE_enum('task', None, repair_lib.TASKS, 'What damage to repair.', required=True)
_DATASET = flags.DEFINE_enum(
    'dataset', None, list(train_classifier.TEST_SETS), 'Whose test images.', required=True
)
_DATA_DIR = flags.DEFINE_string(
    'data_dir', None, 'Default: $GAN_JAX_SHARED_DATA or ../shared/data.'
)
_NUM_IMAGES = flags.DEFINE_integer('num_images', 300, 'First N test images.')
_OUT = flags.DEFINE_string('out', None, 'Output folder (default RUN/repair/<task>-step<N>).')
_BATCH = flags.DEFINE_integer('batch_size', 100, 'Images per compiled inversion call.')
# Inversion (defaults: Bora et al. 2017).
_STEPS = flags.DEFINE_integer('steps', 1000, 'Adam steps on z.')
_RESTARTS = flags.DEFINE_integer('restarts', 10, 'Random restarts per image.')
_LR = flags.DEFINE_float('lr', 0.01, 'Adam learning rate on z.')
_PRIOR = flags.DEFINE_float('prior_weight', 0.1, 'Weight of ||z||^2.')
_RESIDUAL = flags.DEFINE_enum('residual', 'sum', inversion.RESIDUALS, 'Squared residual: sum/mean.')
_FT_STEPS = flags.DEFINE_integer('fine_tune_steps', 0, 'Deep Generative Prior steps on G and z.')
_FT_LR = flags.DEFINE_float('fine_tune_lr', 1e-4, "Adam learning rate on G's weights.")
_SEED = flags.DEFINE_integer('seed', 0, 'Latents, masks, matrices, noise.')
# Task.
_MEASUREMENTS = flags.DEFINE_list(
    'measurements', [str(m) for m in repair_lib.BORA_MEASUREMENTS], 'cs: values of m.'
)
_NOISE_NORM = flags.DEFINE_float('noise_norm', 0.1, 'cs: expected norm of the noise.')
_NOISE_STD = flags.DEFINE_float('noise_std', None, 'Other tasks: noise std (denoise: 0.1, else 0).')
_ALPHA = flags.DEFINE_float('lasso_alpha', 0.1, 'cs: Lasso penalty.')
_MISSING = flags.DEFINE_float(
    'missing_fraction', 0.5, 'inpaint_center: block side fraction; inpaint_pixels: missing.'
)
_BOXES = flags.DEFINE_integer('num_boxes', 3, 'inpaint_boxes: boxes.')
_BOX_SIZE = flags.DEFINE_integer('box_size', 8, 'inpaint_boxes: side.')
_MASK = flags.DEFINE_string('mask', None, 'inpaint_mask: mask image, dark = missing.')
_FACTOR = flags.DEFINE_integer('factor', 2, 'superres: downsampling factor.')
_TV = flags.DEFINE_float('tv_weight', 0.1, 'denoise: TV baseline weight.')
_AVERAGE = flags.DEFINE_integer(
    'average_best', 0, 'k > 0: also score the mean of the k best restarts and k nearest images.'
)


def main(argv):
    del argv
    noise_std = _NOISE_STD.value
    if noise_std is None:
        noise_std = 0.1 if _TASK.value == 'denoise' else 0.0
    task_config = repair_lib.TaskConfig(
        task=_TASK.value,
        noise_std=noise_std,
        noise_norm=_NOISE_NORM.value,
        measurements=tuple(int(m) for m in _MEASUREMENTS.value),
        lasso_alpha=_ALPHA.value,
        missing_fraction=_MISSING.value,
        num_boxes=_BOXES.value,
        box_size=_BOX_SIZE.value,
        mask_path=_MASK.value,
        factor=_FACTOR.value,
        tv_weight=_TV.value,
        average_best=_AVERAGE.value,
        seed=_SEED.value,
    )
    inversion_config = inversion.InversionConfig(
        steps=_STEPS.value,
        restarts=_RESTARTS.value,
        learning_rate=_LR.value,
        prior_weight=_PRIOR.value,
        residual=_RESIDUAL.value,
        fine_tune_steps=_FT_STEPS.value,
        fine_tune_lr=_FT_LR.value,
        seed=_SEED.value,
    )
    run = runs.load_run(_WORKDIR.value, _STEP.value, _EMA.value)
    data_dir = _DATA_DIR.value or train_classifier.default_data_dir()
    test, _ = train_classifier.load_dataset(_DATASET.value, 'test', data_dir)
    train, _ = train_classifier.load_dataset(_DATASET.value, 'train', data_dir)
    if test.shape[1:] != tuple(run.setup.source.image_shape):
        raise ValueError(
            f'--dataset={_DATASET.value} has images of shape {test.shape[1:]}; the run '
            f'generates {tuple(run.setup.source.image_shape)}.'
        )
    test = test[: _NUM_IMAGES.value].astype(np.float32) / 255.0
    train = train.astype(np.float32) / 255.0
    inverter = repair_lib.make_inverter(run, inversion_config, parallel.make_mesh())
    results, panels = repair_lib.run_task(
        task_config, inverter, run.variables, test, train, batch_size=_BATCH.value
    )
    out = _OUT.value or os.path.join(_WORKDIR.value, 'repair', f'{_TASK.value}-step{run.step}')
    record = {
        'command': ' '.join(sys.argv),
        'run': {'workdir': os.path.abspath(_WORKDIR.value), 'step': run.step, 'ema': run.ema},
        'protocol': repair_lib.protocol(
            task_config,
            inversion_config,
            len(test),
            f'{train_classifier.TEST_SETS[_DATASET.value]}; the first {len(test)} used',
        ),
        'devices': f'{jax.device_count()} x {jax.devices()[0].platform}',
    }
    if jax.process_index() == 0:
        repair_lib.write_outputs(out, results, panels, record)
        print(json.dumps(results, indent=1)[:4000])
        print(f'Wrote {out}', file=sys.stderr)


if __name__ == '__main__':
    app.run(main)
