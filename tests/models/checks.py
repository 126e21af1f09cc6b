"""Checks shared by the architecture tests (test_resnet.py, test_sndcgan.py, ...)."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from experiments import base
from gan_jax import builder


def model_config(fields, **overrides) -> ml_collections.ConfigDict:
    """The model config the trainer builds (``builder.model_config``) from
    experiments/base.py with ``fields``, then ``overrides``, set (``num_classes`` and
    ``pack`` among them; unknown keys fail as on the command line)."""
    settings = fields | overrides
    config = base.get_config()
    config.train.pack = settings.pop('pack', 1)
    num_classes = settings.pop('num_classes', None)
    config.model.update(settings)
    return builder.model_config(config, num_classes)


def rbg_key(seed: int) -> jax.Array:
    """An RBG key: XLA on CPU compiles its sampling faster than threefry's."""
    return jax.random.key(seed, impl='rbg')


def abstract_variables(module, x, labels=None):
    """Abstract init: the shapes of every collection, nothing compiled."""
    return jax.eval_shape(lambda: module.init(jax.random.key(0), x, labels, train=False))


def check_conditional_training_pass(
    generator, discriminator, *, z_dim, image_shape, min_image_change, min_score_change
):
    """A compiled train-mode pass and its gradients; labels steer both G and D.

    Asserts finite outputs in [-1, 1], that other labels give other images
    (class-conditional BN) and other scores for the same images (projection),
    and that every weight matrix of G and D gets a nonzero gradient.
    """
    z = jax.random.normal(rbg_key(1), (4, z_dim))
    labels, other = jnp.array([0, 1, 2, 3]), jnp.array([4, 5, 6, 7])

    @jax.jit
    def run(z):
        g_vars = generator.init(rbg_key(2), z, labels, train=False)
        d_vars = discriminator.init(rbg_key(3), jnp.zeros((4, *image_shape)), labels, train=False)

        def loss(g_params, d_params):
            fake, _ = generator.apply(
                g_vars | {'params': g_params}, z, labels, train=True, mutable=['batch_stats']
            )
            logits, _ = discriminator.apply(
                d_vars | {'params': d_params}, fake, labels, train=True, mutable=['batch_stats']
            )
            return jnp.mean(jax.nn.softplus(-logits)), (fake, logits)

        grads, (fake, logits) = jax.grad(loss, argnums=(0, 1), has_aux=True)(
            g_vars['params'], d_vars['params']
        )
        # Eval mode treats examples independently: one batch holds both label sets.
        both = jnp.concatenate([labels, other])
        images = generator.apply(g_vars, jnp.concatenate([z, z]), both, train=False)
        scores = discriminator.apply(d_vars, jnp.concatenate([fake, fake]), both, train=False)
        return fake, logits, grads, images, scores

    fake, logits, grads, images, scores = run(z)
    assert fake.shape == (4, *image_shape) and float(jnp.abs(fake).max()) <= 1.0
    assert float(jnp.abs(images).max()) <= 1.0 and jnp.all(jnp.isfinite(logits))
    assert bool(jnp.all(jnp.abs(images[:4] - images[4:]).max(axis=(1, 2, 3)) > min_image_change))
    assert bool(jnp.all(jnp.abs(scores[:4] - scores[4:]) > min_score_change))
    leaves = jax.tree.leaves(grads)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert all(float(jnp.abs(g).max()) > 0.0 for g in leaves if g.ndim >= 2)


def check_bad_resolution_is_rejected(
    build, config, generator_cls, discriminator_cls, resolution, accepted
):
    """build() names the bad resolution and the accepted ones; both modules refuse it too."""
    with pytest.raises(ValueError, match=rf'resolution {resolution}\b.*{accepted}'):
        build(config, (resolution, resolution, 3))
    for module in (discriminator_cls, generator_cls):
        with pytest.raises(ValueError, match=rf'{resolution}\b'):
            module(resolution)


def assert_same_gradients(reference, fast, params, x):
    """Two layers' gradients of a non-trivial scalar w.r.t. their parameters and input agree."""
    weights = jax.random.normal(jax.random.PRNGKey(2), reference.apply(params, x).shape)

    def loss(module):
        return lambda p, x: jnp.sum(jnp.tanh(module.apply(p, x)) * weights)

    g_ref = jax.grad(loss(reference), argnums=(0, 1))(params, x)
    g_fast = jax.grad(loss(fast), argnums=(0, 1))(params, x)
    for a, b in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def assert_same_penalty_gradients(reference, fast, params, x):
    """Two layers' parameter gradients of a gradient penalty (an input-gradient norm) agree.

    What a fast layer with a hand-written backward must keep exact for WGAN-GP,
    R1 or DRAGAN to train through it.
    """

    def penalty(module):
        def fn(p):
            grad_x = jax.grad(lambda x: jnp.sum(jnp.tanh(module.apply(p, x)) ** 2))(x)
            return jnp.sum(grad_x**2)

        return fn

    g_ref, g_fast = jax.grad(penalty(reference))(params), jax.grad(penalty(fast))(params)
    for a, b in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
