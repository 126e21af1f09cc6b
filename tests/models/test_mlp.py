"""MLP toy models: shapes, parameter count and the shared trainer call pattern."""

import jax
import jax.numpy as jnp

from gan_jax.models import count_params
from gan_jax.models.mlp import MLPDiscriminator, MLPGenerator


def test_shapes_and_defaults():
    def run(key, z):
        generator, discriminator = MLPGenerator(), MLPDiscriminator()
        g_key, d_key = jax.random.split(key)
        samples = generator.apply(generator.init(g_key, z, train=False), z, train=False)
        d_vars = discriminator.init(d_key, samples, train=False)
        return samples, discriminator.apply(d_vars, samples, train=True)

    # Abstract evaluation: shapes and dtypes without compiling anything.
    samples, logits = jax.eval_shape(run, jax.random.key(0), jnp.zeros((5, 8)))
    assert samples.shape == (5, 2) and samples.dtype == jnp.float32
    assert logits.shape == (5,) and logits.dtype == jnp.float32


def _param_shapes(module, x):
    return jax.eval_shape(lambda: module.init(jax.random.key(0), x, train=False))["params"]


def test_parameter_count():
    params = _param_shapes(MLPGenerator(out_dim=3, hidden=16, depth=2), jnp.zeros((1, 4)))
    # Dense 4 -> 16, Dense 16 -> 16, Dense 16 -> 3, all with bias.
    assert count_params(params) == (4 * 16 + 16) + (16 * 16 + 16) + (16 * 3 + 3)
    d_params = _param_shapes(MLPDiscriminator(hidden=16, depth=1), jnp.zeros((1, 3)))
    # Dense 3 -> 16, Dense 16 -> 1.
    assert count_params(d_params) == (3 * 16 + 16) + (16 + 1)


def test_trainer_call_pattern_without_batch_norm():
    # The trainer passes variables.get("batch_stats", {}) and asks for the
    # collection back; models without BatchNorm must accept both.
    x = jnp.ones((4, 2))
    discriminator = MLPDiscriminator(hidden=8)
    # RBG key: XLA on CPU compiles its sampling much faster than threefry's.
    variables = discriminator.init(jax.random.key(0, impl="rbg"), x, train=False)
    assert set(variables) == {"params"}
    batch_stats = variables.get("batch_stats", {})
    logits, updates = discriminator.apply(
        {"params": variables["params"], "batch_stats": batch_stats},
        x, train=True, mutable=["batch_stats"],
    )
    assert logits.shape == (4,)
    assert updates.get("batch_stats", {}) == {}
    eval_logits = discriminator.apply(
        {"params": variables["params"], "batch_stats": batch_stats}, x, train=False
    )
    assert jnp.allclose(logits, eval_logits)
