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

Mixed precision (``train.compute_dtype='bfloat16'``): G and D compute in
bfloat16 while parameters, optimiser state, BatchNorm/spectral-norm statistics,
losses and gradients stay float32 (see ``_apply_train``).
"""


import functools

import jax
import jax.numpy as jnp
import optax
from jax import lax
from jax.sharding import PartitionSpec as P

from gan_jax import objective as obj_lib
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


def inputs_to_float(data):
    """A batch as the models see it: uint8 images to [-1, 1]; float data (2-D points) as is."""
    return images_to_float(data) if data.dtype == jnp.uint8 else data


def sample_latents(key, global_indices, z_dim):
    """One standard-normal latent per example, keyed by its global index."""
    return jax.vmap(
        lambda i: jax.random.normal(jax.random.fold_in(key, i), (z_dim,)))(global_indices)


def sample_labels(key, global_indices, num_classes):
    """Uniform class labels for fakes, keyed like the latents; None when unconditional."""
    if num_classes is None:
        return None
    return jax.vmap(lambda i: jax.random.randint(
        jax.random.fold_in(key, i), (), 0, num_classes))(global_indices)


def _global_indices(local_batch):
    """Indices of this device's examples within the global batch."""
    return lax.axis_index(AXIS) * local_batch + jnp.arange(local_batch)


def _example_keys(key, local_batch):
    """One key per example, by global index: the same draw on 1 or N devices."""
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(_global_indices(local_batch))


def _global_mean(x):
    return lax.pmean(jnp.mean(x), AXIS)


COMPUTE_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def compute_dtype(name):
    """``train.compute_dtype`` -> the dtype G and D compute in."""
    try:
        return COMPUTE_DTYPES[name]
    except KeyError:
        raise ValueError(f'train.compute_dtype={name!r} is not one of '
                         f'{sorted(COMPUTE_DTYPES)}.') from None


def _cast_floats(tree, dtype):
    return jax.tree.map(
        lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


def _apply_train(model, params, batch_stats, x, labels, dtype=jnp.float32):
    """Forward pass in train mode; returns (output, new batch statistics).

    With a ``dtype`` other than float32, the parameters and inputs are cast to it
    so every layer computes in it (Flax layers compute in their inputs' dtype);
    the gradient flows back through the cast to the float32 parameters. Outputs
    return as float32, so losses and penalties are float32, and the statistics
    keep their stored dtype (BatchNorm reduces in float32 anyway).
    """
    if dtype != jnp.float32:
        params, x = _cast_floats(params, dtype), _cast_floats(x, dtype)
    out, updates = model.apply({'params': params, 'batch_stats': batch_stats}, x, labels,
                               train=True, mutable=['batch_stats'])
    stats = jax.tree.map(lambda new, old: new.astype(old.dtype),
                         updates.get('batch_stats', {}), batch_stats)
    return _cast_floats(out, jnp.float32), stats


def split_logits(d_output):
    """D's output -> (logits, class logits or None); only an ACGAN head returns both."""
    return d_output if isinstance(d_output, tuple) else (d_output, None)


def _ema(ema_params, params, decay):
    return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema_params, params)


def _flat_metrics(tree):
    """{'augment': {'p': x}} -> {'augment_p': x}: the ingredients' state, for logging."""
    return {'_'.join(str(getattr(k, 'key', k)) for k in path): leaf
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def make_update(*, generator, discriminator, g_tx, d_tx, objective, z_dim, num_classes,
                ema_decay, g_local_batch=None, dtype=jnp.float32):
    """Returns the per-device update ``(state, batch) -> (state, metrics)``.

    ``batch['image']`` has shape (n_dis, local_batch, ...): one real batch per
    discriminator step, as in compare_gan and mimicry; ``batch['label']`` holds
    their labels (used when the models are class-conditional, ``num_classes``).
    ``objective`` (objective.py) says what D and G minimise; ``ema_decay`` maps
    the step to the EMA decay, or is None without an EMA. ``g_local_batch`` is
    the per-device number of fakes in the G step (SNGAN: twice D's); None: D's.
    ``dtype`` is what G and D compute in (``compute_dtype``).
    """
    loss = objective.loss.with_batch_mean(_global_mean)
    apply_train = functools.partial(_apply_train, dtype=dtype)

    def to_d_input(images, key, aux):
        """Augmented, then packed: how D sees real and fake images alike."""
        keys = _example_keys(key, images.shape[0])
        return obj_lib.pack(objective.augmentation.apply(images, keys, aux), objective.pack)

    def discriminate(d_params, d_batch_stats, x, labels):
        """D's (logits, class logits), its batch statistics discarded."""
        return split_logits(apply_train(discriminator, d_params, d_batch_stats, x, labels)[0])

    def d_objective(d_params, d_batch_stats, real, fake, real_labels, fake_labels, z,
                    regenerate, key, d_index, aux):
        """D's local loss: the GAN loss plus its regularisers, each value for the logs."""
        real_out, stats = apply_train(discriminator, d_params, d_batch_stats, real, real_labels)
        fake_out, stats = apply_train(discriminator, d_params, stats, fake, fake_labels)
        (real_logits, real_cls), (fake_logits, fake_cls) = (split_logits(real_out),
                                                            split_logits(fake_out))
        batch = obj_lib.DiscriminatorBatch(
            discriminate=lambda x, labels: discriminate(d_params, stats, x, labels)[0],
            real=real, fake=fake, real_labels=real_labels, fake_labels=fake_labels,
            real_logits=real_logits, fake_logits=fake_logits, real_class_logits=real_cls,
            fake_class_logits=fake_cls, z=z, regenerate=regenerate,
            example_keys=lambda k: _example_keys(k, real.shape[0]), global_mean=_global_mean,
            global_batch=real.shape[0] * lax.axis_size(AXIS), key=key, d_index=d_index,
            aux=aux)
        aux = objective.update_aux(aux, batch)
        batch = batch._replace(aux=aux)
        values = {'gan': loss.discriminator(real_logits, fake_logits)}
        for i, term in enumerate(objective.d_terms):
            values[term.name] = term.fn(batch._replace(key=jax.random.fold_in(key, i)))
        total = values['gan'] + sum(t.weight * values[t.name] for t in objective.d_terms)
        return total, (stats, aux, values, real_logits, fake_logits)

    def d_step(carry, j, real, real_labels, *, g_params, g_batch_stats, key, d_index):
        """Discriminator step ``j`` on its own real batch; carry = D's params, stats, opt, aux.

        ``d_index`` counts the D updates of the run before this one.
        """
        d_params, d_batch_stats, d_opt_state, aux = carry
        z_key, label_key, aug_key, term_key = jax.random.split(jax.random.fold_in(key, j), 4)
        indices = _global_indices(real.shape[0])
        z = sample_latents(z_key, indices, z_dim)
        fake_labels = sample_labels(label_key, indices, num_classes)

        def regenerate(latents):
            """D inputs of G(latents), augmented like this step's fakes; no gradient to G."""
            images, _ = apply_train(generator, g_params, g_batch_stats, latents, fake_labels)
            return to_d_input(lax.stop_gradient(images), jax.random.fold_in(aug_key, 1), aux)

        real_in = to_d_input(real, jax.random.fold_in(aug_key, 0), aux)
        fake_in = regenerate(z)

        def loss_fn(params):
            local, outputs = d_objective(
                params, d_batch_stats, real_in, fake_in, real_labels, fake_labels, z,
                regenerate, term_key, d_index, aux)
            return lax.pmean(local, AXIS), outputs

        (d_loss, (stats, aux, values, real_logits, fake_logits)), grads = jax.value_and_grad(
            loss_fn, has_aux=True)(d_params)
        updates, d_opt_state = d_tx.update(grads, d_opt_state, d_params)
        d_params = objective.constrain_d(optax.apply_updates(d_params, updates))
        # Per-device BatchNorm statistics differ between devices; averaging them
        # keeps the state replicated (a no-op for cross-replica BatchNorm).
        stats = lax.pmean(stats, AXIS)
        metrics = {
            'd_loss': d_loss,
            'd_real_logit': _global_mean(real_logits),
            'd_fake_logit': _global_mean(fake_logits),
            **{f'd_{name}': lax.pmean(v, AXIS) for name, v in values.items() if name != 'gan'},
        }
        return (d_params, stats, d_opt_state, aux), metrics

    def unrolled(d_params, d_batch_stats, d_opt_state, real, fake, real_labels, fake_labels):
        """D after ``unroll_steps`` more updates on this batch, differentiable w.r.t. G.

        The unrolled steps use the GAN loss alone; D itself is not changed.
        """
        def plain_loss(params):
            real_logits = discriminate(params, d_batch_stats, real, real_labels)[0]
            fake_logits = discriminate(params, d_batch_stats, fake, fake_labels)[0]
            return lax.pmean(loss.discriminator(real_logits, fake_logits), AXIS)

        return obj_lib.unroll(plain_loss, d_params, d_opt_state, d_tx,
                              steps=objective.unroll_steps, constrain=objective.constrain_d)

    def update(state, batch):
        step_key = jax.random.fold_in(state.rng, state.step)
        d_key, g_key = jax.random.split(step_key)
        reals = inputs_to_float(batch['image'])
        labels = batch['label'] if num_classes is not None else None
        n_dis, local_batch = reals.shape[:2]

        def d_loop_step(carry, inputs):
            j, real, real_labels = inputs
            return d_step(carry, j, real, real_labels, g_params=state.g_params,
                          g_batch_stats=state.g_batch_stats, key=d_key,
                          d_index=state.step * n_dis + j)

        # The n_dis D steps are one loop body, compiled once. Inside a loop XLA:CPU
        # keeps convolutions fast only if their gradients are in the standard layout
        # (models/conv.py's Conv, not nn.Conv), so a single D step stays out of
        # any loop: a model written with nn.Conv is then as fast as ever.
        carry = (state.d_params, state.d_batch_stats, state.d_opt_state, state.aux)
        d_inputs = (jnp.arange(n_dis), reals, labels)
        if n_dis == 1:
            carry, d_metrics = d_loop_step(carry, jax.tree.map(lambda x: x[0], d_inputs))
        else:
            carry, d_metrics = lax.scan(d_loop_step, carry, d_inputs)
        d_params, d_batch_stats, d_opt_state, aux = carry

        z_key, label_key, aug_key, term_key = jax.random.split(g_key, 4)
        indices = _global_indices(g_local_batch or local_batch)
        z = sample_latents(z_key, indices, z_dim)
        fake_labels = sample_labels(label_key, indices, num_classes)
        real_in = to_d_input(reals[-1], jax.random.fold_in(aug_key, 0), aux)
        last_labels = None if labels is None else labels[-1]

        def generate(g_params, latents):
            return apply_train(generator, g_params, state.g_batch_stats, latents, fake_labels)

        def g_loss_fn(g_params):
            images, g_stats = generate(g_params, z)
            fake_in = to_d_input(images, jax.random.fold_in(aug_key, 1), aux)
            d_for_g = unrolled(d_params, d_batch_stats, d_opt_state, real_in, fake_in,
                               last_labels, fake_labels)
            # D runs in train mode as in its own step; its statistics are discarded.
            fake_logits, fake_cls = discriminate(d_for_g, d_batch_stats, fake_in, fake_labels)
            real_logits = None
            if loss.relativistic:
                real_logits = discriminate(d_for_g, d_batch_stats, real_in, last_labels)[0]
            batch = obj_lib.GeneratorBatch(
                g_params=g_params, images=images, fake_logits=fake_logits,
                fake_class_logits=fake_cls, fake_labels=fake_labels, z=z,
                generate=lambda latents: generate(g_params, latents)[0],
                example_keys=lambda k: _example_keys(k, z.shape[0]), key=term_key)
            values = {'gan': loss.generator(fake_logits, real_logits)}
            for i, term in enumerate(objective.g_terms):
                values[term.name] = term.fn(batch._replace(key=jax.random.fold_in(term_key, i)))
            local = values['gan'] + sum(t.weight * values[t.name] for t in objective.g_terms)
            return lax.pmean(local, AXIS), (g_stats, values)

        (g_loss, (g_batch_stats, g_values)), g_grads = jax.value_and_grad(
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
            ema_params=(None if ema_decay is None
                        else _ema(state.ema_params, g_params, ema_decay(state.step))),
            aux=aux,
        )
        metrics = {k: jnp.mean(v) for k, v in d_metrics.items()}
        metrics['g_loss'] = g_loss
        metrics.update({f'g_{name}': lax.pmean(v, AXIS) for name, v in g_values.items()
                        if name != 'gan'})
        metrics.update(_flat_metrics(aux))
        return new_state, metrics

    return update


def compile_update(update, mesh):
    """``jax.jit(jax.shard_map(update))``: state replicated, batch split on axis 1."""
    return parallel.jit_sharded(update, mesh, in_specs=(P(), P(None, AXIS)),
                                out_specs=(P(), P()), donate_argnums=0)
