"""Standing statistics: the EMA generator's own BatchNorm statistics and spectral-norm vectors.

The EMA averages G's parameters only; its non-trainable state (the ``batch_stats``
collection) must come from its own weights, not the live G's. As BigGAN's standing
statistics (BigGAN-PyTorch ``accumulate_standing_stats``, 16 passes), G runs in train mode
on ``passes`` batches of latents with the EMA weights:

- a BatchNorm's running statistics become the average over the passes of the batch
  statistics it computes (written per device as training is: each device's shard, or the
  global batch with cross-replica BatchNorm; then averaged over the devices);
- a spectral-norm vector takes its train-mode power iteration once per pass, on the EMA
  weights, starting from the live G's vector;
- anything else (StyleGAN2's tracked w average) is the live G's, as the official
  StyleGAN2 code copies G's buffers into its EMA generator.

A running statistic is recognised by its module's ``momentum`` attribute (Flax BatchNorm,
``SlotBatchNorm``: ``new = momentum * old + (1 - momentum) * batch``), a power iteration
by its module being a ``SpectralNorm``.
"""

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import PartitionSpec as P

from gan_jax import builder, parallel
from gan_jax.models.layers import SpectralNorm
from gan_jax.sampling import sample_latents

AXIS = parallel.DATA_AXIS
PASSES = 16  # BigGAN-PyTorch's --num_standing_accumulations default.


def latent_key(seed):
    """The key of the passes' latents: pass k draws sample_latents(key, k * batch + i)."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), 0x57A9D)  # Not the eval latents'.


def _statistics_modules(generator, variables, z, labels):
    """({module path: momentum} of the modules that keep running averages in
    ``batch_stats``, {module path} of the spectral norms)."""
    momenta, iterated = {}, set()

    def record(next_fun, args, kwargs, context):
        momentum = getattr(context.module, 'momentum', None)
        if isinstance(momentum, float):
            momenta[tuple(context.module.path)] = momentum
        if isinstance(context.module, SpectralNorm):
            iterated.add(tuple(context.module.path))
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        jax.eval_shape(
            lambda v: generator.apply(v, z, labels, train=True, mutable=['batch_stats']),
            variables,
        )
    return momenta, iterated


class StandingStatistics:
    """``(params, batch_stats) -> batch_stats`` of the generator with weights ``params``.

    ``batch_stats`` (the live G's) gives the structure and the spectral-norm vectors the
    power iterations start from. Latents are keyed by ``seed`` and the pass's global
    indices; a conditional G (``num_classes``) gets balanced labels, index % num_classes.
    """

    def __init__(
        self,
        generator,
        mesh,
        *,
        z_dim,
        num_classes,
        batch_size,
        seed,
        passes=PASSES,
        z_distribution='normal',
    ):
        if batch_size % mesh.size:
            raise ValueError(
                f'standing statistics: batch size {batch_size} is not divisible by the '
                f'number of devices ({mesh.size}).'
            )
        self.protocol = {
            'method': 'standing statistics (BigGAN): BatchNorm statistics averaged over '
            'passes of the EMA weights in train mode, one power iteration per pass',
            'passes': passes,
            'batch_size': batch_size,
            'seed': seed,
        }
        local = batch_size // mesh.size
        key = latent_key(seed)

        def inputs(k):
            indices = k * batch_size + lax.axis_index(AXIS) * local + jnp.arange(local)
            labels = None if num_classes is None else indices % num_classes
            return sample_latents(key, indices, z_dim, distribution=z_distribution), labels

        def standing(params, batch_stats):
            z, labels = inputs(0)
            momenta, iterated = _statistics_modules(
                generator, {'params': params, 'batch_stats': batch_stats}, z, labels
            )
            flat = flax.traverse_util.flatten_dict(batch_stats)
            averaged = {k for k in flat if k[:-1] in momenta}
            kept = {k for k in flat if k not in averaged and k[:-1] not in iterated}
            zeros = {n: jnp.zeros_like(flat[n]) for n in averaged}

            def one_pass(carry, k):
                carried, total = carry
                z, labels = inputs(k)
                start = {
                    n: carried[n] if n in carried else flat[n] if n in kept else zeros[n]
                    for n in flat
                }
                _, updates = generator.apply(
                    {'params': params, 'batch_stats': flax.traverse_util.unflatten_dict(start)},
                    z,
                    labels,
                    train=True,
                    mutable=['batch_stats'],
                )
                new = flax.traverse_util.flatten_dict(updates['batch_stats'])
                # From zero, a running average holds (1 - momentum) * this batch's statistic.
                batch = {n: new[n] / (1 - momenta[n[:-1]]) for n in averaged}
                carried = {n: new[n] for n in carried}
                return (carried, {n: total[n] + batch[n] for n in averaged}), None

            # The sums vary over the devices (each sees its own latents) until the pmean.
            zero = {n: lax.pcast(jnp.zeros_like(flat[n]), AXIS, to='varying') for n in averaged}
            # The power-iteration vectors are carried through the passes (with
            # latents they do not depend on, but the same type as the sums).
            carried = {
                n: lax.pcast(v, AXIS, to='varying')
                for n, v in flat.items()
                if n not in averaged and n not in kept
            }
            (last, total), _ = lax.scan(one_pass, (carried, zero), jnp.arange(passes))
            out = {n: lax.pmean(v, AXIS) for n, v in last.items()}
            out.update({n: flat[n] for n in kept})
            out.update({n: lax.pmean(total[n] / passes, AXIS) for n in averaged})
            return flax.traverse_util.unflatten_dict(out)

        self._standing = parallel.jit_sharded(standing, mesh, in_specs=(P(), P()), out_specs=P())
        self._last = None  # (the arrays of the last call, its result)

    def __call__(self, params, batch_stats):
        """Called again with the very same arrays (a step's sample grid, then its
        evaluation), returns the statistics computed the first time."""
        if not jax.tree.leaves(batch_stats):  # No BatchNorm, no spectral norm: nothing to do.
            return batch_stats
        arrays = jax.tree.leaves((params, batch_stats))
        if self._last is not None and len(self._last[0]) == len(arrays):
            if all(a is b for a, b in zip(self._last[0], arrays, strict=True)):
                return self._last[1]
        result = self._standing(params, batch_stats)
        self._last = (arrays, result)
        return result


def for_run(config, generator, mesh, num_classes):
    """The run's EMA statistics, or None without an EMA: passes of G's training batch size
    (``train.g_batch_size``, else ``train.batch_size``; the batches its BatchNorm saw),
    latents keyed by ``eval.seed``."""
    if config.ema.name is None:
        return None
    return StandingStatistics(
        generator,
        mesh,
        z_dim=config.model.z_dim,
        num_classes=num_classes,
        batch_size=builder.g_batch_size(config),
        seed=config.eval.seed,
        z_distribution=config.model.z_distribution,
    )
