"""The update: ``n_dis`` discriminator steps, then one generator step, one program.

Written for one device (pmap style: a named batch axis, explicit ``lax.pmean``)
and compiled as ``jax.jit(jax.shard_map(...))`` over a 1-D device mesh.

Gradients: inside ``shard_map`` the gradient with respect to a replicated
parameter is already summed over the batch axis, so "grad of the local loss, then
pmean the grads" would give n_devices times the gradient. We take the gradient
of ``lax.pmean(local_loss)`` instead, which is the exact global-batch gradient
(also with cross-replica BatchNorm). ``tests/test_step.py`` guards this.

Randomness: example ``i`` of the global batch at step ``t`` draws its latent from
``fold_in(fold_in(rng, t), i)``, so the same seed and global batch give the same
latents on 1 or N devices and hosts.
"""


import jax
import jax.numpy as jnp
import optax
from jax import lax
from jax.sharding import PartitionSpec as P

from gan_jax import parallel

AXIS = parallel.DATA_AXIS


def images_to_float(images):
    """uint8 [0, 255] -> float32 [-1, 1]; done on device to send 4x fewer bytes."""
    return images.astype(jnp.float32) / 127.5 - 1.0


def images_to_uint8(images):
    """float [-1, 1] -> uint8 (clipped, rounded), the inverse of images_to_float.

    Generated images go through it before feature extraction and before being
    saved, so metrics see what a saved PNG shows.
    """
    return jnp.clip(jnp.round((images + 1.0) * 127.5), 0, 255).astype(jnp.uint8)


def sample_latents(key, global_indices, z_dim):
    """One standard-normal latent per example, keyed by its global index."""
    return jax.vmap(
        lambda i: jax.random.normal(jax.random.fold_in(key, i), (z_dim,)))(global_indices)


def _global_indices(local_batch):
    """Indices of this device's examples within the global batch."""
    return lax.axis_index(AXIS) * local_batch + jnp.arange(local_batch)


def _apply_train(model, params, batch_stats, x):
    """Forward pass in train mode; returns (output, new batch statistics)."""
    out, updates = model.apply({'params': params, 'batch_stats': batch_stats}, x,
                               train=True, mutable=['batch_stats'])
    return out, updates.get('batch_stats', {})


def _ema(ema_params, params, decay):
    if ema_params is None:
        return None
    return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema_params, params)


def make_update(*, generator, discriminator, g_tx, d_tx, loss, z_dim, ema_decay):
    """Returns the per-device update ``(state, batch) -> (state, metrics)``.

    ``batch['image']`` is uint8 of shape (n_dis, local_batch, H, W, C): one real
    batch per discriminator step, as in compare_gan and mimicry.
    """

    def d_step(carry, j, real, *, g_params, g_batch_stats, key):
        """Discriminator step ``j`` on its own real batch; carry = D's params, stats, opt."""
        d_params, d_batch_stats, d_opt_state = carry
        local_batch = real.shape[0]
        z = sample_latents(jax.random.fold_in(key, j), _global_indices(local_batch), z_dim)
        fake, _ = _apply_train(generator, g_params, g_batch_stats, z)
        fake = lax.stop_gradient(fake)

        def loss_fn(params):
            real_logits, stats = _apply_train(discriminator, params, d_batch_stats, real)
            fake_logits, stats = _apply_train(discriminator, params, stats, fake)
            local_loss = loss.discriminator(real_logits, fake_logits)
            return lax.pmean(local_loss, AXIS), (stats, real_logits, fake_logits)

        (d_loss, (stats, real_logits, fake_logits)), grads = jax.value_and_grad(
            loss_fn, has_aux=True)(d_params)
        updates, d_opt_state = d_tx.update(grads, d_opt_state, d_params)
        d_params = optax.apply_updates(d_params, updates)
        # Per-device BatchNorm statistics differ between devices; averaging them
        # keeps the state replicated (a no-op for cross-replica BatchNorm).
        stats = lax.pmean(stats, AXIS)
        metrics = {
            'd_loss': d_loss,
            'd_real_logit': lax.pmean(jnp.mean(real_logits), AXIS),
            'd_fake_logit': lax.pmean(jnp.mean(fake_logits), AXIS),
        }
        return (d_params, stats, d_opt_state), metrics

    def update(state, batch):
        step_key = jax.random.fold_in(state.rng, state.step)
        d_key, g_key = jax.random.split(step_key)
        reals = images_to_float(batch['image'])
        n_dis, local_batch = reals.shape[:2]

        # A Python loop, i.e. straight-line code in the one compiled program: inside
        # lax.scan (even unrolled, the body stays a called computation) XLA:CPU picks
        # a ~20x slower algorithm for the strided-conv weight gradients (DCGAN-32,
        # batch 64: 9.0 s vs 0.52 s per update). n_dis is small, so compile time
        # grows little.
        carry = (state.d_params, state.d_batch_stats, state.d_opt_state)
        d_metrics = []
        for j in range(n_dis):
            carry, metrics = d_step(carry, j, reals[j], g_params=state.g_params,
                                    g_batch_stats=state.g_batch_stats, key=d_key)
            d_metrics.append(metrics)
        d_params, d_batch_stats, d_opt_state = carry

        z = sample_latents(g_key, _global_indices(local_batch), z_dim)

        def g_loss_fn(params):
            fake, g_stats = _apply_train(generator, params, state.g_batch_stats, z)
            # D runs in train mode as in its own step; its statistics are discarded.
            fake_logits, _ = _apply_train(discriminator, d_params, d_batch_stats, fake)
            real_logits = None
            if loss.generator_needs_real:
                real_logits, _ = _apply_train(discriminator, d_params, d_batch_stats,
                                              reals[-1])
            local_loss = loss.generator(fake_logits, real_logits)
            return lax.pmean(local_loss, AXIS), g_stats

        (g_loss, g_batch_stats), g_grads = jax.value_and_grad(
            g_loss_fn, has_aux=True)(state.g_params)
        g_updates, g_opt_state = g_tx.update(g_grads, state.g_opt_state, state.g_params)
        g_params = optax.apply_updates(state.g_params, g_updates)

        new_state = state.replace(
            step=state.step + 1,
            g_params=g_params,
            g_batch_stats=lax.pmean(g_batch_stats, AXIS),
            d_params=d_params,
            d_batch_stats=d_batch_stats,
            g_opt_state=g_opt_state,
            d_opt_state=d_opt_state,
            ema_params=_ema(state.ema_params, g_params, ema_decay),
        )
        metrics = {k: jnp.mean(jnp.stack([m[k] for m in d_metrics])) for k in d_metrics[0]}
        metrics['g_loss'] = g_loss
        return new_state, metrics

    return update


def compile_update(update, mesh):
    """``jax.jit(jax.shard_map(update))``: state replicated, batch split on axis 1."""
    sharded = jax.shard_map(update, mesh=mesh, in_specs=(P(), P(None, AXIS)),
                            out_specs=(P(), P()))
    return jax.jit(sharded, donate_argnums=0)
