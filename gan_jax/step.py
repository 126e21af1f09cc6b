"""The update: ``n_dis`` discriminator steps, then ``g_steps`` (1) generator steps, one program.

Written for one device (pmap style: a named batch axis, explicit ``lax.pmean``)
and compiled as ``jax.jit(jax.shard_map(...))`` over a 1-D device mesh.

Gradients: inside ``shard_map`` the gradient with respect to a replicated
parameter is already summed over the batch axis, so "grad of the local loss, then
pmean the grads" would give n_devices times the gradient. We take the gradient
of ``lax.pmean(local_loss)`` instead, which is the exact global-batch gradient
(also with cross-replica BatchNorm). ``tests/test_step.py`` guards this.

Randomness: example ``i`` of the global batch at step ``t`` draws its latent from
``fold_in(fold_in(rng, t), i)``, so the same seed and global batch give the same
latents on 1 or N devices and hosts. A regulariser's draws are keyed by its name,
so switching one on does not change another's.

Gradient accumulation (``train.grad_accum`` = k): each D and G step takes its
gradient over k micro-batches of B/k global examples, one after another
(``accumulate``), then makes one optimiser step. Micro-batch j is global examples
j*B/k ... split over the devices like a batch (data/pipeline.py lays the reals out
so), and every draw is keyed by the example's global index, so the update is the
whole batch's wherever the losses are means over examples.

Lazy regularisation phases (``reg.lazy_separate_step``, objective.RegPhase): a D step
or G update whose index is a multiple of the lazy interval k makes a second optimiser
step, with the same optimiser state, on the lazy regularisers alone (times k) at the
parameters its main step has just made, as StyleGAN2's official Dreg and Greg phases;
the others skip it (``regularised``, a ``lax.cond``: still one program).

Mixed precision (``train.compute_dtype='bfloat16'``): G and D compute in
bfloat16 while parameters, optimiser state, BatchNorm/spectral-norm statistics,
losses and gradients stay float32 (see ``_apply_train``).
"""

import functools
import zlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax
from jax.sharding import PartitionSpec as P

from gan_jax import objective as obj_lib
from gan_jax import parallel
from gan_jax.sampling import inputs_to_float, sample_labels, sample_latents

AXIS = parallel.DATA_AXIS
COMPUTE_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def compute_dtype(name):
    """``train.compute_dtype`` -> the dtype G and D compute in."""
    try:
        return COMPUTE_DTYPES[name]
    except KeyError:
        raise ValueError(
            f'train.compute_dtype={name!r} is not one of {sorted(COMPUTE_DTYPES)}.'
        ) from None


# Micro-batch j of k (``train.grad_accum``), held by the devices as a batch is: the whole
# batch is micro-batch 0 of 1.
WHOLE = (0, 1)


def _global_indices(n, micro=WHOLE):
    """Global indices of this device's ``n`` examples of micro-batch ``micro`` = (j, k):
    micro-batch j is global examples j*n*D ... (j+1)*n*D - 1, split over the D devices."""
    j, _ = micro
    return (j * lax.axis_size(AXIS) + lax.axis_index(AXIS)) * n + jnp.arange(n)


def _device_indices(n, k):
    """Global indices of all ``n`` examples of this device: k micro-batches, one after
    another (data/pipeline.py lays the reals out so)."""
    return jnp.concatenate([_global_indices(n // k, (j, k)) for j in range(k)])


def _example_keys(key, n, micro=WHOLE):
    """One key per example, by global index: the same draw on 1 or N devices."""
    return _keys_at(key, _global_indices(n, micro))


def _keys_at(key, indices):
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(indices)


def _micro_batches(tree, k):
    """Leaves [n, ...] -> [k, n // k, ...]: micro-batch j is rows [j*n/k, (j+1)*n/k)."""
    return jax.tree.map(lambda x: x.reshape(k, x.shape[0] // k, *x.shape[1:]), tree)


def accumulate(grad_fn, params, stats, examples, k):
    """Gradient accumulation over k micro-batches of ``examples`` (leaves [n, ...]).

    ``grad_fn(params, stats, micro_batch, (j, k))`` returns ((loss, (stats, *outputs)),
    grads). The micro-batches run one after another (``lax.scan``), each seeing the
    batch statistics the previous one left (averaged over devices, as after a step).
    Returns ((loss, (stats, *outputs)), grads): loss and gradients averaged over the
    micro-batches, which is the full batch's when the loss is a mean over examples,
    and ``outputs`` stacked, [k, ...]. k = 1 calls ``grad_fn`` once on the whole batch.
    """
    if k == 1:
        return grad_fn(params, stats, examples, WHOLE)

    def body(carry, inputs):
        stats, loss_sum, grad_sum = carry
        j, batch = inputs
        (loss, (stats, *outputs)), grads = grad_fn(params, stats, batch, (j, k))
        grad_sum = jax.tree.map(lambda total, g: total + g / k, grad_sum, grads)
        return (lax.pmean(stats, AXIS), loss_sum + loss / k, grad_sum), outputs

    zeros = jax.tree.map(jnp.zeros_like, params)
    inputs = (jnp.arange(k), _micro_batches(examples, k))
    (stats, loss, grads), outputs = lax.scan(body, (stats, jnp.zeros(()), zeros), inputs)
    return (loss, (stats, *outputs)), grads


def _mean_over_micro_batches(values):
    """{name: [k] per-micro-batch means} -> the batch's means (the micro-batches are equal)."""
    return jax.tree.map(lambda v: jnp.mean(v, axis=0), values)


def _joined(x):
    """[k, n, ...] per micro-batch -> [k * n, ...], in the batch's order."""
    return x.reshape(-1, *x.shape[2:])


def _global_mean(x):
    return lax.pmean(jnp.mean(x), AXIS)


def _cast_floats(tree, dtype):
    return jax.tree.map(
        lambda a: (
            a.astype(dtype) if hasattr(a, 'dtype') and jnp.issubdtype(a.dtype, jnp.floating) else a
        ),
        tree,
    )


def _apply_train(model, params, batch_stats, x, *args, dtype=jnp.float32, **kwargs):
    """Forward pass in train mode, ``model(x, *args, train=True, **kwargs)`` (``method``
    picks another of the model's methods); returns (output, new batch statistics).

    With a ``dtype`` other than float32, the parameters and inputs are cast to it
    so every layer computes in it (Flax layers compute in their inputs' dtype);
    the gradient flows back through the cast to the float32 parameters. Outputs
    return as float32, so losses and penalties are float32, and the statistics
    keep their stored dtype (BatchNorm reduces in float32 anyway).
    """
    if dtype != jnp.float32:
        params, x = _cast_floats(params, dtype), _cast_floats(x, dtype)
        args, kwargs = _cast_floats(args, dtype), _cast_floats(kwargs, dtype)
    out, updates = model.apply(
        {'params': params, 'batch_stats': batch_stats},
        x,
        *args,
        train=True,
        mutable=['batch_stats'],
        **kwargs,
    )
    stats = jax.tree.map(
        lambda new, old: new.astype(old.dtype), updates.get('batch_stats', {}), batch_stats
    )
    return _cast_floats(out, jnp.float32), stats


def split_logits(d_output):
    """D's output -> (logits, class logits or None); only an ACGAN head returns both."""
    return d_output if isinstance(d_output, tuple) else (d_output, None)


def term_key(key, name):
    """The key of the regulariser ``name``: a function of its name, not its position."""
    return jax.random.fold_in(key, zlib.crc32(name.encode()) & 0x7FFFFFFF)


def add_terms(gan_loss, terms, batch):
    """``gan_loss + sum(weight * term(batch))``; returns (total, {name: unweighted value},
    {name: new state} of the stateful terms).

    Each term draws from ``term_key(batch.key, name)``. The D and G steps have keys
    of their own, except in a simultaneous step, where D's and G's zCR share draws.
    """
    values, states = {'gan': gan_loss}, {}
    for term in terms:
        value = term.fn(batch._replace(key=term_key(batch.key, term.name)))
        if term.stateful:
            value, states[term.name] = value
        values[term.name] = value
    return gan_loss + sum(t.weight * values[t.name] for t in terms), values, states


def _ema(ema_params, params, decay):
    return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema_params, params)


def _flat_metrics(tree):
    """{'augment': {'p': x}} -> {'augment_p': x}: the ingredients' state, for logging."""
    return {
        '_'.join(str(getattr(k, 'key', k)) for k in path): leaf
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
    }


def regularised(phase, index, update, carry, prefix, aux=None):
    """``update(carry)`` -> (carry, metrics) on the steps of the lazy regularisation
    ``phase`` (``index`` a multiple of its interval), else ``carry`` unchanged with its
    terms' metrics (``prefix``_name) 0 and, given ``aux`` (G's), their states
    (metrics['aux']) as ``aux`` holds them. One compiled program: a ``lax.cond`` on a
    condition that is the same on every device."""
    if not phase.terms:
        return carry, {}

    def skip(carry):
        metrics = {f'{prefix}_{t.name}': jnp.zeros(()) for t in phase.terms}
        if aux is None:
            return carry, metrics
        states = {t.name: aux[t.name] for t in phase.terms if t.stateful}
        return carry, {**metrics, 'aux': states}

    return lax.cond(index % phase.every == 0, update, skip, carry)


class StepData(NamedTuple):
    """What a step's losses read besides the parameters and the fakes."""

    real_in: Any  # D's real inputs (augmented, packed).
    real_labels: Any
    fake_labels: Any
    z: Any
    key: Any  # The regularisers' key.
    regenerate: Any  # z -> D inputs of G(z), no gradient to G (D's regularisers); or None.
    d_index: Any  # D updates of the run before this one; None in the G step.
    micro: Any = WHOLE  # (j, k): these are micro-batch j of k (``train.grad_accum``).
    g_index: Any = None  # G updates of the run before this one; None in the D step.
    mix_key: Any = None  # The key of style mixing's draws in this step's G runs.


class DState(NamedTuple):
    """What a D step changes: D's parameters, statistics, optimiser state; ingredients' state."""

    params: Any
    batch_stats: Any
    opt_state: Any
    aux: dict


class Update:
    """The per-device update ``(state, batch) -> (state, metrics)``.

    ``batch['image']`` has shape (n_dis, local_batch, ...): one real batch per
    discriminator step, as in compare_gan and mimicry; ``batch['label']`` holds
    their labels (used when the models are class-conditional, ``num_classes``).
    ``objective`` (objective.py) says what D and G minimise; ``ema_decay`` maps
    the step to the EMA decay, or is None without an EMA. ``g_batch_size`` is the
    global number of fakes in the G step (SNGAN: twice D's), split over the mesh
    axis inside the update; None: D's batch. ``dtype`` is what G and D compute in
    (``compute_dtype``). ``simultaneous``: G steps against D's parameters from
    before the D step (``train.simultaneous``). ``g_steps``: G updates after the
    D steps, each on its own latents (``train.g_steps``), or all on the last D step's
    (``shared_latents``, ``train.shared_latents``). ``z_distribution``: a
    name in ``sampling.LATENTS``. ``grad_accum``: each D and G step takes the
    gradient over that many micro-batches of its batch, one after another, then
    makes one optimiser step (``accumulate``).
    """

    def __init__(
        self,
        *,
        generator,
        discriminator,
        g_tx,
        d_tx,
        objective,
        z_dim,
        num_classes,
        ema_decay,
        g_batch_size=None,
        dtype=jnp.float32,
        simultaneous=False,
        g_steps=1,
        shared_latents=False,
        z_distribution='normal',
        grad_accum=1,
    ):
        self.generator, self.discriminator = generator, discriminator
        self.g_tx, self.d_tx, self.objective = g_tx, d_tx, objective
        self.z_dim, self.num_classes = z_dim, num_classes
        self.ema_decay, self.g_batch_size = ema_decay, g_batch_size
        self.simultaneous, self.g_steps = simultaneous, g_steps
        self.shared_latents = shared_latents
        self.z_distribution = z_distribution
        self.grad_accum = grad_accum
        self.loss = objective.loss.with_batch_mean(_global_mean)
        self.apply = functools.partial(_apply_train, dtype=dtype)

    def __call__(self, state, batch):
        """n_dis D steps, each on its own real batch; ``g_steps`` G steps against the new D;
        the EMA.

        With ``simultaneous`` one D and one G step instead, both from the parameters
        before the update and on the same fakes (``simultaneous_step``).
        """
        d_key, g_key = jax.random.split(jax.random.fold_in(state.rng, state.step))
        reals = inputs_to_float(batch['image'])
        labels = batch['label'] if self.num_classes is not None else None
        if self.simultaneous:
            real_labels = None if labels is None else labels[0]
            d, g, metrics = self.simultaneous_step(
                state, reals[0], real_labels, jax.random.fold_in(d_key, 0)
            )
        else:
            d, d_metrics = self.d_loop(state, reals, labels, d_key)
            last_labels = None if labels is None else labels[-1]
            g = (state.g_params, state.g_batch_stats, state.g_opt_state)
            last_d_key = jax.random.fold_in(d_key, reals.shape[0] - 1)
            for j in range(self.g_steps):  # G step j > 0 draws from fold_in(g_key, j).
                g_state = state.replace(g_params=g[0], g_batch_stats=g[1], g_opt_state=g[2])
                if self.shared_latents:  # The last D step's draws: the same latents.
                    key = last_d_key
                else:
                    key = jax.random.fold_in(g_key, j) if j else g_key
                g_index = state.step * self.g_steps + j
                g, g_metrics = self.g_step(g_state, d, reals[-1], last_labels, key, g_index)
                d = d._replace(aux={**d.aux, **g_metrics.pop('aux')})
            metrics = {**d_metrics, **g_metrics}
        g_params, g_batch_stats, g_opt_state = g
        ema_params = (
            None
            if self.ema_decay is None
            else _ema(state.ema_params, g_params, self.ema_decay(state.step))
        )
        new_state = state.replace(
            step=state.step + 1,
            g_params=g_params,
            g_batch_stats=g_batch_stats,
            g_opt_state=g_opt_state,
            d_params=d.params,
            d_batch_stats=d.batch_stats,
            d_opt_state=d.opt_state,
            ema_params=ema_params,
            aux=d.aux,
        )
        return new_state, {**metrics, **_flat_metrics(d.aux)}

    # ---- Shared by both steps ---------------------------------------------------
    def to_d_input(self, images, key, aux, micro=WHOLE):
        """Augmented, then packed: how D sees real and fake images alike."""
        keys = _example_keys(key, images.shape[0], micro)
        augmented = self.objective.augmentation.apply(images, keys, aux)
        return obj_lib.pack(augmented, self.objective.pack)

    def discriminate(self, d_params, d_batch_stats, x, labels):
        """D's (logits, class logits) in train mode, its batch statistics discarded."""
        return split_logits(self.apply(self.discriminator, d_params, d_batch_stats, x, labels)[0])

    def draw(self, key, local_batch):
        """A step's random draws: (latents, fake labels, augmentation key, regularisers' key)
        for this device's examples, all ``grad_accum`` micro-batches."""
        z_key, label_key, aug_key, terms_key = jax.random.split(key, 4)
        indices = _device_indices(local_batch, self.grad_accum)
        z = sample_latents(z_key, indices, self.z_dim, distribution=self.z_distribution)
        return z, sample_labels(label_key, indices, self.num_classes), aug_key, terms_key

    def mixing(self, key, latents, micro=WHOLE):
        """G's ``mixing`` argument for ``latents`` (StyleGAN2's style mixing), or {}.

        The second latents are drawn by global index from ``key``, the crossover
        layer from it too, the same on every device (one draw per G run, as officially).
        """
        prob = self.objective.style_mixing_prob
        if not prob:
            return {}
        indices = _global_indices(latents.shape[0], micro)
        z2 = sample_latents(
            jax.random.fold_in(key, 1), indices, self.z_dim, distribution=self.z_distribution
        )
        return {'mixing': (z2, jax.random.fold_in(key, 0), prob)}

    def generate(self, g_params, g_batch_stats, latents, labels, mix_key=None, micro=WHOLE):
        """G(latents) in train mode, style-mixed with draws from ``mix_key`` when style
        mixing is on: (images, G's new batch statistics)."""
        mixing = {} if mix_key is None else self.mixing(mix_key, latents, micro)
        return self.apply(self.generator, g_params, g_batch_stats, latents, labels, **mixing)

    # ---- Discriminator ----------------------------------------------------------
    def d_loop(self, state, reals, labels, key):
        """The n_dis D steps against the current G; returns (DState, mean D metrics)."""
        n_dis = reals.shape[0]

        def body(d, inputs):
            j, real, real_labels = inputs
            return self.d_step(
                d,
                real,
                real_labels,
                state.g_params,
                state.g_batch_stats,
                jax.random.fold_in(key, j),
                d_index=state.step * n_dis + j,
            )

        d = DState(state.d_params, state.d_batch_stats, state.d_opt_state, state.aux)
        inputs = (jnp.arange(n_dis), reals, labels)
        # The loop body is compiled once. Inside a loop XLA:CPU keeps convolutions
        # fast only if their gradients are in the standard layout (models/conv.py's
        # Conv, not nn.Conv), so a single D step stays out of any loop.
        if n_dis == 1:
            d, metrics = body(d, jax.tree.map(lambda x: x[0], inputs))
        else:
            d, metrics = lax.scan(body, d, inputs)
        return d, {k: jnp.mean(v) for k, v in metrics.items()}

    def d_step(self, d, real, real_labels, g_params, g_batch_stats, key, *, d_index):
        """One D update on one real batch (in ``grad_accum`` micro-batches); ``d_index``
        counts the run's earlier D updates. On the D steps of D's lazy regularisation
        phase (``objective.d_reg``), that phase's update follows (``regularised``)."""
        z, fake_labels, aug_key, terms_key = self.draw(key, real.shape[0])
        mix_key = term_key(key, 'style_mixing')
        inputs_aux = d.aux  # Both phases see the same D inputs: augmented as before the step.

        def update(d, reg):
            def grad_fn(params, stats, examples, micro):
                real, real_labels, z, fake_labels = examples
                regenerate = self._regenerate(
                    g_params, g_batch_stats, fake_labels, aug_key, inputs_aux, mix_key, micro
                )
                real_in = self.to_d_input(real, jax.random.fold_in(aug_key, 0), inputs_aux, micro)
                data = StepData(
                    real_in, real_labels, fake_labels, z, terms_key, regenerate, d_index, micro
                )
                return jax.value_and_grad(functools.partial(self.d_loss, reg=reg), has_aux=True)(
                    params, d._replace(batch_stats=stats), regenerate(z), data
                )

            examples = (real, real_labels, z, fake_labels)
            (loss, outputs), grads = accumulate(
                grad_fn, d.params, d.batch_stats, examples, self.grad_accum
            )
            if self.grad_accum > 1:  # Outputs per micro-batch -> as for the whole batch.
                stats, aux, values, real_logits, fake_logits = outputs
                outputs = (
                    stats,
                    jax.tree.map(lambda a: a[-1], aux),
                    _mean_over_micro_batches(values),
                    _joined(real_logits),
                    _joined(fake_logits),
                )
            return self.apply_d(d, grads, loss, outputs, reg)

        d, metrics = update(d, reg=False)
        d, reg_metrics = regularised(
            self.objective.d_reg, d_index, lambda d: update(d, reg=True), d, 'd'
        )
        return d, {**metrics, **reg_metrics}

    def _regenerate(self, g_params, g_batch_stats, labels, aug_key, aux, mix_key, micro=WHOLE):
        def regenerate(latents):
            """D inputs of G(latents), augmented like this step's fakes; no gradient to G."""
            images, _ = self.generate(g_params, g_batch_stats, latents, labels, mix_key, micro)
            fake_key = jax.random.fold_in(aug_key, 1)
            return self.to_d_input(lax.stop_gradient(images), fake_key, aux, micro)

        return regenerate

    def d_loss(self, params, d, fake_in, data, reg=False):
        """D's loss (averaged over devices) and (statistics, aux, values, logits) for its update.

        ``reg``: the loss of D's lazy regularisation phase, its terms alone; the
        ingredients' state stays as ``d.aux`` holds it. (XLA drops what they do not read.)
        """
        real_in, real_labels, fake_labels = data.real_in, data.real_labels, data.fake_labels
        real_out, stats = self.apply(
            self.discriminator, params, d.batch_stats, real_in, real_labels
        )
        fake_out, stats = self.apply(self.discriminator, params, stats, fake_in, fake_labels)
        (real_logits, real_cls), (fake_logits, fake_cls) = (
            split_logits(real_out),
            split_logits(fake_out),
        )
        batch = obj_lib.DiscriminatorBatch(
            discriminate=lambda x, lab: self.discriminate(params, stats, x, lab)[0],
            real=real_in,
            fake=fake_in,
            real_labels=real_labels,
            fake_labels=fake_labels,
            real_logits=real_logits,
            fake_logits=fake_logits,
            real_class_logits=real_cls,
            fake_class_logits=fake_cls,
            z=data.z,
            regenerate=data.regenerate,
            example_keys=lambda k: _example_keys(k, real_in.shape[0], data.micro),
            latent_keys=lambda k: _example_keys(k, data.z.shape[0], data.micro),
            global_mean=_global_mean,
            global_batch=real_in.shape[0] * lax.axis_size(AXIS),
            key=data.key,
            d_index=data.d_index,
            aux=d.aux,
        )
        if reg:
            aux, gan, terms = d.aux, jnp.zeros(()), self.objective.d_reg.terms
        else:
            aux = self.objective.update_aux(d.aux, batch)
            gan, terms = self.loss.discriminator(real_logits, fake_logits), self.objective.d_terms
        local, values, _ = add_terms(gan, terms, batch._replace(aux=aux))
        return lax.pmean(local, AXIS), (stats, aux, values, real_logits, fake_logits)

    def apply_d(self, d, grads, loss, outputs, reg=False):
        """D's optimiser step: (new DState, D's metrics). ``reg``: a regularisation phase's
        step, which keeps D's statistics and logs only its terms."""
        stats, aux, values, real_logits, fake_logits = outputs
        updates, opt_state = self.d_tx.update(grads, d.opt_state, d.params)
        params = self.objective.constrain_d(optax.apply_updates(d.params, updates))
        terms = {f'd_{name}': lax.pmean(v, AXIS) for name, v in values.items() if name != 'gan'}
        if reg:
            return d._replace(params=params, opt_state=opt_state), terms
        metrics = {
            'd_loss': loss,
            'd_real_logit': _global_mean(real_logits),
            'd_fake_logit': _global_mean(fake_logits),
            **terms,
        }
        # Per-device BatchNorm statistics differ between devices; averaging them
        # keeps the state replicated (a no-op for cross-replica BatchNorm).
        return DState(params, lax.pmean(stats, AXIS), opt_state, aux), metrics

    # ---- Generator --------------------------------------------------------------
    def g_step(self, state, d, real, real_labels, key, g_index):
        """One G update against D after its steps (``d``), looking ahead if unrolled, in
        ``grad_accum`` micro-batches.

        Returns ((params, batch statistics, optimiser state), metrics, with the G
        terms' new states under 'aux'). ``real`` is the last D step's real batch
        (relativistic losses, unrolled D); ``g_index`` counts the run's earlier G updates.
        On the G updates of G's lazy regularisation phase (``objective.g_reg``), that
        phase's update follows (``regularised``).
        """
        local_batch = (
            self.g_batch_size // lax.axis_size(AXIS) if self.g_batch_size else real.shape[0]
        )
        z, fake_labels, aug_key, terms_key = self.draw(key, local_batch)
        mix_key = term_key(key, 'style_mixing')

        def update(state, reg):
            def grad_fn(g_params, g_stats, examples, micro):
                z, fake_labels, real, real_labels = examples
                real_in = self.to_d_input(real, jax.random.fold_in(aug_key, 0), d.aux, micro)
                data = StepData(
                    real_in,
                    real_labels,
                    fake_labels,
                    z,
                    terms_key,
                    None,
                    None,
                    micro,
                    g_index,
                    mix_key,
                )
                micro_state = state.replace(g_batch_stats=g_stats)

                def loss_fn(g_params):
                    images, new_stats = self.generate(
                        g_params, g_stats, z, fake_labels, mix_key, micro
                    )
                    fake_in = self.to_d_input(images, jax.random.fold_in(aug_key, 1), d.aux, micro)
                    fakes = (images, new_stats, fake_in)
                    return self.g_loss(g_params, d.params, micro_state, d, fakes, data, reg)

                return jax.value_and_grad(loss_fn, has_aux=True)(g_params)

            examples = (z, fake_labels, real, real_labels)
            (loss, outputs), grads = accumulate(
                grad_fn, state.g_params, state.g_batch_stats, examples, self.grad_accum
            )
            if self.grad_accum > 1:  # States move linearly with the micro-batches' means.
                outputs = (outputs[0], *map(_mean_over_micro_batches, outputs[1:]))
            return self.apply_g(state, grads, loss, outputs, reg)

        g, metrics = update(state, reg=False)

        def regularise(g):
            params, stats, opt_state = g
            new = state.replace(g_params=params, g_batch_stats=stats, g_opt_state=opt_state)
            return update(new, reg=True)

        g, reg_metrics = regularised(self.objective.g_reg, g_index, regularise, g, 'g', d.aux)
        aux = {**metrics.pop('aux'), **reg_metrics.pop('aux', {})}
        return g, {**metrics, **reg_metrics, 'aux': aux}

    def g_loss(self, g_params, d_params, state, d, fakes, data, reg=False):
        """G's loss (averaged over devices) against D's ``d_params``, looking ahead if
        unrolled, and (G's new statistics, values, the terms' new states) for its update.

        ``fakes`` is (images, G's new statistics, D's inputs of the images). ``reg``: the
        loss of G's lazy regularisation phase, its terms alone (XLA drops what they do
        not read).
        """
        images, g_stats, fake_in = fakes
        real_in, real_labels, fake_labels = data.real_in, data.real_labels, data.fake_labels
        d_params = self.unrolled(
            d._replace(params=d_params), real_in, fake_in, real_labels, fake_labels
        )
        # D runs in train mode as in its own step; its statistics are discarded.
        fake_logits, fake_cls = self.discriminate(d_params, d.batch_stats, fake_in, fake_labels)
        real_logits = None
        # An unrolled D depends on G, so its logits on reals do too (the minimax loss).
        if self.loss.relativistic or self.objective.unroll_steps > 0:
            real_logits = self.discriminate(d_params, d.batch_stats, real_in, real_labels)[0]
        g_stats_in = state.g_batch_stats

        def apply_g(method, *args, **kwargs):
            out, _ = self.apply(
                self.generator, g_params, g_stats_in, *args, method=method, **kwargs
            )
            return out

        batch = obj_lib.GeneratorBatch(
            g_params=g_params,
            images=images,
            fake_logits=fake_logits,
            fake_class_logits=fake_cls,
            fake_labels=fake_labels,
            z=data.z,
            generate=lambda z: self.generate(
                g_params, g_stats_in, z, fake_labels, data.mix_key, data.micro
            )[0],
            example_keys=lambda k, n=None: _example_keys(k, n or data.z.shape[0], data.micro),
            key=data.key,
            draw=lambda k, n: self.draw(k, n)[:2],
            map_latents=lambda z, labels, k: apply_g('map', z, labels, **self.mixing(k, z)),
            synthesize=lambda ws, z: apply_g('synthesize_latents', ws, z),
            global_mean=_global_mean,
            g_index=data.g_index,
            aux=d.aux,
        )
        if reg:
            gan, terms = jnp.zeros(()), self.objective.g_reg.terms
        else:
            gan, terms = self.loss.generator(fake_logits, real_logits), self.objective.g_terms
        local, values, states = add_terms(gan, terms, batch)
        return lax.pmean(local, AXIS), (g_stats, values, states)

    def apply_g(self, state, grads, loss, outputs, reg=False):
        """G's optimiser step: ((params, batch statistics, optimiser state), G's metrics,
        with the G terms' new states under 'aux'). ``reg``: a regularisation phase's step,
        which keeps G's statistics and logs only its terms."""
        g_stats, values, states = outputs
        updates, opt_state = self.g_tx.update(grads, state.g_opt_state, state.g_params)
        params = optax.apply_updates(state.g_params, updates)
        terms = {f'g_{name}': lax.pmean(v, AXIS) for name, v in values.items() if name != 'gan'}
        if reg:
            return (params, state.g_batch_stats, opt_state), {**terms, 'aux': states}
        metrics = {'g_loss': loss, **terms, 'aux': states}
        return (params, lax.pmean(g_stats, AXIS), opt_state), metrics

    # ---- Both at once -----------------------------------------------------------
    def simultaneous_step(self, state, real, real_labels, key):
        """One D and one G step from the same parameters on the same fakes (ALI's and
        PacGAN's algorithm): one forward pass, one backward pass of both losses.

        Returns (DState, G's (params, statistics, optimiser state), metrics).
        """
        d = DState(state.d_params, state.d_batch_stats, state.d_opt_state, state.aux)
        z, fake_labels, aug_key, terms_key = self.draw(key, real.shape[0])
        mix_key = term_key(key, 'style_mixing')
        regenerate = self._regenerate(
            state.g_params, state.g_batch_stats, fake_labels, aug_key, d.aux, mix_key
        )
        real_in = self.to_d_input(real, jax.random.fold_in(aug_key, 0), d.aux)
        data = StepData(
            real_in,
            real_labels,
            fake_labels,
            z,
            terms_key,
            regenerate,
            state.step,
            g_index=state.step,
            mix_key=mix_key,
        )

        def both_losses(d_params, g_params):
            images, g_stats = self.generate(g_params, state.g_batch_stats, z, fake_labels, mix_key)
            fake_in = self.to_d_input(images, jax.random.fold_in(aug_key, 1), d.aux)
            d_loss, d_out = self.d_loss(d_params, d, lax.stop_gradient(fake_in), data)
            # Each loss reaches only its own network's parameters, so one backward
            # pass of their sum gives both gradients.
            fakes = (images, g_stats, fake_in)
            g_loss, g_out = self.g_loss(
                g_params, lax.stop_gradient(d_params), state, d, fakes, data
            )
            return d_loss + g_loss, (d_loss, g_loss, d_out, g_out)

        (d_grads, g_grads), (d_loss, g_loss, d_out, g_out) = jax.grad(
            both_losses, argnums=(0, 1), has_aux=True
        )(d.params, state.g_params)
        d, d_metrics = self.apply_d(d, d_grads, d_loss, d_out)
        g, g_metrics = self.apply_g(state, g_grads, g_loss, g_out)
        d = d._replace(aux={**d.aux, **g_metrics.pop('aux')})
        return d, g, {**d_metrics, **g_metrics}

    def unrolled(self, d, real, fake, real_labels, fake_labels):
        """D after ``unroll_steps`` more updates on this batch, differentiable w.r.t. G.

        The unrolled steps use the GAN loss alone; D itself is not changed.
        """

        def plain_loss(params):
            real_logits = self.discriminate(params, d.batch_stats, real, real_labels)[0]
            fake_logits = self.discriminate(params, d.batch_stats, fake, fake_labels)[0]
            return lax.pmean(self.loss.discriminator(real_logits, fake_logits), AXIS)

        return obj_lib.unroll(
            plain_loss,
            d.params,
            d.opt_state,
            self.d_tx,
            steps=self.objective.unroll_steps,
            constrain=self.objective.constrain_d,
        )


# Folded into a step's key for the real examples drawn on the device.
DATA_STREAM = 0x64617461


def sample_device_batch(table, key, *, n_dis, global_batch, grad_accum=1):
    """This device's share of ``n_dis`` real batches drawn from a whole dataset on the device.

    ``table`` is {'image': [N, ...], 'label': [N]}; each example is drawn uniformly
    with replacement, keyed by its D step and global index, so 1 or N devices and
    hosts draw the same global batches (laid out in ``grad_accum`` micro-batches as
    data/pipeline.py does). Returns arrays of shape (n_dis, local, ...).
    """
    local = global_batch // lax.axis_size(AXIS)
    size = table['label'].shape[0]

    def draw(j):
        keys = _keys_at(jax.random.fold_in(key, j), _device_indices(local, grad_accum))
        return jax.vmap(lambda k: jax.random.randint(k, (), 0, size))(keys)

    indices = jax.vmap(draw)(jnp.arange(n_dis))
    return jax.tree.map(lambda column: column[indices], table)


def make_train_steps(update, *, steps_per_call, n_dis, device_batch=None, grad_accum=1):
    """``(state, data) -> (state, metrics of the last step)``: ``steps_per_call`` updates.

    ``data`` is this device's real batches for all of them, (steps_per_call *
    n_dis, local_batch, ...), or with ``device_batch`` (the global batch size)
    the whole dataset, from which each step draws its own (``sample_device_batch``, laid
    out in the update's ``grad_accum`` micro-batches).
    Several steps run as one ``lax.scan``, so the host dispatches once per call.
    """

    def one_step(state, batch):
        if device_batch is not None:
            key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step), DATA_STREAM)
            batch = sample_device_batch(
                batch,
                key,
                n_dis=n_dis,
                global_batch=device_batch,
                grad_accum=grad_accum,
            )
        return update(state, batch)

    def steps(state, data):
        if steps_per_call == 1:
            return one_step(state, data)
        if device_batch is not None:
            state, metrics = lax.scan(
                lambda s, _: one_step(s, data), state, None, length=steps_per_call
            )
        else:
            batches = jax.tree.map(lambda x: x.reshape(steps_per_call, n_dis, *x.shape[1:]), data)
            state, metrics = lax.scan(one_step, state, batches)
        return state, jax.tree.map(lambda m: m[-1], metrics)

    return steps


def compile_update(steps, mesh, *, device_data=False):
    """``jax.jit(jax.shard_map(steps))``: state replicated; host batches split on axis 1,
    a dataset on the device (``device_data``) replicated."""
    data_spec = P() if device_data else P(None, AXIS)
    return parallel.jit_sharded(
        steps, mesh, in_specs=(P(), data_spec), out_specs=(P(), P()), donate_argnums=0
    )
