"""ReLU MLPs for low-dimensional toy data (e.g. 2-D Gaussian mixtures).

They take `train` only so the trainer can call every model the same way; they
have no BatchNorm and hence no "batch_stats" collection. Class-conditional
variants append one-hot labels to G's latent and end D in a DiscriminatorHead.
"""

import jax
import jax.numpy as jnp
import flax.linen as nn

from gan_jax.models.layers import DiscriminatorHead


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
    num_classes: int | None = None

    @nn.compact
    def __call__(self, z: jax.Array, labels: jax.Array | None = None, *,
                 train: bool) -> jax.Array:
        del train
        if self.num_classes is not None:
            z = jnp.concatenate([z, jax.nn.one_hot(labels, self.num_classes)], axis=-1)
        return _relu_mlp(z, self.hidden, self.depth, self.out_dim)


class MLPDiscriminator(nn.Module):
    """Maps samples [B, D] (or m packed samples, [B, m*D]) to logits [B]."""

    hidden: int = 128
    depth: int = 3
    conditioning: str | None = None
    num_classes: int | None = None

    @nn.compact
    def __call__(self, x: jax.Array, labels: jax.Array | None = None, *, train: bool):
        for _ in range(self.depth):
            x = nn.relu(nn.Dense(self.hidden)(x))
        return DiscriminatorHead(self.conditioning, self.num_classes)(x, labels, train=train)
