"""A finished (or running) run folder, loaded for use: its config, generator and weights.

    run = gan_jax.load_run('runs/dcgan-...', step='best')
    images = run.generate(16, seed=0)  # uint8 [16, H, W, C], or float points for 2-D data

Sample ``i`` of ``generate(n, seed)`` is sample ``i`` that the evaluator draws with
``eval.seed = seed`` and that ``sample.py --seed`` writes (see gan_jax/generation.py).
"""

import dataclasses
import functools
from typing import Any

import numpy as np

from gan_jax import builder, checkpoint, config, generation, parallel, standing
from gan_jax.models.stylegan2 import with_truncation_psi


@dataclasses.dataclass
class LoadedRun:
    config: Any  # The run's resolved ConfigDict.
    setup: builder.Setup
    state: Any  # The restored TrainState (on the host).
    step: int
    ema: bool  # Whether ``variables`` hold the EMA generator's parameters.
    mesh: Any  # The devices ``generate`` shards over.
    truncation_psi: float = 1.0  # StyleGAN2's w truncation in ``generator`` (1: none).

    @property
    def generator(self):
        """G, a Flax module: ``generator.apply(variables, z, labels, train=False)``."""
        return with_truncation_psi(self.setup.generator, self.truncation_psi)

    @property
    def num_classes(self):
        """G's classes, None when unconditional."""
        return self.setup.num_classes

    @functools.cached_property
    def variables(self):
        """The generator's Flax variables: G's own, or with ``ema`` the EMA parameters with
        their own standing statistics (as the evaluator uses them, gan_jax/standing.py)."""
        if not self.ema:
            return {'params': self.state.g_params, 'batch_stats': self.state.g_batch_stats}
        ema_statistics = standing.for_run(self.config, self.generator, self.mesh, self.num_classes)
        stats = ema_statistics(self.state.ema_params, self.state.g_batch_stats)
        return {'params': self.state.ema_params, 'batch_stats': parallel.to_host(stats)}

    @functools.cached_property
    def sampler(self):
        """The sharded sampling program, ``eval.batch_size`` samples per call."""
        return generation.Sampler(
            self.generator,
            self.config.model.z_dim,
            self.num_classes,
            self.mesh,
            self.config.eval.batch_size,
            z_distribution=self.config.model.z_distribution,
        )

    @functools.cached_property
    def device_variables(self):
        """``variables`` replicated over the mesh, what the sampler's calls take."""
        return self.sampler.put_variables(self.variables)

    def generate(self, n, seed=0, labels=None, truncation=None):
        """``n`` samples of G in inference mode as numpy: uint8 images [n, H, W, C] in
        [0, 255] (quantised as a saved PNG), or float32 points [n, 2] for 2-D data.

        ``labels`` [n] (conditional G; default: all classes in turn); ``truncation``:
        BigGAN's truncation threshold for the latents (sampling.sample_latents).
        """
        if labels is None:
            return np.concatenate(
                [
                    out
                    for _, out, _ in self.sampler.batches(
                        self.device_variables, n, seed, truncation=truncation, progress=False
                    )
                ]
            )
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f'labels of shape {labels.shape}: expected ({n},), one per sample.')
        generation.default_classes(self.num_classes, np.unique(labels))  # Checks them.
        z = self.sampler.latents(seed, np.arange(n), truncation)
        return self.sampler.apply(self.device_variables, z, labels)


def load_run(workdir, step='latest', ema=None, truncation_psi=None):
    """The run in ``workdir`` at checkpoint ``step`` ('latest', 'best' or a number).

    ``ema`` None uses the EMA generator when the run keeps one (``eval.use_ema``).
    ``truncation_psi``: a StyleGAN2 generator's w truncation (None: ``eval.truncation_psi``).
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
    psi = run_config.eval.truncation_psi if truncation_psi is None else truncation_psi
    with_truncation_psi(setup.generator, psi)  # Checks it before anything runs.
    return LoadedRun(run_config, setup, state, restored_step, use_ema, mesh, psi)
