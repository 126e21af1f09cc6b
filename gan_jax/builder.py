"""A run's static parts, built from its config: data, models, optimisers, objective, update.

``build(config)`` is shared by training, evaluation and the benchmarks; bad
settings fail here, before anything is compiled.
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from gan_jax import data as data_lib
from gan_jax import models, parallel, schedules
from gan_jax import objective as obj_lib
from gan_jax import state as state_lib
from gan_jax import step as step_lib


class Setup(NamedTuple):
    """Everything static a run is made of, built from its config."""

    source: Any  # data.ImageSource (or a 2-D mixture); a dry run's: data.SourceInfo
    generator: Any
    discriminator: Any
    g_tx: Any
    d_tx: Any
    objective: obj_lib.Objective
    num_classes: int | None  # The models' classes; None when unconditional.
    init_state: Callable  # () -> TrainState

    def make_update(self, config):
        """The per-device update (before step.compile_update)."""
        return step_lib.Update(
            generator=self.generator,
            discriminator=self.discriminator,
            g_tx=self.g_tx,
            d_tx=self.d_tx,
            objective=self.objective,
            z_dim=config.model.z_dim,
            num_classes=self.num_classes,
            ema_decay=schedules.ema_decay(config.ema, g_batch_size(config)),
            g_batch_size=config.train.g_batch_size,
            dtype=step_lib.compute_dtype(config.train.compute_dtype),
            simultaneous=config.train.simultaneous,
            g_steps=config.train.g_steps,
            shared_latents=config.train.shared_latents,
            z_distribution=config.model.z_distribution,
            grad_accum=config.train.grad_accum,
        )

    def make_train_steps(self, config):
        """``train.steps_per_call`` updates per call, reading host batches or the device's
        dataset (``data.on_device``); see step.make_train_steps."""
        return step_lib.make_train_steps(
            self.make_update(config),
            steps_per_call=config.train.steps_per_call,
            n_dis=config.train.n_dis,
            device_batch=config.train.batch_size if config.data.on_device else None,
            grad_accum=config.train.grad_accum,
        )


def g_batch_size(config):
    """Fakes per G step over all devices: ``train.g_batch_size``, else D's batch size."""
    return config.train.g_batch_size or config.train.batch_size


def model_config(config, num_classes):
    """The model config plus what the models need from the data and the mesh."""
    resolved = config.model.copy_and_resolve_references()
    with resolved.unlocked():
        resolved.bn_axis_name = parallel.DATA_AXIS
        resolved.num_classes = num_classes
        resolved.pack = config.train.pack
    return resolved


def build(config, source=None):
    """Builds the run's ``Setup``; bad settings fail here, before anything is compiled.

    ``source``: the data (default: the config's, opened); anything with ``image_shape`` and
    ``num_classes``, such as the ``data.SourceInfo`` of a dry run, builds everything else.
    """
    if source is None:
        source = data_lib.get_source(config.data, resolution=config.data.resolution)
    conditional = config.model.conditioning is not None
    num_classes = source.num_classes if conditional else None
    obj_lib.validate(
        config,
        data_shape=source.image_shape,
        num_classes=source.num_classes,
        local_batches=(
            config.train.batch_size // jax.device_count(),
            g_batch_size(config) // jax.device_count(),
        ),
    )
    objective = obj_lib.build_objective(config)
    step_lib.compute_dtype(config.train.compute_dtype)  # Checks the name.
    schedules.ema_decay(config.ema, config.train.batch_size)  # Checks ema.name.
    generator, discriminator = models.build_models(
        model_config(config, num_classes), source.image_shape
    )
    g_tx, d_tx = state_lib.make_optimizers(
        config.optim,
        steps=config.train.steps,
        n_dis=config.train.n_dis,
        differentiable_d=objective.unroll_steps > 0,
        lazy_intervals=(config.reg.pl_every_g_steps, config.reg.penalty_every_d_steps),
    )
    *spatial, channels = source.image_shape
    init_state = functools.partial(
        state_lib.create_train_state,
        generator,
        discriminator,
        g_tx,
        d_tx,
        z_dim=config.model.z_dim,
        d_input_shape=(*spatial, channels * objective.pack),
        num_classes=num_classes,
        seed=config.seed,
        use_ema=config.ema.name is not None,
        aux=objective.init_aux(),
    )
    return Setup(source, generator, discriminator, g_tx, d_tx, objective, num_classes, init_state)


def describe(config, setup):
    """The dry-run report: data, parameter counts, ingredients, devices and batch split."""
    source, objective = setup.source, setup.objective
    shapes = jax.eval_shape(setup.init_state)
    n_dev = jax.device_count()
    size = source.size if isinstance(source, data_lib.SourceInfo) else len(source)
    examples = 'size unknown (not prepared here)' if size is None else f'{size} examples'
    described = []
    for side, main, reg in (
        ('D', objective.d_terms, objective.d_reg),
        ('G', objective.g_terms, objective.g_reg),
    ):
        described += [f'{side} {t.name} x {t.weight:g}' for t in main]
        described += [
            f'{side} {t.name} x {t.weight:g} (own step every {reg.every})' for t in reg.terms
        ]
    terms = ', '.join(described)
    return '\n'.join(
        [
            f'data: {source.name}, {examples} of shape {source.image_shape}, '
            f'{setup.num_classes or "no"} classes used',
            f'loss: {config.train.loss}; regularisers: {terms or "none"}; augmentation: '
            f'{config.augment.name}; pack: {objective.pack}; unroll: {objective.unroll_steps}'
            + (
                f'; style mixing: {objective.style_mixing_prob:g}'
                if objective.style_mixing_prob
                else ''
            ),
            f'G params: {models.count_params(shapes.g_params):,}',
            f'D params: {models.count_params(shapes.d_params):,}',
            f'processes: {jax.process_count()}, devices: {n_dev} '
            f'({jax.local_device_count()} per process, {jax.devices()[0].platform})',
            f'batch: {config.train.batch_size} global, {config.train.batch_size // n_dev} per '
            f'device, {config.train.n_dis} D step(s) per G step, {g_batch_size(config)} fakes '
            'per G step'
            + (
                f', each step in {config.train.grad_accum} accumulated micro-batches'
                if config.train.grad_accum > 1
                else ''
            ),
        ]
    )
