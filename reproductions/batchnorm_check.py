"""Mode statistics of a 2-D run's G at its checkpoints, BatchNorm by running vs batch statistics.

    PYTHONPATH=. python reproductions/batchnorm_check.py RUN_FOLDER STEP[,STEP...]

The evaluation normalises G's activations by the running statistics; this
prints, for the evaluation's latents (``eval.seed``; the first
``eval.num_samples`` rounded down to whole training batches), the mode
statistics with those and with each training batch's own statistics
(``train.batch_size`` samples, per packing slot), and each mode's share of
the samples nearest to it. A mode lost under the first and kept under the
second would be an artefact of the running statistics, not of G.
"""

import sys

import numpy as np

from gan_jax import runs
from gan_jax.data.mixtures import MIXTURES
from gan_jax.metrics.modes import mixture_mode_stats


def main(workdir, steps):
    for step in steps:
        run = runs.load_run(workdir, step=step, ema=False)
        mixture = MIXTURES[run.config.data.source]
        n, batch = run.config.eval.num_samples, run.config.train.batch_size
        z = run.sampler.latents(run.config.eval.seed, np.arange(n - n % batch))
        running = np.asarray(run.generator.apply(run.variables, z, None, train=False))
        batches = [
            run.generator.apply(run.variables, z[i : i + batch], None, train=True, mutable=True)[0]
            for i in range(0, len(z), batch)
        ]
        by_batch = np.concatenate([np.asarray(b) for b in batches])
        for name, points in (('running statistics', running), ('batch statistics', by_batch)):
            stats = mixture_mode_stats(points, mixture.centers, mixture.std)
            nearest = np.linalg.norm(points[:, None] - mixture.centers[None], axis=-1).argmin(1)
            shares = np.bincount(nearest, minlength=len(mixture.centers)) / len(points)
            print(
                f'step {step}, {name}: {stats["modes_covered"]} modes, '
                f'{stats["high_quality_fraction"]:.1%} high quality, '
                f'KL {stats["reverse_kl"]:.3f}; nearest-mode shares '
                + ' '.join(f'{s:.3f}' for s in shares)
            )


if __name__ == '__main__':
    main(sys.argv[1], [int(s) for s in sys.argv[2].split(',')])
