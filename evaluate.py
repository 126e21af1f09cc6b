"""Evaluates a checkpoint of a run folder written by launch.py.

    python evaluate.py --workdir RUN [--step latest|best|N]
                       [--metrics fid,kid,is,prdc,intra_fid,modes]
                       [--num_samples N] [--extractor NAME] [--[no]ema] [--truncation_psi PSI]

Writes ``RUN/eval_<step>.json`` (``eval_<step>-2.json``, ... if that step was
evaluated before: nothing is overwritten) and prints it.
"""

import json
import sys

import jax
from absl import app, flags

from gan_jax import builder, checkpoint, config, parallel
from gan_jax import evaluate as eval_lib

_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder written by launch.py.', required=True)
_STEP = flags.DEFINE_string('step', 'latest', 'latest, best, or a checkpoint step.')
_METRICS = flags.DEFINE_string(
    'metrics',
    None,
    "Comma-separated subset of fid,kid,is,prdc,intra_fid,modes (default: the run's eval.metrics).",
)
_NUM_SAMPLES = flags.DEFINE_integer(
    'num_samples', None, 'Generated images (default: eval.num_samples).'
)
_EXTRACTOR = flags.DEFINE_string('extractor', None, 'Feature extractor (default: eval.extractor).')
_EMA = flags.DEFINE_bool('ema', None, 'Use the EMA generator (default: eval.use_ema).')
_PSI = flags.DEFINE_float(
    'truncation_psi', None, "StyleGAN2's w truncation (default: eval.truncation_psi)."
)


def main(argv):
    del argv
    run_config = config.load_run_config(_WORKDIR.value)
    for key, flag in (
        ('metrics', _METRICS),
        ('num_samples', _NUM_SAMPLES),
        ('extractor', _EXTRACTOR),
        ('use_ema', _EMA),
        ('truncation_psi', _PSI),
    ):
        if flag.value is not None:
            run_config.eval[key] = flag.value
    setup = builder.build(run_config)
    mesh = parallel.make_mesh()
    evaluator = eval_lib.Evaluator(
        run_config, setup.generator, setup.source, mesh, setup.num_classes
    )
    state, step = checkpoint.restore_from_run(_WORKDIR.value, _STEP.value, setup.init_state, mesh)
    result = evaluator.evaluate(state, step)
    if jax.process_index() == 0:
        path = eval_lib.write_result(_WORKDIR.value, result)
        print(json.dumps(result, indent=2))
        print(f'Wrote {path}', file=sys.stderr)


if __name__ == '__main__':
    app.run(main)
