"""One full update equals the textbook algorithm written out in plain JAX.

The reference below uses only the models' ``apply``, ``jax.grad`` of the losses
as the papers write them and plain SGD; it shares no code with step.py except
the documented randomness contract (the step key ``fold_in(rng, step)`` splits
into the D and G keys; D step ``j`` uses ``fold_in(d_key, j)``; each step's
first of four split keys draws its latents by global example index, the
regulariser named ``n`` from the fourth folded with ``crc32(n) & 0x7FFFFFFF``,
then per example by global index). A G that
maximised its loss, stepped against the pre-update D, or fakes that leaked a
gradient into G during D's step would each change the numbers.
"""

import functools
import zlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from gan_jax import augment, builder, models, parallel, sampling
from gan_jax import objective as obj_lib
from gan_jax import step as step_lib
from tests import helpers

LR = 0.05
BATCH = 8


PENALTY_WEIGHT = 0.7


def _config(loss, n_dis, simultaneous, penalty=None, every=1, grad_accum=1):
    return helpers.tiny_config(
        **{
            'reg.penalty': penalty,
            'reg.penalty_weight': PENALTY_WEIGHT,
            'reg.penalty_every_d_steps': every,
            'data.source': 'ring',
            'model.name': 'mlp',
            'model.z_dim': 3,
            'model.g_width': 6,
            'model.d_width': 5,
            'model.g_depth': 1,
            'model.d_depth': 1,
            'train.batch_size': BATCH,
            'train.n_dis': n_dis,
            'train.loss': loss,
            'train.simultaneous': simultaneous,
            'optim.name': 'sgd',
            'optim.g_lr': LR,
            'optim.d_lr': LR,
            'train.grad_accum': grad_accum,
        }
    )


# (D's loss, G's loss) of the logits, as the papers write them.
LOSSES = {
    'non_saturating': (
        lambda r, f: jnp.mean(jax.nn.softplus(-r)) + jnp.mean(jax.nn.softplus(f)),
        lambda f: jnp.mean(jax.nn.softplus(-f)),
    ),
    'hinge': (
        lambda r, f: jnp.mean(jax.nn.relu(1 - r)) + jnp.mean(jax.nn.relu(1 + f)),
        lambda f: -jnp.mean(f),
    ),
    'wasserstein': (lambda r, f: jnp.mean(f) - jnp.mean(r), lambda f: -jnp.mean(f)),
}


def _half_squared_input_gradient(discriminate, x):
    """R1/R2 (Mescheder et al. 2018): the batch mean of ||dD(x_i)/dx_i||^2 / 2."""
    per_example = jax.vmap(jax.grad(lambda xi: discriminate(xi[None]).reshape(())))(x)
    return 0.5 * jnp.mean(jnp.sum(per_example**2, axis=1))


def _reference(setup, state, reals, losses, simultaneous, penalty=None, every=1):
    """(G params, D params) after one update, written out; ``losses`` = (D's, G's).

    ``penalty`` 'r1' (at the reals) or 'r2' (at the fakes) is added to D's loss
    in the D steps whose index is a multiple of ``every``, times ``every`` (lazy
    regularisation, Karras et al. 2020).
    """
    d_loss, g_loss = losses
    generate = lambda g, z: setup.generator.apply({'params': g}, z, train=True)
    discriminate = lambda d, x: setup.discriminator.apply({'params': d}, x, train=True)
    z_dim = 3
    d_key, g_key = jax.random.split(jax.random.fold_in(state.rng, state.step))
    g, d = state.g_params, state.d_params
    d_before = d
    for j, real in enumerate(reals):
        z_key = jax.random.split(jax.random.fold_in(d_key, j), 4)[0]
        fake = generate(g, sampling.sample_latents(z_key, jnp.arange(BATCH), z_dim))

        def loss(p, real=real, fake=fake, j=j):
            value = d_loss(discriminate(p, real), discriminate(p, fake))
            if penalty is not None and j % every == 0:
                at = real if penalty == 'r1' else fake
                penalty_value = _half_squared_input_gradient(lambda x: discriminate(p, x), at)
                value += every * PENALTY_WEIGHT * penalty_value
            return value

        grads = jax.grad(loss)(d)
        d = jax.tree.map(lambda p, gr: p - LR * gr, d, grads)
    if simultaneous:
        g_key, d_for_g = jax.random.fold_in(d_key, 0), d_before
    else:
        d_for_g = d
    z = sampling.sample_latents(jax.random.split(g_key, 4)[0], jnp.arange(BATCH), z_dim)
    grads = jax.grad(lambda p: g_loss(discriminate(d_for_g, generate(p, z))))(g)
    g = jax.tree.map(lambda p, gr: p - LR * gr, g, grads)
    return g, d


def _update(config, state, reals):
    setup = builder.build(config)
    update = step_lib.compile_update(setup.make_update(config), parallel.make_mesh())
    batch = {'image': reals, 'label': jnp.zeros(reals.shape[:2], jnp.int32)}
    new, _ = update(jax.tree.map(jnp.copy, state), batch)
    return new


def _max_diff(a, b):
    return max(
        float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


@pytest.mark.parametrize(
    'loss, n_dis, simultaneous, penalty, every, grad_accum',
    [
        ('non_saturating', 1, False, None, 1, 1),
        ('non_saturating', 2, False, None, 1, 1),
        ('non_saturating', 1, True, None, 1, 1),
        ('hinge', 1, False, None, 1, 1),
        ('hinge', 2, False, None, 1, 1),
        ('wasserstein', 2, False, None, 1, 1),
        ('non_saturating', 2, False, 'r1', 1, 1),
        ('non_saturating', 2, False, 'r1', 2, 1),
        ('hinge', 2, False, 'r2', 1, 1),
        # Gradient accumulation: the written-out update of the whole batch of 8.
        ('non_saturating', 2, False, None, 1, 4),
        ('hinge', 1, False, None, 1, 2),
        ('non_saturating', 2, False, 'r1', 2, 4),
        ('hinge', 2, False, 'r2', 1, 4),
    ],
)
def test_one_update_equals_the_written_out_algorithm(
    loss, n_dis, simultaneous, penalty, every, grad_accum
):
    config = _config(loss, n_dis, simultaneous, penalty, every, grad_accum)
    setup = builder.build(config)
    state = setup.init_state()
    reals = jax.random.normal(jax.random.PRNGKey(1), (n_dis, BATCH, 2))
    expected_g, expected_d = _reference(
        setup, state, reals, LOSSES[loss], simultaneous, penalty, every
    )
    new = _update(config, state, reals)
    for got, want in ((new.g_params, expected_g), (new.d_params, expected_d)):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert _max_diff(new.g_params, state.g_params) > 1e-4  # It moved.


def test_a_wrong_update_would_fail_the_comparison():
    # G ascending its loss, or stepping against D before its step, moves G elsewhere.
    config = _config('non_saturating', 1, False)
    setup = builder.build(config)
    state = setup.init_state()
    reals = jax.random.normal(jax.random.PRNGKey(1), (1, BATCH, 2))
    new = _update(config, state, reals)
    d_loss, g_loss = LOSSES['non_saturating']
    ascending, _ = _reference(setup, state, reals, (d_loss, lambda f: -g_loss(f)), False)
    stale_d, _ = _reference(setup, state, reals, (d_loss, g_loss), True)
    assert _max_diff(new.g_params, ascending) > 1e-4
    assert _max_diff(new.g_params, stale_d) > 1e-6


def _sgd(params, grads):
    return jax.tree.map(lambda p, gr: p - LR * gr, params, grads)


def _cross_entropy(real_logits, fake_logits):
    return LOSSES['non_saturating'][0](real_logits, fake_logits)


def test_simultaneous_unrolled_minimax_update_equals_the_written_out_algorithm():
    # The Unrolled GAN demo's update: D and G step from the same parameters on the same
    # batch; G minimises D's whole loss (real term included) after k SGD steps of D.
    unroll = 2
    config = _config('minimax', 1, True)
    with config.unlocked():
        config.train.unroll_steps = unroll
    setup = builder.build(config)
    state = setup.init_state()
    reals = jax.random.normal(jax.random.PRNGKey(1), (1, BATCH, 2))
    real = reals[0]
    generate = lambda g, z: setup.generator.apply({'params': g}, z, train=True)
    discriminate = lambda d, x: setup.discriminator.apply({'params': d}, x, train=True)
    d_key, _ = jax.random.split(jax.random.fold_in(state.rng, state.step))
    z_key = jax.random.split(jax.random.fold_in(d_key, 0), 4)[0]
    z = sampling.sample_latents(z_key, jnp.arange(BATCH), 3)
    d, g = state.d_params, state.g_params

    def d_loss(p, fake):
        return _cross_entropy(discriminate(p, real), discriminate(p, fake))

    def g_objective(with_real_term):
        def objective(gp):
            fake = generate(gp, z)
            unrolled = d
            for _ in range(unroll):
                unrolled = _sgd(unrolled, jax.grad(d_loss)(unrolled, fake))
            if with_real_term:
                return -d_loss(unrolled, fake)
            return -jnp.mean(jax.nn.softplus(discriminate(unrolled, fake)))

        return objective

    expected_d = _sgd(d, jax.grad(d_loss)(d, generate(g, z)))
    expected_g = _sgd(g, jax.grad(g_objective(True))(g))
    new = _update(config, state, reals)
    for got, want in ((new.g_params, expected_g), (new.d_params, expected_d)):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Without the real term (D's loss on reals also depends on G once D is unrolled)
    # G would move elsewhere.
    fake_term_only = _sgd(g, jax.grad(g_objective(False))(g))
    assert _max_diff(fake_term_only, expected_g) > 1e-5
    assert _max_diff(new.g_params, state.g_params) > 1e-4


@pytest.mark.parametrize('shared_latents', [False, True])
def test_two_g_steps_on_uniform_latents_equal_the_written_out_algorithm(shared_latents):
    # PacGAN's VEEGAN setting: one D step, then two G steps against the same new D, each
    # on its own latents (G step j > 0 draws from fold_in(g_key, j)) or, as the authors'
    # code has it, both on the D step's (train.shared_latents); z ~ U[-1, 1].
    config = _config('non_saturating', 1, False)
    with config.unlocked():
        config.train.g_steps = 2
        config.train.shared_latents = shared_latents
        config.model.z_distribution = 'uniform'
    setup = builder.build(config)
    state = setup.init_state()
    reals = jax.random.normal(jax.random.PRNGKey(1), (1, BATCH, 2))
    generate = lambda g, z: setup.generator.apply({'params': g}, z, train=True)
    discriminate = lambda d, x: setup.discriminator.apply({'params': d}, x, train=True)

    def uniform_latents(key):
        z_key = jax.random.split(key, 4)[0]
        return jnp.stack(
            [
                jax.random.uniform(jax.random.fold_in(z_key, i), (3,), minval=-1.0, maxval=1.0)
                for i in range(BATCH)
            ]
        )

    d_key, g_key = jax.random.split(jax.random.fold_in(state.rng, state.step))
    d, g = state.d_params, state.g_params
    d_latents = uniform_latents(jax.random.fold_in(d_key, 0))
    fake = generate(g, d_latents)
    d = _sgd(
        d, jax.grad(lambda p: _cross_entropy(discriminate(p, reals[0]), discriminate(p, fake)))(d)
    )
    for key in (g_key, jax.random.fold_in(g_key, 1)):
        z = d_latents if shared_latents else uniform_latents(key)
        assert float(jnp.abs(z).max()) <= 1.0 and float(z.min()) < 0.0
        g_loss = lambda p: jnp.mean(jax.nn.softplus(-discriminate(d, generate(p, z))))
        g = _sgd(g, jax.grad(g_loss)(g))
    new = _update(config, state, reals)
    for got, want in ((new.g_params, g), (new.d_params, d)):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    one_g_step_config = _config('non_saturating', 1, False)
    with one_g_step_config.unlocked():
        one_g_step_config.model.z_distribution = 'uniform'
    one_g_step = _update(one_g_step_config, state, reals)
    assert _max_diff(new.g_params, one_g_step.g_params) > 1e-5


# ---- Consistency regularisation (Zhao et al. 2021), on images ------------------------
#
# A tiny image G (one dense layer, tanh) and D (two dense layers on the flattened image),
# registered as a model for these tests only, so the reference can call them directly.
IMAGE_SHAPE = (8, 8, 1)  # The digits source at its native 8x8.
Z_DIM = 3


class _TinyImageG(nn.Module):
    @nn.compact
    def __call__(self, z, labels=None, *, train):
        del labels, train
        return jnp.tanh(nn.Dense(int(np.prod(IMAGE_SHAPE)))(z)).reshape(-1, *IMAGE_SHAPE)


class _TinyImageD(nn.Module):
    @nn.compact
    def __call__(self, x, labels=None, *, train):
        del labels, train
        hidden = jnp.tanh(nn.Dense(4)(x.reshape(x.shape[0], -1)))
        return nn.Dense(1)(hidden)[:, 0]


def _mirror(images, keys):
    """The known transformation T: every image mirrored left-right (no randomness)."""
    del keys
    return images[:, :, ::-1]


@pytest.fixture
def tiny_image_models(monkeypatch):
    monkeypatch.setitem(
        models.MODELS, 'tiny_image', lambda config, shape: (_TinyImageG(), _TinyImageD())
    )
    monkeypatch.setitem(augment.DIFFAUGMENT_OPS, 'mirror', _mirror)


def _image_config(**reg):
    return helpers.tiny_config(
        **{
            'data.source': 'digits',
            'data.resolution': IMAGE_SHAPE[0],
            'model.name': 'tiny_image',
            'model.z_dim': Z_DIM,
            'train.batch_size': BATCH,
            'optim.name': 'sgd',
            'optim.g_lr': LR,
            'optim.d_lr': LR,
            'reg.cr_policy': 'mirror',
            **{f'reg.{k}': v for k, v in reg.items()},
        }
    )


def _term_key(key, name):
    """The documented contract: a regulariser draws from fold_in(key, crc32(name) & 0x7FFFFFFF)."""
    return jax.random.fold_in(key, zlib.crc32(name.encode()) & 0x7FFFFFFF)


def _latent_noise(terms_key, sigma):
    """zCR's noise: N(0, sigma^2) per example i from fold_in(term key, global index i)."""
    key = _term_key(terms_key, 'zcr')
    return sigma * jnp.stack(
        [jax.random.normal(jax.random.fold_in(key, i), (Z_DIM,)) for i in range(BATCH)]
    )


def _consistency_reference(setup, state, real, reg):
    """(G params, D params, D's loss) after one non-saturating update with bCR and zCR,
    written out from Zhao et al. 2021 (eqs. for bCR and zCR; squared differences of D's
    logits averaged over the batch, G's term averaged over pixels too)."""
    generate = lambda g, z: setup.generator.apply({'params': g}, z, train=True)
    discriminate = lambda d, x: setup.discriminator.apply({'params': d}, x, train=True)
    d_key, g_key = jax.random.split(jax.random.fold_in(state.rng, state.step))
    g, d = state.g_params, state.d_params
    # D step 0: latents from the first of four keys, the regularisers' from the fourth.
    z_key, _, _, terms_key = jax.random.split(jax.random.fold_in(d_key, 0), 4)
    z = sampling.sample_latents(z_key, jnp.arange(BATCH), Z_DIM)
    fake = generate(g, z)
    moved_fake = generate(g, z + _latent_noise(terms_key, reg['zcr_sigma']))

    def d_loss(p):
        d_real, d_fake = discriminate(p, real), discriminate(p, fake)
        value = LOSSES['non_saturating'][0](d_real, d_fake)
        value += reg['bcr_real_weight'] * jnp.mean(
            (discriminate(p, _mirror(real, None)) - d_real) ** 2
        )
        value += reg['bcr_fake_weight'] * jnp.mean(
            (discriminate(p, _mirror(fake, None)) - d_fake) ** 2
        )
        value += reg['zcr_d_weight'] * jnp.mean((discriminate(p, moved_fake) - d_fake) ** 2)
        return value

    loss, grads = jax.value_and_grad(d_loss)(d)
    d = _sgd(d, grads)
    z_key, _, _, terms_key = jax.random.split(g_key, 4)
    z = sampling.sample_latents(z_key, jnp.arange(BATCH), Z_DIM)
    noise = _latent_noise(terms_key, reg['zcr_sigma'])

    def g_loss(p):
        images = generate(p, z)
        value = LOSSES['non_saturating'][1](discriminate(d, images))
        return value - reg['zcr_g_weight'] * jnp.mean((images - generate(p, z + noise)) ** 2)

    return _sgd(g, jax.grad(g_loss)(g)), d, loss


@pytest.mark.parametrize(
    'reg',
    [
        # Different weights on the two sides, so swapping them would show.
        {'bcr_real_weight': 3.0, 'bcr_fake_weight': 0.5},
        {'zcr_d_weight': 5.0, 'zcr_g_weight': 2.0, 'zcr_sigma': 0.5},
    ],
    ids=['bCR', 'zCR'],
)
def test_consistency_regularised_update_equals_the_written_out_algorithm(tiny_image_models, reg):
    reg = {
        'bcr_real_weight': 0.0,
        'bcr_fake_weight': 0.0,
        'zcr_d_weight': 0.0,
        'zcr_g_weight': 0.0,
        'zcr_sigma': 0.03,
    } | reg
    config = _image_config(**reg)
    setup = builder.build(config)
    state = setup.init_state()
    real = jax.random.uniform(jax.random.PRNGKey(1), (BATCH, *IMAGE_SHAPE), minval=-1.0, maxval=1.0)
    expected_g, expected_d, expected_loss = _consistency_reference(setup, state, real, reg)
    update = step_lib.compile_update(setup.make_update(config), parallel.make_mesh())
    batch = {'image': real[None], 'label': jnp.zeros((1, BATCH), jnp.int32)}
    new, metrics = update(jax.tree.map(jnp.copy, state), batch)
    np.testing.assert_allclose(metrics['d_loss'], expected_loss, rtol=1e-5)
    for got, want in ((new.g_params, expected_g), (new.d_params, expected_d)):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Without the terms the update differs: they are not negligible here.
    plain_g, plain_d, _ = _consistency_reference(
        setup, state, real, {k: 0.0 for k in reg} | {'zcr_sigma': 0.03}
    )
    assert _max_diff(plain_d, expected_d) > 1e-4
    if reg['zcr_g_weight']:
        assert _max_diff(plain_g, expected_g) > 1e-5


# ---- Lazy regularisation in a step of its own (StyleGAN2's official phases) -----------
#
# NVlabs/stylegan2-ada-pytorch training/training_loop.py: per network one optimiser shared
# by a main phase (every iteration, the main loss) and a reg phase (every k-th iteration,
# the regulariser alone times the gain k), each phase its own zero_grad, backward, step;
# the reg phase on the parameters the main phase has just updated.
#
# G's lazy regulariser here is a stand-in for path length (which needs StyleGAN2's
# networks, minutes to compile): TOY_WEIGHT * mean(G(z)^2) on the step's fakes, every k G
# updates and scaled by k, registered under the orthogonal regulariser's name and weight
# key, with path length's interval.
TOY_WEIGHT = 0.3


def _toy_g_term(config):
    every = config.reg.pl_every_g_steps

    def fn(batch):
        zero = jnp.zeros_like(jnp.sum(batch.images))
        value = lambda: every * jnp.mean(batch.images**2)  # noqa: E731
        return lax.cond(batch.g_index % every == 0, value, lambda: zero)

    return fn


TOY_G_TERM = obj_lib.TermSpec('ortho_weight', _toy_g_term, every_key='pl_every_g_steps')


@pytest.fixture
def lazy_toy_g_term(monkeypatch):
    monkeypatch.setitem(obj_lib.G_TERMS, 'ortho', TOY_G_TERM)


def lazy_config(separate, optimizer='sgd', d_every=2, g_every=2):
    """R1 every ``d_every`` D steps, the stand-in every ``g_every`` G updates, on the MLP."""
    config = _config('non_saturating', 1, False, 'r1', d_every)
    with config.unlocked():
        config.reg.lazy_separate_step = separate
        config.reg.ortho_weight = TOY_WEIGHT
        config.reg.pl_every_g_steps = g_every
        config.optim.name = optimizer
        config.optim.lazy_rescale = optimizer == 'adam'
    return config


def _lazy_reference(setup, state, reals, every, separate):
    """(G params, D params) after ``len(reals)`` SGD iterations (n_dis 1) from ``state``,
    R1 and the stand-in every ``every`` iterations (from iteration 0), written out: with
    ``separate`` the main step, then the regulariser's step from the new parameters;
    else one step of their sum."""
    generate = lambda g, z: setup.generator.apply({'params': g}, z, train=True)
    discriminate = lambda d, x: setup.discriminator.apply({'params': d}, x, train=True)
    d_loss, g_loss = LOSSES['non_saturating']
    g, d = state.g_params, state.d_params

    def steps(params, main, reg, regularised):
        if not regularised:
            return _sgd(params, jax.grad(main)(params))
        if separate:
            params = _sgd(params, jax.grad(main)(params))
            return _sgd(params, jax.grad(reg)(params))
        return _sgd(params, jax.grad(lambda p: main(p) + reg(p))(params))

    for t, real in enumerate(reals):
        d_key, g_key = jax.random.split(jax.random.fold_in(state.rng, t))
        z = sampling.sample_latents(
            jax.random.split(jax.random.fold_in(d_key, 0), 4)[0], jnp.arange(BATCH), 3
        )
        fake = generate(g, z)
        d = steps(
            d,
            lambda p, real=real, fake=fake: d_loss(discriminate(p, real), discriminate(p, fake)),
            lambda p, real=real: (
                every
                * PENALTY_WEIGHT
                * _half_squared_input_gradient(lambda x: discriminate(p, x), real)
            ),
            t % every == 0,
        )
        z = sampling.sample_latents(jax.random.split(g_key, 4)[0], jnp.arange(BATCH), 3)
        g = steps(
            g,
            lambda p, z=z: g_loss(discriminate(d, generate(p, z))),
            lambda p, z=z: every * TOY_WEIGHT * jnp.mean(generate(p, z) ** 2),
            t % every == 0,
        )
    return g, d


def _iterations(config, setup, state, reals):
    update = step_lib.compile_update(setup.make_update(config), parallel.make_mesh())
    labels = jnp.zeros((1, BATCH), jnp.int32)
    counts = []
    for real in reals:
        state, metrics = update(state, {'image': real[None], 'label': labels})
        counts.append([int(_adam_count(s)) for s in (state.g_opt_state, state.d_opt_state)])
    return state, metrics, counts


def _adam_count(opt_state):
    (count,) = [
        leaf
        for path, leaf in jax.tree_util.tree_leaves_with_path(opt_state)
        if getattr(path[-1], 'name', None) == 'count'
    ] or [jnp.zeros((), jnp.int32)]
    return count


@pytest.mark.slow
def test_lazy_regularisers_step_after_the_main_step_as_written_out(lazy_toy_g_term):
    """Two iterations, the first regularised (R1 and the stand-in, k = 2): with
    reg.lazy_separate_step the main step, then the regularisers' step (times k) from the
    new parameters. (Without it, one step of their sum: test_one_update_equals_the_
    written_out_algorithm's lazy R1.)"""
    config = lazy_config(True)
    setup = builder.build(config)
    state = setup.init_state()
    reals = jax.random.normal(jax.random.PRNGKey(1), (2, BATCH, 2))
    new, _, _ = _iterations(config, setup, jax.tree.map(jnp.copy, state), reals)

    def reference(separate):
        fn = functools.partial(_lazy_reference, setup, every=2, separate=separate)
        return jax.jit(fn)(state, reals)

    expected_g, expected_d = reference(True)
    for got, want in ((new.g_params, expected_g), (new.d_params, expected_d)):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # One step of the sum (the update before reg.lazy_separate_step) lands elsewhere.
    joined_g, joined_d = reference(False)
    assert _max_diff(joined_d, expected_d) > 1e-4
    assert _max_diff(joined_g, expected_g) > 1e-4


@pytest.mark.slow
def test_the_shared_adam_state_counts_the_regularisation_steps(lazy_toy_g_term):
    """StyleGAN2's rescaled Adam (optim.lazy_rescale) takes k + 1 steps per k iterations:
    its count moves by 2 on a regularised iteration (R1 every 2 D steps, the stand-in every
    3 G updates), by 1 otherwise."""
    config = lazy_config(True, 'adam', d_every=2, g_every=3)
    setup = builder.build(config)
    reals = jax.random.normal(jax.random.PRNGKey(1), (4, BATCH, 2))
    _, metrics, counts = _iterations(config, setup, setup.init_state(), reals)
    # [G's count, D's count] after iterations 0..3: G regularised at 0 and 3, D at 0 and 2.
    assert counts == [[2, 2], [3, 3], [4, 5], [6, 6]]
    assert float(metrics['g_ortho']) > 0 and float(metrics['d_penalty']) == 0.0


@pytest.mark.slow
def test_lazy_regularisers_step_alike_on_1_and_4_devices():
    """A regularised iteration (R1 and the stand-in in steps of their own, SGD) gives the
    same parameters on 1 and 4 devices."""
    out = helpers.run_python(
        """
import jax, jax.numpy as jnp, numpy as np
from gan_jax import builder, parallel
from gan_jax import objective as obj_lib
from gan_jax import step as step_lib
from tests import test_update_reference as ref

obj_lib.G_TERMS['ortho'] = ref.TOY_G_TERM
config = ref.lazy_config(True)
setup = builder.build(config)
reals = jax.random.normal(jax.random.PRNGKey(1), (1, ref.BATCH, 2))
runs = []
for n in (1, 4):
    mesh = parallel.make_mesh(jax.devices()[:n])
    state = jax.jit(setup.init_state, out_shardings=parallel.replicated(mesh))()
    update = step_lib.compile_update(setup.make_update(config), mesh)
    batch = {'image': reals, 'label': jnp.zeros((1, ref.BATCH), jnp.int32)}
    state, metrics = update(state, jax.device_put(batch, parallel.batch_sharding(mesh)))
    assert float(metrics['d_penalty']) > 0 and float(metrics['g_ortho']) > 0
    runs.append(parallel.to_host((state.g_params, state.d_params)))
print(max(float(np.max(np.abs(a - b))) for a, b in zip(*map(jax.tree.leaves, runs))))
""",
        devices=4,
    )
    # Float32 reduction order only; a gradient summed over devices would be 4x (~LR apart).
    assert float(out.split()[-1]) < 1e-6
