"""Initialisers and normalisation shared by the GAN models.

The values follow the PyTorch DCGAN reference (`weights_init`): conv and dense
kernels ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02) and bias 0.
"""

import jax
import jax.numpy as jnp
import flax.linen as nn

dcgan_normal = nn.initializers.normal(stddev=0.02)


def bn_scale_init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    """N(1, 0.02): near-identity scale with a little symmetry breaking."""
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def batch_norm(train: bool, axis_name: str | None) -> nn.BatchNorm:
    """BatchNorm with PyTorch's defaults.

    Flax's momentum weighs the old running average, so 0.9 here equals
    PyTorch's momentum=0.1. With `axis_name` set, batch statistics are averaged
    over that mapped axis (cross-replica BN inside shard_map); with None each
    device normalises with its own shard's statistics.
    """
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=0.9,
        epsilon=1e-5,
        axis_name=axis_name,
        scale_init=bn_scale_init,
        bias_init=nn.initializers.zeros,
    )
