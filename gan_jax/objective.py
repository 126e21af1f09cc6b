"""What D and G minimise, and how D sees its inputs, assembled from the config.

GAN papers mostly differ in one ingredient: the loss (``train.loss``, see
losses.py), a regulariser added to D's or G's loss (``reg.*``), how images are
augmented before D (``augment.*``), or how D's inputs are packed
(``train.pack``). Each ingredient here is a pure function plus one config
value; ``build_objective`` collects the active ones into an ``Objective`` and
the update (step.py) adds up whatever it holds, without branching on names.

Adding a regulariser: write ``fn(batch) -> scalar`` below, register it in
``D_TERMS`` or ``G_TERMS`` under its weight key, declare that key in
experiments/base.py (``reg``), and test it. Nothing else changes.

Lazy regularisers (R1 every k D steps, path length every k G updates) join the
loss of the iterations they fall on, scaled by k; with ``reg.lazy_separate_step``
they make a regularisation phase of their own instead (``RegPhase``): an
optimiser step after the main one, as StyleGAN2's official Dreg and Greg phases.

Stateful ingredients (ADA's augmentation probability, LeCam's running means)
keep their state in ``TrainState.aux`` under their name; their update runs on
stop-gradient values inside the compiled step, from global (all-device)
statistics, so every device holds the same state and a resumed run continues it.
"""

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from gan_jax import augment as augment_lib
from gan_jax import losses, penalties, sampling

Array = jax.Array


class DiscriminatorBatch(NamedTuple):
    """Everything a discriminator regulariser may look at, for one D step."""

    discriminate: Callable  # (inputs, labels) -> logits [B]; D in train mode.
    real: Array  # D's inputs: augmented (and packed) images.
    fake: Array
    real_labels: Array | None
    fake_labels: Array | None
    real_logits: Array
    fake_logits: Array
    real_class_logits: Array | None  # The ACGAN head's outputs, else None.
    fake_class_logits: Array | None
    z: Array  # The latents behind ``fake``.
    regenerate: Callable  # z -> D inputs of G(z) for ``fake_labels`` (no gradient to G).
    example_keys: Callable  # key -> one key per D input of the local batch.
    latent_keys: Callable  # key -> one key per latent (per example: packing aside).
    global_mean: Callable  # x -> mean over the whole global batch (all devices).
    global_batch: int  # Number of D inputs per side in the global batch.
    key: Array
    d_index: Array  # D updates done before this one, over the whole run.
    aux: dict  # TrainState.aux as updated for this batch.


class GeneratorBatch(NamedTuple):
    """Everything a generator regulariser may look at, for one G step."""

    g_params: Any
    images: Array  # G(z) before augmentation.
    fake_logits: Array
    fake_class_logits: Array | None
    fake_labels: Array | None
    z: Array
    generate: Callable  # z -> G(z) for ``fake_labels``, differentiable in g_params.
    # (key[, local batch size]) -> one key per example of the local batch, by global index.
    example_keys: Callable
    key: Array
    # (key, local batch) -> (latents, labels) drawn as the step draws its own.
    draw: Callable = None
    # StyleGAN2's halves in train mode, differentiable in g_params: (z, labels, key) ->
    # ws (style-mixed with draws from key), and (ws, z) -> images (noise keyed by z).
    map_latents: Callable = None
    synthesize: Callable = None
    global_mean: Callable = None  # x -> mean over the whole global batch (all devices).
    g_index: Array = None  # G updates done before this one, over the whole run.
    aux: dict = None  # TrainState.aux: a stateful G term reads its state here.


class Term(NamedTuple):
    """An active regulariser: ``weight * fn(batch)`` is added to the loss.

    A ``stateful`` term's fn returns (value, its new state in TrainState.aux[name]):
    G's path-length average moves with the lengths the term itself computes.
    """

    name: str
    weight: float
    fn: Callable
    stateful: bool = False


class Stateful(NamedTuple):
    """State an ingredient carries across steps (in TrainState.aux[name])."""

    init: Callable[[], Any]
    # Before the D loss is taken; None: the state is its G term's (Term.stateful).
    update: Callable[[Any, DiscriminatorBatch], Any] | None


# ---- Discriminator regularisers -------------------------------------------------


def _gradient_penalty(config):
    """``reg.penalty`` every ``reg.penalty_every_d_steps`` D steps, scaled by that interval.

    Lazy regularisation (Karras et al. 2020): the penalty's expected contribution
    is unchanged while it is computed 1/k as often.
    """
    penalty = penalties.get_penalty(config.reg.penalty)
    every = config.reg.penalty_every_d_steps

    def fn(batch: DiscriminatorBatch):
        def value():
            return every * penalties.penalty_value(
                penalty,
                lambda x: batch.discriminate(x, batch.real_labels),
                lambda x: batch.discriminate(x, batch.fake_labels),
                batch.real,
                batch.fake,
                batch.example_keys(batch.key),
                batch.global_mean,
            )

        if every == 1:
            return value()
        # The zero is derived from per-device data so both branches have the
        # same (device-varying) type inside shard_map.
        zero = jnp.zeros_like(jnp.sum(batch.real_logits))
        return lax.cond(batch.d_index % every == 0, value, lambda: zero)

    return fn


def parse_policy(text: str) -> tuple[str, ...]:
    """'color,translation' -> ('color', 'translation'), checked against augment's ops."""
    policy = tuple(name.strip() for name in text.split(',') if name.strip())
    augment_lib.check_policy(policy)
    return policy


def _consistency_augment(config):
    policy = parse_policy(config.reg.cr_policy)
    return lambda x, keys: augment_lib.diffaugment(x, keys, policy)


def _balanced_consistency(side):
    """bCR (Zhao et al. 2021): D(T(x)) should equal D(x), for reals or for fakes."""

    def make(config):
        transform = _consistency_augment(config)

        def fn(batch: DiscriminatorBatch):
            inputs, labels, logits = {
                'real': (batch.real, batch.real_labels, batch.real_logits),
                'fake': (batch.fake, batch.fake_labels, batch.fake_logits),
            }[side]
            transformed = transform(inputs, batch.example_keys(batch.key))
            return jnp.mean((batch.discriminate(transformed, labels) - logits) ** 2)

        return fn

    return make


def _latent_noise(config, z, keys):
    """z + N(0, zcr_sigma^2), one draw per example key."""
    return z + config.reg.zcr_sigma * jax.vmap(lambda key: jax.random.normal(key, z.shape[1:]))(
        keys
    )


def _latent_consistency_d(config):
    """zCR, D side (Zhao et al. 2021): D(G(z)) should equal D(G(z + noise))."""

    def fn(batch: DiscriminatorBatch):
        moved = batch.regenerate(_latent_noise(config, batch.z, batch.latent_keys(batch.key)))
        return jnp.mean((batch.discriminate(moved, batch.fake_labels) - batch.fake_logits) ** 2)

    return fn


def _lecam(config):
    """LeCam regulariser (Tseng et al. 2021), as in the authors' code (with its ReLUs).

    mean(relu(D(x) - ema_fake)^2) + mean(relu(ema_real - D(G(z)))^2): keeps D's
    outputs on reals near its past outputs on fakes and vice versa.
    """
    del config

    def fn(batch: DiscriminatorBatch):
        ema = batch.aux['lecam']
        return jnp.mean(jax.nn.relu(batch.real_logits - ema['fake']) ** 2) + jnp.mean(
            jax.nn.relu(ema['real'] - batch.fake_logits) ** 2
        )

    return fn


def _lecam_state(config):
    decay, start = config.reg.lecam_decay, config.reg.lecam_start_d_step

    def update(ema, batch: DiscriminatorBatch):
        # The authors' EMA copies the batch means until its start iteration.
        d = jnp.where(batch.d_index < start, 0.0, decay)
        return {
            side: d * ema[side] + (1.0 - d) * lax.stop_gradient(batch.global_mean(logits))
            for side, logits in (('real', batch.real_logits), ('fake', batch.fake_logits))
        }

    return Stateful(lambda: {'real': jnp.zeros(()), 'fake': jnp.zeros(())}, update)


def _cross_entropy(class_logits, labels):
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(class_logits, labels))


def _acgan_d(config):
    """ACGAN (Odena et al. 2017), D side: classify reals and fakes by their labels."""
    del config

    def fn(batch: DiscriminatorBatch):
        return _cross_entropy(batch.real_class_logits, batch.real_labels) + _cross_entropy(
            batch.fake_class_logits, batch.fake_labels
        )

    return fn


# ---- Generator regularisers -----------------------------------------------------


def _acgan_g(config):
    """ACGAN, G side: fakes should be classified as the label they were drawn for."""
    del config
    return lambda batch: _cross_entropy(batch.fake_class_logits, batch.fake_labels)


def _latent_consistency_g(config):
    """zCR, G side: -||G(z) - G(z + noise)||^2 (mean over pixels), against collapse."""

    def fn(batch: GeneratorBatch):
        moved = batch.generate(_latent_noise(config, batch.z, batch.example_keys(batch.key)))
        return -jnp.mean((batch.images - moved) ** 2)

    return fn


_MODE_SEEKING_KEY = 0x4D53  # Folded into the G step's key: draws apart from other terms'.


def _mode_seeking(config):
    """Mode seeking (Mao et al. 2019, MSGAN), against G mapping many latents to one image
    within a condition: 1 / (mean |G(z, c) - G(z2, c)| / mean |z - z2| + 1e-5), the means
    over the global batch (each micro-batch's with ``train.grad_accum``), z2 fresh latents
    (one per example, by global index) for the same labels c. The authors' conditional
    DCGAN adds it with weight 1 and eps 1e-5; there the two latents' images are the
    halves of one doubled batch, all of it in the GAN loss, while here G(z2, c) is an
    extra pass that only this term sees.
    """
    draw_latent = sampling.LATENTS[config.model.z_distribution]

    def fn(batch: GeneratorBatch):
        keys = batch.example_keys(jax.random.fold_in(batch.key, _MODE_SEEKING_KEY))
        z2 = jax.vmap(lambda key: draw_latent(key, batch.z.shape[1:]))(keys)
        images_apart = batch.global_mean(jnp.abs(batch.images - batch.generate(z2)))
        latents_apart = batch.global_mean(jnp.abs(batch.z - z2))
        return 1.0 / (images_apart / latents_apart + 1e-5)

    return fn


def path_lengths(synthesize, ws, noise):
    """StyleGAN2's path lengths: per example, the norm of J_w^T y, averaged over ws.

    ``synthesize``: ws [N, num_ws, w_dim] -> images [N, H, W, C]; ``noise`` y has the
    images' shape. Returns sqrt(mean over ws of sum over w_dim of (d sum(G(w) y) /
    dw)^2), [N] (official ``StyleGAN2Loss``, ``Gpl``).
    """
    _, vjp = jax.vjp(synthesize, ws)
    (grads,) = vjp(noise)
    return jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grads), axis=2), axis=1))


def _path_length(config):
    """Path-length regularisation (Karras et al. 2020, StyleGAN2), as the official code.

    Every ``reg.pl_every_g_steps`` G updates, scaled by that interval: on
    ``1 / reg.pl_batch_shrink`` of the batch, fresh latents (style-mixed like the
    step's), y ~ N(0, I) / sqrt(H W) per image; the average a of the lengths moves
    by ``reg.pl_decay`` toward their global-batch mean, and the penalty is the
    mean of (length - a)^2, a differentiated too (it is not detached officially).
    The state is a (TrainState.aux['pl']).
    """
    rc = config.reg
    every, shrink, decay = rc.pl_every_g_steps, rc.pl_batch_shrink, rc.pl_decay

    def fn(batch: GeneratorBatch):
        average = batch.aux['pl']

        def value():
            z_key, map_key, noise_key = jax.random.split(batch.key, 3)
            z, labels = batch.draw(z_key, batch.z.shape[0] // shrink)
            ws = batch.map_latents(z, labels, map_key)
            synthesize = lambda w: batch.synthesize(w, z)  # noqa: E731
            shape = jax.eval_shape(synthesize, ws).shape
            keys = batch.example_keys(noise_key, shape[0])
            noise = jax.vmap(lambda k: jax.random.normal(k, shape[1:]))(keys)
            lengths = path_lengths(synthesize, ws, noise / math.sqrt(shape[1] * shape[2]))
            moved = average + decay * (batch.global_mean(lengths) - average)
            return every * jnp.mean(jnp.square(lengths - moved)), lax.stop_gradient(moved)

        if every == 1:
            return value()
        zero = jnp.zeros_like(jnp.sum(batch.images))  # Device-varying, as value()'s.
        return lax.cond(batch.g_index % every == 0, value, lambda: (zero, average))

    return fn


def _path_length_state(config):
    del config
    return Stateful(lambda: jnp.zeros(()), None)


def orthogonality(params) -> Array:
    """BigGAN's orthogonal regulariser: sum over kernels of ||W^T W * (1 - I)||_F^2.

    W = reshape(kernel, (-1, out)): the off-diagonal Gram matrix of the output
    filters (Brock et al. 2019, eq. 3). Only params named 'kernel' are included,
    so embeddings (BigGAN's shared class embedding) and biases are not. Computed
    from the smaller Gram matrix, with no identity matrix: ||W^T W||_F^2 equals
    ||W W^T||_F^2 and the diagonal of W^T W holds the squared column norms, so
    the sum is ||G||_F^2 - sum_j ||w_j||^4 with G the smaller of the two.
    """
    total = jnp.zeros(())
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        if getattr(path[-1], 'key', None) == 'kernel' and leaf.ndim >= 2:
            w = leaf.reshape(-1, leaf.shape[-1])
            gram = w @ w.T if w.shape[0] < w.shape[1] else w.T @ w
            total += jnp.sum(gram**2) - jnp.sum(jnp.sum(w**2, axis=0) ** 2)
    return total


def _orthogonal(config):
    del config
    return lambda batch: orthogonality(batch.g_params)


class TermSpec(NamedTuple):
    """A registered regulariser: its ``reg`` weight key and how to build its function."""

    weight_key: str
    make: Callable  # config -> fn(batch) -> scalar
    # Whether the config switches it on; default: a positive weight.
    active: Callable = lambda config, weight: weight > 0
    state: Callable | None = None  # config -> Stateful
    # A lazy regulariser: the ``reg`` key of its interval k (its fn runs every k D steps or
    # G updates, scaled by k); None: it runs in every step.
    every_key: str | None = None


def _has_penalty(config, weight):
    return config.reg.penalty is not None and weight > 0


def _is_acgan(config, weight):
    return config.model.conditioning == 'acgan' and weight > 0


D_TERMS: dict[str, TermSpec] = {
    'penalty': TermSpec(
        'penalty_weight', _gradient_penalty, _has_penalty, every_key='penalty_every_d_steps'
    ),
    'bcr_real': TermSpec('bcr_real_weight', _balanced_consistency('real')),
    'bcr_fake': TermSpec('bcr_fake_weight', _balanced_consistency('fake')),
    'zcr': TermSpec('zcr_d_weight', _latent_consistency_d),
    'lecam': TermSpec('lecam_weight', _lecam, state=_lecam_state),
    'acgan': TermSpec('acgan_weight', _acgan_d, _is_acgan),
}

G_TERMS: dict[str, TermSpec] = {
    'ortho': TermSpec('ortho_weight', _orthogonal),
    'zcr': TermSpec('zcr_g_weight', _latent_consistency_g),
    'mode_seeking': TermSpec('mode_seeking_weight', _mode_seeking),
    'acgan': TermSpec('acgan_weight', _acgan_g, _is_acgan),
    'pl': TermSpec(
        'pl_weight', _path_length, state=_path_length_state, every_key='pl_every_g_steps'
    ),
}


class RegPhase(NamedTuple):
    """The lazy regularisers' own optimiser step (``reg.lazy_separate_step``), as the
    official StyleGAN2's Dreg and Greg phases: every ``every`` D steps (G updates), after
    the main step and on its new parameters, the loss is the sum of ``terms`` alone (each
    scaled by ``every``); no terms: no such step."""

    terms: tuple = ()
    every: int = 1


def _active_terms(registry, config):
    """(main terms, RegPhase, states): with ``reg.lazy_separate_step`` the lazy terms
    make the RegPhase, else they join the main terms."""
    terms, lazy, states = [], [], {}
    for name, spec in registry.items():
        weight = config.reg[spec.weight_key]
        if spec.active(config, weight):
            state = None if spec.state is None else spec.state(config)
            stateful = state is not None and state.update is None
            term = Term(name, float(weight), spec.make(config), stateful)
            separate = spec.every_key is not None and config.reg.lazy_separate_step
            (lazy if separate else terms).append((term, spec))
            if state is not None:
                states[name] = state
    phase = RegPhase()
    if lazy:
        intervals = {config.reg[spec.every_key] for _, spec in lazy}
        assert len(intervals) == 1, 'the lazy terms of one network share their interval'
        phase = RegPhase(tuple(term for term, _ in lazy), intervals.pop())
    return [term for term, _ in terms], phase, states


# ---- Augmentation ---------------------------------------------------------------


class Augmentation(NamedTuple):
    """Differentiable augmentation of every D input, real and fake, in D and G steps."""

    apply: Callable  # (images, keys, aux) -> images
    state: Stateful | None = None


def _no_augmentation(config):
    del config
    return Augmentation(lambda images, keys, aux: images)


def _diffaugment(config):
    """DiffAugment (Zhao et al. 2020) with ``augment.policy``."""
    policy = parse_policy(config.augment.policy)
    return Augmentation(lambda images, keys, aux: augment_lib.diffaugment(images, keys, policy))


def _ada(config):
    """ADA (Karras et al. 2020): p follows sign(D(real)) toward ``augment.ada_target``.

    The mean sign and the number of reals are accumulated over
    ``augment.ada_every_d_steps`` D steps, then p moves by images / (speed * 1000).
    """
    ac = config.augment

    def update(ada, batch: DiscriminatorBatch):
        signs = lax.stop_gradient(batch.global_mean(jnp.sign(batch.real_logits)))
        count = ada['count'] + batch.global_batch
        sign_sum = ada['sign_sum'] + signs * batch.global_batch
        adjust = (batch.d_index + 1) % ac.ada_every_d_steps == 0
        p = augment_lib.ada_update_p(
            ada['p'],
            sign_sum,
            count,
            target=ac.ada_target,
            batch_images=count,
            speed_kimg=ac.ada_speed_kimg,
        )
        zero = jnp.zeros(())
        return {
            'p': jnp.where(adjust, p, ada['p']),
            'sign_sum': jnp.where(adjust, zero, sign_sum),
            'count': jnp.where(adjust, zero, count),
        }

    def init():
        return {
            'p': jnp.asarray(ac.ada_p_init, jnp.float32),
            'sign_sum': jnp.zeros(()),
            'count': jnp.zeros(()),
        }

    return Augmentation(
        lambda images, keys, aux: augment_lib.ada_augment(images, keys, aux['augment']['p']),
        Stateful(init, update),
    )


AUGMENTATIONS: dict[str | None, Callable] = {
    None: _no_augmentation,
    'diffaugment': _diffaugment,
    'ada': _ada,
}


# ---- PacGAN ---------------------------------------------------------------------


def pack(x: Array, m: int) -> Array:
    """PacGAN (Lin et al. 2018): m consecutive examples joined into one D input.

    [B, ..., C] -> [B/m, ..., m*C]: images are stacked along channels, flat
    samples along features, so D sees m samples at once and can spot a lack of
    diversity. m = 1 is the identity.
    """
    b, *rest = x.shape
    x = x.reshape(b // m, m, *rest)
    return jnp.moveaxis(x, 1, -2).reshape(b // m, *rest[:-1], m * rest[-1])


# ---- Unrolled GAN ---------------------------------------------------------------


def unroll(d_loss, d_params, d_opt_state, d_tx, *, steps: int, constrain=lambda p: p):
    """Unrolled GAN (Metz et al. 2017): D's params after ``steps`` optimiser updates.

    Plain optax updates, so ``jax.grad`` of whatever ``d_loss`` closes over (G's
    fakes) differentiates through all of them, second-order terms included: no
    higher-order library needed. ``steps`` = 0 returns ``d_params``.
    """
    for _ in range(steps):
        updates, d_opt_state = d_tx.update(jax.grad(d_loss)(d_params), d_opt_state, d_params)
        d_params = constrain(optax.apply_updates(d_params, updates))
    return d_params


# ---- The assembled objective ----------------------------------------------------


class Objective(NamedTuple):
    loss: losses.GANLoss
    d_terms: list[Term]
    g_terms: list[Term]
    augmentation: Augmentation
    states: dict[str, Stateful]  # By TrainState.aux key.
    pack: int
    weight_clip: float | None
    unroll_steps: int
    style_mixing_prob: float = 0.0  # StyleGAN2's style mixing in every G run of training.
    d_reg: RegPhase = RegPhase()  # D's and G's lazy regularisation phases, if any.
    g_reg: RegPhase = RegPhase()

    def init_aux(self) -> dict:
        return {name: state.init() for name, state in self.states.items()}

    def update_aux(self, aux: dict, batch: DiscriminatorBatch) -> dict:
        """The D-side states updated for ``batch``; the G terms' states as they were."""
        return {
            name: value
            if self.states[name].update is None
            else self.states[name].update(value, batch)
            for name, value in aux.items()
        }

    def constrain_d(self, d_params):
        """WGAN's weight clipping (Arjovsky et al. 2017) after each D update, if set."""
        if self.weight_clip is None:
            return d_params
        c = self.weight_clip
        return jax.tree.map(lambda p: jnp.clip(p, -c, c), d_params)


def validate(
    config, *, data_shape: tuple[int, ...], num_classes: int | None, local_batches: tuple[int, ...]
) -> None:
    """Rejects settings that cannot work together, before anything is built.

    ``data_shape`` is one example's shape ((H, W, C) for images), ``num_classes``
    the dataset's (None without labels), ``local_batches`` the per-device batches
    of the D and G steps.
    """
    reg, aug, conditioning = config.reg, config.augment, config.model.conditioning
    is_image = len(data_shape) == 3
    errors = []
    if reg.weight_clip is not None and reg.penalty is not None:
        errors.append(
            f'reg.weight_clip={reg.weight_clip} and reg.penalty={reg.penalty!r} are '
            'two Lipschitz constraints; WGAN uses clipping, WGAN-GP the penalty. '
            'Set one of them to None.'
        )
    if reg.penalty is not None:
        penalties.get_penalty(reg.penalty)  # Raises, naming the accepted ones.
    if reg.penalty_every_d_steps < 1:
        errors.append(
            f'reg.penalty_every_d_steps={reg.penalty_every_d_steps} must be >= 1 (1: every D step).'
        )
    if aug.name not in AUGMENTATIONS:
        errors.append(f'augment.name={aug.name!r} is not one of {sorted(AUGMENTATIONS, key=str)}.')
    elif aug.name is not None and not is_image:
        errors.append(
            f'augment.name={aug.name!r} augments images, but the data are '
            f'{data_shape}-shaped samples; set augment.name=None.'
        )
    if aug.name == 'diffaugment':
        parse_policy(aug.policy)
    if reg.bcr_real_weight > 0 or reg.bcr_fake_weight > 0:
        if not is_image:
            errors.append(
                'bCR (reg.bcr_real_weight, reg.bcr_fake_weight) augments images, but the data '
                f'are {data_shape}-shaped samples.'
            )
        parse_policy(reg.cr_policy)
    if conditioning is not None and num_classes is None:
        errors.append(
            f'model.conditioning={conditioning!r} needs class labels, but the dataset has none.'
        )
    accum = config.train.grad_accum
    if accum < 1 or any(b % accum for b in local_batches):
        errors.append(
            f'train.grad_accum={accum} must be >= 1 and divide the per-device batches of '
            f'the D and G steps {local_batches}.'
        )
    elif accum > 1:
        local_batches = tuple(b // accum for b in local_batches)  # Packed per micro-batch.
        unsupported = {
            'augment.name': aug.name if aug.name == 'ada' else None,
            'reg.lecam_weight': reg.lecam_weight or None,
            'train.unroll_steps': config.train.unroll_steps or None,
            'train.simultaneous': config.train.simultaneous or None,
        }
        unsupported = {k: v for k, v in unsupported.items() if v is not None}
        if unsupported:
            errors.append(
                f'train.grad_accum={accum} is not implemented with {unsupported}: ADA and '
                'LeCam update their state from the whole batch before its loss, an unrolled '
                'D looks ahead on the whole batch, and a simultaneous step shares one '
                'backward pass; use train.grad_accum=1.'
            )
    if config.train.pack < 1 or any(b % config.train.pack for b in local_batches):
        errors.append(
            f'train.pack={config.train.pack} must be >= 1 and divide the '
            f'per-device batches of the D and G steps {local_batches} (per micro-batch '
            'with train.grad_accum).'
        )
    elif config.train.pack > 1 and conditioning is not None:
        errors.append(
            f'train.pack={config.train.pack} with model.conditioning='
            f'{conditioning!r}: a packed D input mixes several labels.'
        )
    g_batch = config.train.g_batch_size
    if config.train.simultaneous and (config.train.n_dis != 1 or g_batch is not None):
        errors.append(
            'train.simultaneous=True takes one D and one G step from the same parameters '
            f'on the same fakes; it needs train.n_dis=1 (not {config.train.n_dis}) and '
            f'train.g_batch_size=None (not {g_batch}).'
        )
    if config.train.unroll_steps < 0:
        errors.append(f'train.unroll_steps={config.train.unroll_steps} must be >= 0.')
    g_steps = config.train.g_steps
    if g_steps < 1:
        errors.append(f'train.g_steps={g_steps} must be >= 1 (1: one G update per step).')
    elif g_steps > 1 and (config.train.simultaneous or config.optim.lr_schedule != 'constant'):
        errors.append(
            f'train.g_steps={g_steps} takes several G updates per step; it needs '
            f'train.simultaneous=False (not {config.train.simultaneous}) and '
            f"optim.lr_schedule='constant' (not {config.optim.lr_schedule!r}: a schedule "
            'counts one G update per step).'
        )
    if config.train.shared_latents and (config.train.simultaneous or g_batch is not None):
        errors.append(
            "train.shared_latents=True gives the G steps the last D step's latents; it needs "
            f'train.simultaneous=False (not {config.train.simultaneous}: D and G already share '
            f"their fakes) and train.g_batch_size=None (not {g_batch}: as many fakes as D's)."
        )
    if reg.lazy_separate_step and (
        config.train.simultaneous or config.optim.lr_schedule != 'constant'
    ):
        errors.append(
            'reg.lazy_separate_step=True gives the lazy regularisers optimiser steps of their '
            f'own; it needs train.simultaneous=False (not {config.train.simultaneous}: one '
            f"step of D and G together) and optim.lr_schedule='constant' (not "
            f'{config.optim.lr_schedule!r}: a schedule would count the extra steps).'
        )
    if config.model.z_distribution not in sampling.LATENTS:
        errors.append(
            f'model.z_distribution={config.model.z_distribution!r} is not one of '
            f'{sorted(sampling.LATENTS)}.'
        )
    errors += _stylegan2_errors(config, local_batches)
    if errors:
        raise ValueError('Invalid combination of settings:\n  ' + '\n  '.join(errors))


def _stylegan2_errors(config, local_batches):
    """Path length and style mixing need StyleGAN2's mapping and synthesis halves; its
    bfloat16 blocks exist in StyleGAN2 only."""
    reg, errors = config.reg, []
    if not 0.0 <= reg.style_mixing_prob <= 1.0:
        errors.append(f'reg.style_mixing_prob={reg.style_mixing_prob} must be in [0, 1].')
    for key, on in (
        ('pl_weight', reg.pl_weight > 0),
        ('style_mixing_prob', reg.style_mixing_prob > 0),
    ):
        if on and config.model.name != 'stylegan2':
            errors.append(
                f"reg.{key}={reg[key]} needs model.name='stylegan2' (w space), "
                f'not {config.model.name!r}; set it to 0.'
            )
    if config.model.bf16_resolutions and config.model.name != 'stylegan2':
        errors.append(
            f'model.bf16_resolutions={config.model.bf16_resolutions} sets the precision of '
            f"StyleGAN2's top blocks, not of model.name={config.model.name!r}; set it to 0 "
            "(train.compute_dtype sets every model's)."
        )
    if reg.pl_weight > 0 and config.train.grad_accum > 1:
        errors.append(
            f'reg.pl_weight={reg.pl_weight} with train.grad_accum={config.train.grad_accum}: '
            'the path-length average moves with the whole batch at once; set one of them off.'
        )
    if reg.pl_every_g_steps < 1:
        errors.append(
            f'reg.pl_every_g_steps={reg.pl_every_g_steps} must be >= 1 (1: every G step).'
        )
    if reg.pl_batch_shrink < 1 or local_batches[-1] % reg.pl_batch_shrink:
        errors.append(
            f'reg.pl_batch_shrink={reg.pl_batch_shrink} must be >= 1 and divide the per-device '
            f'batch of the G step ({local_batches[-1]}).'
        )
    if not 0.0 <= reg.pl_decay <= 1.0:
        errors.append(f'reg.pl_decay={reg.pl_decay} must be in [0, 1].')
    return errors


def build_objective(config) -> Objective:
    """The objective of ``config`` (call ``validate`` first for clear errors)."""
    d_terms, d_reg, d_states = _active_terms(D_TERMS, config)
    g_terms, g_reg, g_states = _active_terms(G_TERMS, config)
    augmentation = AUGMENTATIONS[config.augment.name](config)
    states = {**d_states, **g_states}
    if augmentation.state is not None:
        states['augment'] = augmentation.state
    return Objective(
        loss=losses.get_loss(config.train.loss),
        d_terms=d_terms,
        g_terms=g_terms,
        augmentation=augmentation,
        states=states,
        pack=config.train.pack,
        weight_clip=config.reg.weight_clip,
        unroll_steps=config.train.unroll_steps,
        style_mixing_prob=config.reg.style_mixing_prob,
        d_reg=d_reg,
        g_reg=g_reg,
    )
