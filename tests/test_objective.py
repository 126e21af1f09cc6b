"""The toolbox's ingredients as numbers, their registry, and the invalid combinations."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import objective as obj_lib
from gan_jax import state as state_lib
from tests import helpers


def _batch(**fields):
    """A DiscriminatorBatch with simple defaults (1-device: global mean = mean)."""
    real = jnp.arange(24.0).reshape(4, 6) / 10
    defaults = dict(
        discriminate=lambda x, labels: jnp.sum(x.reshape(x.shape[0], -1), axis=1),
        real=real,
        fake=-real,
        real_labels=None,
        fake_labels=None,
        real_logits=jnp.array([1.0, -2.0, 0.5, 3.0]),
        fake_logits=jnp.array([-1.0, 0.0, 2.0, -0.5]),
        real_class_logits=None,
        fake_class_logits=None,
        z=jnp.ones((4, 3)),
        regenerate=lambda z: z,
        example_keys=lambda k: jax.random.split(k, 4),
        latent_keys=lambda k: jax.random.split(k, 4),
        global_mean=jnp.mean,
        global_batch=4,
        key=jax.random.key(0),
        d_index=jnp.int32(0),
        aux={},
    )
    return obj_lib.DiscriminatorBatch(**(defaults | fields))


def _g_batch(**fields):
    defaults = dict(
        g_params=None,
        images=None,
        fake_logits=None,
        fake_class_logits=None,
        fake_labels=None,
        z=None,
        generate=None,
        example_keys=lambda k: jax.random.split(k, 4),
        key=jax.random.key(0),
    )
    return obj_lib.GeneratorBatch(**(defaults | fields))


def _term(config, name, registry=obj_lib.D_TERMS):
    return registry[name].make(config)


def test_default_config_has_no_regularisers():
    objective = obj_lib.build_objective(helpers.tiny_config())
    assert objective.d_terms == [] and objective.g_terms == [] and objective.init_aux() == {}


def test_active_terms_follow_the_config():
    config = helpers.tiny_config(
        **{
            'reg.penalty': 'r1',
            'reg.penalty_weight': 5.0,
            'reg.lecam_weight': 0.3,
            'reg.ortho_weight': 1e-4,
            'model.conditioning': 'acgan',
            'augment.name': 'ada',
        }
    )
    objective = obj_lib.build_objective(config)
    assert [(t.name, t.weight) for t in objective.d_terms] == [
        ('penalty', 5.0),
        ('lecam', 0.3),
        ('acgan', 1.0),
    ]
    assert [t.name for t in objective.g_terms] == ['ortho', 'acgan']
    assert sorted(objective.init_aux()) == ['augment', 'lecam']


def test_a_new_regulariser_is_one_function_and_one_registry_entry(monkeypatch):
    # What the README's worked example does: no change to the update.
    def logit_l2(config):
        return lambda batch: jnp.mean(batch.real_logits**2)

    monkeypatch.setitem(obj_lib.D_TERMS, 'logit_l2', obj_lib.TermSpec('logit_l2_weight', logit_l2))
    config = helpers.tiny_config()
    with config.unlocked():
        config.reg.logit_l2_weight = 0.5
    (term,) = obj_lib.build_objective(config).d_terms
    assert term.name == 'logit_l2' and term.weight == 0.5
    np.testing.assert_allclose(term.fn(_batch()), np.mean(np.array([1, -2, 0.5, 3]) ** 2))


@pytest.mark.parametrize('d_index, expected_factor', [(0, 4.0), (1, 0.0), (3, 0.0), (8, 4.0)])
def test_lazy_penalty_runs_every_k_steps_scaled_by_k(d_index, expected_factor):
    config = helpers.tiny_config(**{'reg.penalty': 'r1', 'reg.penalty_every_d_steps': 4})
    lazy = _term(config, 'penalty')
    every_step = _term(helpers.tiny_config(**{'reg.penalty': 'r1'}), 'penalty')
    batch = _batch()
    # D = sum of inputs: gradient all ones, ||g||^2 = 6, R1 = 0.5 * 6 = 3.
    np.testing.assert_allclose(every_step(batch), 3.0, rtol=1e-6)
    # Traced step counter, as in the compiled update.
    lazy_at = jax.jit(lambda i: lazy(batch._replace(d_index=i)))
    np.testing.assert_allclose(lazy_at(jnp.int32(d_index)), expected_factor * 3.0, rtol=1e-6)


def test_lecam_state_and_value_follow_the_authors_code():
    config = helpers.tiny_config(
        **{'reg.lecam_weight': 1.0, 'reg.lecam_decay': 0.9, 'reg.lecam_start_d_step': 2}
    )
    state = obj_lib.D_TERMS['lecam'].state(config)
    ema = {'real': jnp.asarray(0.5), 'fake': jnp.asarray(-0.25)}
    batch = _batch(d_index=jnp.int32(5))
    real_mean, fake_mean = 0.625, 0.125
    new = state.update(ema, batch)
    np.testing.assert_allclose(new['real'], 0.9 * 0.5 + 0.1 * real_mean, rtol=1e-6)
    np.testing.assert_allclose(new['fake'], 0.9 * -0.25 + 0.1 * fake_mean, rtol=1e-6)
    # Before the start step the EMA copies the batch means.
    early = state.update(ema, batch._replace(d_index=jnp.int32(1)))
    np.testing.assert_allclose([early['real'], early['fake']], [real_mean, fake_mean])
    value = _term(config, 'lecam')(batch._replace(aux={'lecam': new}))
    real, fake = np.array([1.0, -2.0, 0.5, 3.0]), np.array([-1.0, 0.0, 2.0, -0.5])
    expected = np.mean(np.maximum(real - float(new['fake']), 0) ** 2) + np.mean(
        np.maximum(float(new['real']) - fake, 0) ** 2
    )
    np.testing.assert_allclose(value, expected, rtol=1e-6)


def test_acgan_terms_are_cross_entropies():
    config = helpers.tiny_config(**{'model.conditioning': 'acgan'})
    class_logits = jnp.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    labels = jnp.array([0, 1])
    log_p = np.log(np.exp(class_logits) / np.exp(class_logits).sum(1, keepdims=True))
    ce = -np.mean(log_p[[0, 1], [0, 1]])
    batch = _batch(
        real_class_logits=class_logits,
        fake_class_logits=class_logits[::-1],
        real_labels=labels,
        fake_labels=labels,
    )
    ce_fake = -np.mean(log_p[::-1][[0, 1], [0, 1]])
    np.testing.assert_allclose(_term(config, 'acgan')(batch), ce + ce_fake, rtol=1e-6)
    g_batch = _g_batch(fake_class_logits=class_logits, fake_labels=labels)
    np.testing.assert_allclose(_term(config, 'acgan', obj_lib.G_TERMS)(g_batch), ce, rtol=1e-6)


def test_latent_consistency_grows_with_the_noise_squared():
    # G = identity and D linear: D(G(z + n)) - D(G(z)) = w.n, so the D term is
    # quadratic in zcr_sigma, and zero without noise.
    w = jnp.array([1.0, -2.0, 0.5])

    def value(sigma, side):
        config = helpers.tiny_config(**{'reg.zcr_sigma': sigma})
        if side == 'd':
            batch = _batch(discriminate=lambda x, labels: x @ w, fake_logits=jnp.ones((4, 3)) @ w)
            return _term(config, 'zcr')(batch)
        g_batch = _g_batch(images=jnp.ones((4, 3)), z=jnp.ones((4, 3)), generate=lambda z: z)
        return _term(config, 'zcr', obj_lib.G_TERMS)(g_batch)

    for side in ('d', 'g'):
        assert value(0.0, side) == 0.0
        np.testing.assert_allclose(value(0.2, side), 4 * value(0.1, side), rtol=1e-5)
    assert value(0.1, 'd') > 0 and value(0.1, 'g') < 0  # G maximises the distance.


def test_mode_seeking_is_one_over_the_images_distance_per_latent_distance():
    # G(z) = a z moves images a times as far apart as their latents: the term is
    # 1 / (a + 1e-5) whatever the second latents are; a collapsed G gives 1 / 1e-5.
    config = helpers.tiny_config(**{'reg.mode_seeking_weight': 1.0})
    term = _term(config, 'mode_seeking', obj_lib.G_TERMS)
    z = jax.random.normal(jax.random.key(1), (4, 3))
    for a in (0.5, 3.0):
        batch = _g_batch(images=a * z, z=z, generate=lambda z2, a=a: a * z2, global_mean=jnp.mean)
        np.testing.assert_allclose(term(batch), 1 / (a + 1e-5), rtol=1e-5)
    collapsed = _g_batch(
        images=jnp.zeros((4, 2)), z=z, generate=lambda z2: jnp.zeros((4, 2)), global_mean=jnp.mean
    )
    np.testing.assert_allclose(term(collapsed), 1e5, rtol=1e-6)


def test_orthogonality_against_numpy():
    rng = np.random.default_rng(0)
    params = {
        'conv': {'kernel': rng.normal(size=(3, 3, 4, 5)), 'bias': rng.normal(size=5)},
        'dense': {'kernel': rng.normal(size=(6, 2))},
        'wide': {'kernel': rng.normal(size=(3, 7))},  # More outputs than inputs.
        'shared': {'embedding': rng.normal(size=(10, 8))},
    }
    expected = 0.0
    for kernel in (params['conv']['kernel'], params['dense']['kernel'], params['wide']['kernel']):
        w = kernel.reshape(-1, kernel.shape[-1])
        gram = w.T @ w
        expected += np.sum((gram - np.diag(np.diag(gram))) ** 2)
    np.testing.assert_allclose(
        obj_lib.orthogonality(jax.tree.map(jnp.asarray, params)), expected, rtol=1e-5
    )
    # Orthonormal filters cost nothing.
    assert obj_lib.orthogonality({'k': {'kernel': jnp.eye(4)[:, :3]}}) == 0.0


def test_orthogonality_never_builds_the_large_gram_matrix():
    # BigGAN-128's G input layer: 120 x 24,576; its filters' Gram matrix would hold
    # 24,576^2 floats (2.4 GB). No intermediate may be that large.
    kernel = jax.ShapeDtypeStruct((120, 24_576), jnp.float32)
    jaxpr = jax.make_jaxpr(obj_lib.orthogonality)({'linear': {'kernel': kernel}})
    sizes = [v.aval.size for eqn in jaxpr.eqns for v in eqn.outvars]
    assert max(sizes) == 120 * 24_576


def test_pack_joins_consecutive_examples_along_the_last_axis():
    images = jnp.arange(4 * 2 * 2 * 3).reshape(4, 2, 2, 3)
    packed = obj_lib.pack(images, 2)
    assert packed.shape == (2, 2, 2, 6)
    np.testing.assert_array_equal(packed[1], jnp.concatenate([images[2], images[3]], -1))
    points = jnp.arange(12.0).reshape(6, 2)
    np.testing.assert_array_equal(obj_lib.pack(points, 3), points.reshape(2, 6))
    np.testing.assert_array_equal(obj_lib.pack(images, 1), images)


def test_weight_clipping_bounds_every_parameter():
    objective = obj_lib.build_objective(helpers.tiny_config(**{'reg.weight_clip': 0.01}))
    clipped = objective.constrain_d({'a': jnp.array([-1.0, 0.005, 2.0])})
    np.testing.assert_allclose(clipped['a'], [-0.01, 0.005, 0.01])
    free = obj_lib.build_objective(helpers.tiny_config())
    np.testing.assert_array_equal(free.constrain_d({'a': jnp.array([5.0])})['a'], [5.0])


def test_unroll_differentiates_through_the_optimiser_steps():
    # D's loss 0.5 (w - theta)^2, SGD with rate eta: w_k = theta + (1 - eta)^k (w - theta),
    # so dw_k/dtheta = 1 - (1 - eta)^k.
    eta, k = 0.3, 3
    tx = optax.sgd(eta)

    def unrolled_w(theta):
        w0 = jnp.asarray(2.0)
        return obj_lib.unroll(lambda w: 0.5 * (w - theta) ** 2, w0, tx.init(w0), tx, steps=k)

    theta = 0.5
    np.testing.assert_allclose(unrolled_w(theta), theta + (1 - eta) ** k * (2.0 - theta), rtol=1e-6)
    np.testing.assert_allclose(jax.grad(unrolled_w)(theta), 1 - (1 - eta) ** k, rtol=1e-6)
    assert obj_lib.unroll(None, 2.0, None, tx, steps=0) == 2.0


def test_ada_probability_moves_toward_the_target_every_interval():
    config = helpers.tiny_config(
        **{'augment.name': 'ada', 'augment.ada_every_d_steps': 2, 'augment.ada_speed_kimg': 0.5}
    )
    state = obj_lib.build_objective(config).states['augment']
    ada = state.init()
    positive = _batch(real_logits=jnp.ones(4))  # E[sign D(real)] = 1 > 0.6
    ada = state.update(ada, positive._replace(d_index=jnp.int32(0)))
    assert float(ada['p']) == 0.0 and float(ada['count']) == 4  # Accumulating.
    ada = state.update(ada, positive._replace(d_index=jnp.int32(1)))
    # 8 images seen: p moves by 8 / (0.5 * 1000).
    np.testing.assert_allclose(ada['p'], 8 / 500, rtol=1e-6)
    assert float(ada['count']) == 0 and float(ada['sign_sum']) == 0
    negative = _batch(real_logits=-jnp.ones(4))
    for d_index in (2, 3):
        ada = state.update(ada, negative._replace(d_index=jnp.int32(d_index)))
    np.testing.assert_allclose(ada['p'], 0.0, atol=1e-7)


INVALID = [
    (
        {'reg.weight_clip': 0.01, 'reg.penalty': 'wgan_gp'},
        (28, 28, 1),
        None,
        8,
        'two Lipschitz constraints',
    ),
    ({'augment.name': 'ada'}, (2,), None, 8, "augment.name='ada' augments images"),
    ({'reg.bcr_real_weight': 1.0}, (2,), None, 8, 'bCR'),
    ({'model.conditioning': 'projection'}, (28, 28, 1), None, 8, "'projection' needs class labels"),
    ({'train.pack': 3}, (28, 28, 1), None, 8, 'train.pack=3 must be >= 1 and divide'),
    (
        {'train.pack': 2, 'model.conditioning': 'acgan'},
        (28, 28, 1),
        10,
        8,
        'packed D input mixes several labels',
    ),
    ({'augment.name': 'mixup'}, (28, 28, 1), None, 8, "augment.name='mixup' is not one of"),
    ({'reg.penalty_every_d_steps': 0}, (28, 28, 1), None, 8, 'penalty_every_d_steps=0'),
    ({'train.unroll_steps': -1}, (28, 28, 1), None, 8, 'unroll_steps=-1'),
    ({'train.grad_accum': 3}, (28, 28, 1), None, 8, r'train.grad_accum=3 must be >= 1 and divide'),
    ({'train.grad_accum': 0}, (28, 28, 1), None, 8, r'train.grad_accum=0 must be >= 1'),
    # Packing is per micro-batch: 8 / 4 = 2 examples do not pack by 4.
    ({'train.grad_accum': 4, 'train.pack': 4}, (28, 28, 1), None, 8, r'train.pack=4 must'),
    (
        {'train.grad_accum': 2, 'augment.name': 'ada', 'reg.lecam_weight': 0.1},
        (28, 28, 1),
        None,
        8,
        r"grad_accum=2 is not implemented with \{'augment.name': 'ada', 'reg.lecam_weight'",
    ),
    (
        {'train.grad_accum': 2, 'train.simultaneous': True, 'train.unroll_steps': 1},
        (28, 28, 1),
        None,
        8,
        r"not implemented with \{'train.unroll_steps': 1, 'train.simultaneous': True\}",
    ),
    (
        {'reg.lazy_separate_step': True, 'train.simultaneous': True},
        (28, 28, 1),
        None,
        8,
        r'lazy_separate_step=True .* needs train.simultaneous=False \(not True',
    ),
    (
        {'reg.lazy_separate_step': True, 'optim.lr_schedule': 'linear_decay'},
        (28, 28, 1),
        None,
        8,
        r"lazy_separate_step=True .* optim.lr_schedule='constant' \(not 'linear_decay'",
    ),
    (
        {'train.shared_latents': True, 'train.simultaneous': True},
        (28, 28, 1),
        None,
        8,
        r'shared_latents=True .* needs train.simultaneous=False \(not True',
    ),
    (
        {'train.shared_latents': True, 'train.g_batch_size': 16},
        (28, 28, 1),
        None,
        8,
        r'shared_latents=True .* train.g_batch_size=None \(not 16',
    ),
]


@pytest.mark.parametrize('overrides, shape, classes, batch, message', INVALID)
def test_invalid_combinations_fail_early(overrides, shape, classes, batch, message):
    with pytest.raises(ValueError, match=message):
        obj_lib.validate(
            helpers.tiny_config(**overrides),
            data_shape=shape,
            num_classes=classes,
            local_batches=(batch,),
        )


def test_unknown_names_fail_with_the_choices():
    with pytest.raises(ValueError, match="reg.penalty='gp'.*wgan_gp"):
        obj_lib.validate(
            helpers.tiny_config(**{'reg.penalty': 'gp'}),
            data_shape=(28, 28, 1),
            num_classes=None,
            local_batches=(8,),
        )
    with pytest.raises(ValueError, match="'colour'.*color"):
        obj_lib.validate(
            helpers.tiny_config(**{'augment.name': 'diffaugment', 'augment.policy': 'colour'}),
            data_shape=(28, 28, 1),
            num_classes=None,
            local_batches=(8,),
        )


def test_unrolling_through_adam_stays_finite_where_a_gradient_is_zero():
    # A D parameter with zero gradient (a dead unit) has Adam's v = 0, where
    # d sqrt(v)/dv is infinite; the differentiable D optimiser must avoid the NaN.
    config = helpers.tiny_config()
    _, d_tx = state_lib.make_optimizers(config.optim, steps=10, n_dis=1, differentiable_d=True)
    _, plain_tx = state_lib.make_optimizers(config.optim, steps=10, n_dis=1)

    def g_gradient(tx):
        d0 = {'w': jnp.asarray(1.0), 'dead': jnp.asarray(0.5)}

        def g_loss(theta):
            # relu inactive: the gradient of 'dead' is theta * 0, exactly 0.
            d = obj_lib.unroll(
                lambda p: (p['w'] - theta) ** 2 + jax.nn.relu(p['dead'] * theta - 10.0),
                d0,
                tx.init(d0),
                tx,
                steps=2,
            )
            return d['w'] ** 2 + d['dead']

        return jax.grad(g_loss)(0.3)

    assert np.isfinite(g_gradient(d_tx)) and g_gradient(d_tx) != 0.0
    assert np.isnan(g_gradient(plain_tx))  # What the offset prevents.
