"""Learning-rate and generator-EMA schedules, chosen by config name.

Both are functions of a step counter inside the compiled update, so a resumed
run continues them exactly (the counters live in the train state).
"""

from collections.abc import Callable

import jax.numpy as jnp
import optax


def _constant(lr, total_updates, decay_start_step):
    del total_updates, decay_start_step
    return lr


def _linear_decay(lr, total_updates, decay_start_step):
    """lr until ``decay_start_step``, then linearly to 0 at ``total_updates`` (WGAN-GP, SNGAN)."""
    return optax.linear_schedule(
        lr,
        0.0,
        transition_steps=max(total_updates - decay_start_step, 1),
        transition_begin=decay_start_step,
    )


LR_SCHEDULES: dict[str, Callable] = {'constant': _constant, 'linear_decay': _linear_decay}


def learning_rates(optim_config, *, steps: int, n_dis: int):
    """(G, D) learning rates or schedules; D's counts its own updates (n_dis per G step)."""
    c = optim_config
    if c.lr_schedule not in LR_SCHEDULES:
        raise ValueError(
            f'optim.lr_schedule={c.lr_schedule!r} is not one of {sorted(LR_SCHEDULES)}.'
        )
    make = LR_SCHEDULES[c.lr_schedule]
    return (
        make(c.g_lr, steps, c.decay_start_step),
        make(c.d_lr, steps * n_dis, c.decay_start_step * n_dis),
    )


def _decay(ema_config, batch_size):
    """A fixed decay; before ``ema.start_step`` the EMA copies G (BigGAN's ema_start).

    With ``ema.warmup`` the decay is min(decay, (1 + t) / (10 + t)), TensorFlow's
    ExponentialMovingAverage num_updates rule, so early averages forget the
    random initialisation quickly.
    """
    del batch_size
    c = ema_config

    def decay(step):
        d = jnp.asarray(c.decay, jnp.float32)
        if c.warmup:
            t = step.astype(jnp.float32)
            d = jnp.minimum(d, (1.0 + t) / (10.0 + t))
        return jnp.where(step < c.start_step, 0.0, d)

    return decay


def _half_life(ema_config, batch_size):
    """StyleGAN2: a half-life of ``ema.half_life_kimg`` thousand images.

    With ``ema.rampup`` the half-life is at most rampup * images seen so far.
    """
    c = ema_config

    def decay(step):
        half_life = jnp.asarray(c.half_life_kimg * 1000.0, jnp.float32)
        if c.rampup is not None:
            half_life = jnp.minimum(half_life, step.astype(jnp.float32) * batch_size * c.rampup)
        return 0.5 ** (batch_size / jnp.maximum(half_life, 1e-8))

    return decay


EMA_SCHEDULES: dict[str, Callable] = {'decay': _decay, 'half_life': _half_life}


def ema_decay(ema_config, batch_size: int) -> Callable | None:
    """step -> decay of the EMA update after that G step; None when ``ema.name`` is None."""
    if ema_config.name is None:
        return None
    if ema_config.name not in EMA_SCHEDULES:
        raise ValueError(
            f'ema.name={ema_config.name!r} is not one of {sorted(EMA_SCHEDULES)} or None.'
        )
    return EMA_SCHEDULES[ema_config.name](ema_config, batch_size)
