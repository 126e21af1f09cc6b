"""The truncation trick's effect on the metrics: a run's checkpoint evaluated at several
thresholds by gan_jax's Evaluator, the FID-IS curve drawn (BigGAN, Brock et al. 2019, Fig. 2).
"""

import json
import os

from gan_jax import builder, checkpoint, config, parallel, plots, standing
from gan_jax import evaluate as eval_lib


def run(
    workdir,
    *,
    thresholds,
    step='latest',
    ema=None,
    metrics='fid,is',
    num_samples=None,
    plot_path=None,
):
    """{'points': [{'truncation', 'metrics'}], 'protocol'}: ``metrics`` of checkpoint ``step``
    at each threshold (None: no truncation), same latent seed (eval.seed) for all.

    Writes the curve to ``plot_path`` (needs 'fid' and 'is') and the numbers beside it
    (same name, .json).
    """
    if not thresholds:
        raise ValueError('thresholds=[]: give one truncation threshold or more.')
    run_config = config.load_run_config(workdir)
    run_config.eval.metrics = metrics
    run_config.eval.best_metric = None
    if num_samples is not None:
        run_config.eval.num_samples = num_samples
    if ema is not None:
        run_config.eval.use_ema = ema
    setup = builder.build(run_config)
    mesh = parallel.make_mesh()
    state, restored_step = checkpoint.restore_from_run(workdir, step, setup.init_state, mesh)
    points, protocol = [], None
    ema_statistics = standing.for_run(run_config, setup.generator, mesh, setup.num_classes)
    for threshold in thresholds:
        evaluator = eval_lib.Evaluator(
            run_config,
            setup.generator,
            setup.source,
            mesh,
            setup.num_classes,
            ema_statistics=ema_statistics,
            truncation=threshold,
        )
        result = evaluator.evaluate(state, restored_step)
        points.append({'truncation': threshold, 'metrics': result['metrics']})
        protocol = {k: v for k, v in result['protocol'].items() if k != 'truncation'}
    result = {'points': points, 'protocol': protocol}
    if plot_path:
        names = list(points[0]['metrics'])
        fid = next((n for n in names if n.startswith('FID')), None)
        score = next((n for n in names if n.startswith('IS') and not n.endswith('_std')), None)
        if fid is None or score is None:
            raise ValueError(f'metrics={metrics!r}: the FID-IS curve needs fid and is.')
        plots.plot_truncation_curve(
            [(p['truncation'], p['metrics']) for p in points],
            fid,
            score,
            plot_path,
            title=f'{os.path.basename(os.path.normpath(workdir))} step {restored_step}',
        )
        with open(os.path.splitext(plot_path)[0] + '.json', 'w') as f:
            json.dump(result, f, indent=2)
    return result
