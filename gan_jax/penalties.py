"""Gradient penalties on the discriminator: where D's input gradient is taken, and its cost.

A penalty is E[cost(||grad_x D(x)||)] over points x drawn from the real and fake
batches. ``GradientPenalty`` holds the two choices that tell the published ones
apart; ``PENALTIES`` names them for the config (``reg.penalty``). To add one,
write its ``at`` and ``cost`` and register it here (plus a test).

Per-example gradients come from one ``jax.grad`` of the summed logits: when D's
examples do not interact (no BatchNorm in train mode, as WGAN-GP prescribes),
d(sum_i D(x_i))/dx_j = dD(x_j)/dx_j. The gradient is taken inside the compiled
step on each device's examples; the trainer averages the result over devices.
Random points are drawn per example from ``keys`` (one per example, keyed by its
global index) and batch statistics use ``batch_mean`` (a mean over all
devices), so a penalty on N devices equals the one on a single device.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


class GradientPenalty(NamedTuple):
    # (real, fake, keys, batch_mean) -> the points where D's gradient is penalised.
    at: Callable[..., Array]
    # Per-example gradient norms [B] -> per-example cost [B].
    cost: Callable[[Array], Array]
    # The points are (built from) fakes, so D sees them with the fake labels.
    on_fakes: bool = False


def input_gradient_norms(discriminate: Callable[[Array], Array], x: Array) -> Array:
    """||dD(x_i)/dx_i|| per example, [B]."""
    grads = jax.grad(lambda inputs: jnp.sum(discriminate(inputs)))(x)
    squared = jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=1)
    # The epsilon keeps sqrt differentiable where a gradient is exactly zero.
    return jnp.sqrt(squared + 1e-12)


def penalty_value(
    penalty: GradientPenalty,
    discriminate_real,
    discriminate_fake,
    real: Array,
    fake: Array,
    keys: Array,
    batch_mean=jnp.mean,
) -> Array:
    """The batch mean of ``penalty``; ``discriminate_*`` apply D with real or fake labels."""
    points = penalty.at(real, fake, keys, batch_mean)
    discriminate = discriminate_fake if penalty.on_fakes else discriminate_real
    return jnp.mean(penalty.cost(input_gradient_norms(discriminate, points)))


def _per_example_uniform(keys: Array, shape=()) -> Array:
    """U(0, 1) of shape [B, *shape], one draw per example key."""
    return jax.vmap(lambda key: jax.random.uniform(key, shape))(keys)


def _broadcast(eps: Array, x: Array) -> Array:
    return eps.reshape(eps.shape + (1,) * (x.ndim - 1))


def interpolates(real: Array, fake: Array, keys: Array, batch_mean=jnp.mean) -> Array:
    """eps * real + (1 - eps) * fake, eps ~ U(0, 1) per example (Gulrajani 2017)."""
    del batch_mean
    eps = _broadcast(_per_example_uniform(keys), real)
    return eps * real + (1.0 - eps) * fake


def perturbed_reals(real: Array, fake: Array, keys: Array, batch_mean=jnp.mean) -> Array:
    """DRAGAN (Kodali 2017, authors' code): reals moved toward x + 0.5 std(x) U(0, 1).

    x_p = x + 0.5 * std(batch) * u, u ~ U(0, 1) per pixel, then a random point
    alpha ~ U(0, 1) per example on the segment from x to x_p. The std is over
    all pixels of the global batch.
    """
    del fake
    std = jnp.sqrt(batch_mean(real**2) - batch_mean(real) ** 2)
    noise = _per_example_uniform(jax.vmap(lambda k: jax.random.fold_in(k, 0))(keys), real.shape[1:])
    alpha = _broadcast(
        _per_example_uniform(jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)), real
    )
    return real + alpha * (0.5 * std * noise)


def _reals(real, fake, keys, batch_mean=jnp.mean):
    del fake, keys, batch_mean
    return real


def _fakes(real, fake, keys, batch_mean=jnp.mean):
    del real, keys, batch_mean
    return fake


def _two_sided(norms):
    return (norms - 1.0) ** 2


def _one_sided(norms):
    return jax.nn.relu(norms - 1.0) ** 2


def _half_squared(norms):
    """||g||^2 / 2, so ``reg.penalty_weight`` is Mescheder's gamma."""
    return 0.5 * norms**2


PENALTIES: dict[str, GradientPenalty] = {
    # WGAN-GP (Gulrajani et al. 2017): two-sided, on random interpolates; weight 10.
    'wgan_gp': GradientPenalty(interpolates, _two_sided),
    # One-sided variant of the same paper's appendix / Petzka et al. 2018.
    'one_sided_gp': GradientPenalty(interpolates, _one_sided),
    # DRAGAN (Kodali et al. 2017): two-sided around perturbed reals; weight 10.
    'dragan': GradientPenalty(perturbed_reals, _two_sided),
    # R1 / R2 (Mescheder et al. 2018): gamma/2 E||grad D||^2 on reals / fakes.
    'r1': GradientPenalty(_reals, _half_squared),
    'r2': GradientPenalty(_fakes, _half_squared, on_fakes=True),
}


def get_penalty(name: str) -> GradientPenalty:
    try:
        return PENALTIES[name]
    except KeyError:
        raise ValueError(
            f'reg.penalty={name!r} is not one of {sorted(PENALTIES)} '
            '(or None for no gradient penalty).'
        ) from None
