"""ReLU MLPs for low-dimensional toy data (e.g. 2-D Gaussian mixtures).

They take `train` only so the trainer can call every model the same way; they
have no BatchNorm and hence no "batch_stats" collection.
"""

import jax
import flax.linen as nn


def _relu_mlp(x: jax.Array, hidden: int, depth: int, out_dim: int) -> jax.Array:
    """`depth` hidden Dense+ReLU layers, then a linear output layer.

    Must be called from a compact method: the layers attach to that module.
    """
    for _ in range(depth):
        x = nn.relu(nn.Dense(hidden)(x))
    return nn.Dense(out_dim)(x)


class MLPGenerator(nn.Module):
    """Maps latents [B, z_dim] to samples [B, out_dim] (unbounded, no tanh)."""

    out_dim: int = 2
    hidden: int = 128
    depth: int = 3

    @nn.compact
    def __call__(self, z: jax.Array, *, train: bool) -> jax.Array:
        del train
        return _relu_mlp(z, self.hidden, self.depth, self.out_dim)


class MLPDiscriminator(nn.Module):
    """Maps samples [B, D] to logits [B]."""

    hidden: int = 128
    depth: int = 3

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        del train
        return _relu_mlp(x, self.hidden, self.depth, 1)[:, 0]
