"""A finished (or running) run folder, loaded for use: its config, generator and weights.

    run = gan_jax.runs.load_run('runs/dcgan-...', step='best')
    images = run.generate(16, seed=0)  # uint8 images, or float points for 2-D data

The latents of ``generate(n, seed)`` are those the evaluator draws with
``eval.seed = seed``, so the samples are the ones a metric was computed on.
"""

import dataclasses
from typing import Any

import jax
import numpy as np

from gan_jax import builder, checkpoint, config, parallel, sampling


@dataclasses.dataclass
class LoadedRun:
    config: Any  # The run's resolved ConfigDict.
    setup: builder.Setup
    state: Any  # The restored TrainState.
    step: int
    ema: bool  # Whether ``variables`` hold the EMA generator's parameters.

    @property
    def variables(self):
        """The generator's Flax variables (EMA parameters when ``ema``)."""
        params = self.state.ema_params if self.ema else self.state.g_params
        return {'params': params, 'batch_stats': self.state.g_batch_stats}

    def generate(self, n, seed=0, labels=None):
        """``n`` samples of G in inference mode: uint8 images [n, H, W, C] or points [n, D]."""
        model = self.config.model
        z = sampling.sample_latents(
            jax.random.PRNGKey(seed), np.arange(n), model.z_dim, model.z_distribution
        )
        if labels is None and self.setup.num_classes is not None:
            labels = np.arange(n) % self.setup.num_classes
        out = self.setup.generator.apply(self.variables, z, labels, train=False)
        return np.asarray(sampling.images_to_uint8(out) if out.ndim == 4 else out)


def load_run(workdir, step='latest', ema=None):
    """The run in ``workdir`` at checkpoint ``step`` ('latest', 'best' or a number).

    ``ema`` None uses the EMA generator when the run keeps one (``eval.use_ema``).
    """
    run_config = config.load_run_config(workdir)
    setup = builder.build(run_config)
    mesh = parallel.make_mesh()
    state, restored_step = checkpoint.restore_from_run(workdir, step, setup.init_state, mesh)
    has_ema = state.ema_params is not None
    use_ema = (run_config.eval.use_ema if ema is None else ema) and has_ema
    if ema and not has_ema:
        raise ValueError(f'{workdir} keeps no EMA generator (ema.name is None); use ema=False.')
    state = parallel.to_host(state)
    return LoadedRun(run_config, setup, state, restored_step, use_ema)
