"""MLPs for low-dimensional toy data (the 2-D Gaussian mixtures).

By default ReLU MLPs with Flax's initialisation and no BatchNorm. PacGAN's 2-D
networks (Lin et al. 2018, the authors' Blocks code) are the options: G with
BatchNorm per packing slot after each bias-free hidden layer
(``g_batch_norm``), D of maxout units (``d_maxout_pieces``), N(0, 0.02)
kernels (``weight_init='N02'``). The Unrolled GAN demo's networks (poolio/unrolled_gan)
are tanh units (``activation='tanh'``) with orthogonal kernels of gain 1.4
(``weight_init='ortho1.4'``). Class-conditional variants append one-hot labels to
G's latent and end D in a DiscriminatorHead.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models.layers import (
    DiscriminatorHead,
    Maxout,
    SlotBatchNorm,
    class_vectors,
    dcgan_normal,
)

# model.weight_init -> kernel initialiser (None: Flax's default, LeCun normal).
INITS = {
    None: nn.initializers.lecun_normal(),
    'N02': dcgan_normal,
    # TF's orthogonal_initializer(gain=1.4), the Unrolled GAN demo's: the same QR
    # construction (orthonormal columns of a tall kernel, rows of a wide one) times 1.4.
    'ortho1.4': nn.initializers.orthogonal(scale=1.4),
}
# model.activation -> the hidden units' nonlinearity.
ACTIVATIONS = {'relu': nn.relu, 'tanh': jnp.tanh}


def kernel_init(name):
    """The kernel initialiser ``model.weight_init`` names; an unknown name fails."""
    if name not in INITS:
        raise ValueError(f'mlp: model.weight_init={name!r} is not one of {sorted(INITS, key=str)}.')
    return INITS[name]


def activation_fn(name):
    """The nonlinearity ``model.activation`` names; an unknown name fails."""
    if name not in ACTIVATIONS:
        raise ValueError(f'mlp: model.activation={name!r} is not one of {sorted(ACTIVATIONS)}.')
    return ACTIVATIONS[name]


class MLPGenerator(nn.Module):
    """Maps latents [B, z_dim] to samples [B, out_dim] (unbounded, no tanh).

    With ``batch_norm`` each hidden layer is Dense without bias, then
    ``SlotBatchNorm(slots)``, then the activation (PacGAN's 2-D G: ReLU);
    otherwise Dense + activation.
    """

    out_dim: int = 2
    hidden: int = 128
    depth: int = 3
    num_classes: int | None = None
    batch_norm: bool = False
    slots: int = 1  # Packing slots: BatchNorm statistics are taken per slot.
    weight_init: str | None = None
    activation: str = 'relu'
    axis_name: str | None = None

    @nn.compact
    def __call__(self, z: jax.Array, labels: jax.Array | None = None, *, train: bool) -> jax.Array:
        init, act = kernel_init(self.weight_init), activation_fn(self.activation)
        x = z
        if self.num_classes is not None:
            x = jnp.concatenate([x, class_vectors(labels, self.num_classes)], axis=-1)
        for _ in range(self.depth):
            x = nn.Dense(self.hidden, use_bias=not self.batch_norm, kernel_init=init)(x)
            if self.batch_norm:
                x = SlotBatchNorm(self.slots, axis_name=self.axis_name)(x, train=train)
            x = act(x)
        return nn.Dense(self.out_dim, kernel_init=init)(x)


class MLPDiscriminator(nn.Module):
    """Maps samples [B, D] (or m packed samples, [B, m*D]) to logits [B].

    Hidden layers are units of ``activation``, or maxout units of
    ``maxout_pieces`` pieces when that is above 1 (PacGAN's 2-D D).
    """

    hidden: int = 128
    depth: int = 3
    conditioning: str | None = None
    num_classes: int | None = None
    maxout_pieces: int = 1
    weight_init: str | None = None
    activation: str = 'relu'

    @nn.compact
    def __call__(self, x: jax.Array, labels: jax.Array | None = None, *, train: bool):
        init, act = kernel_init(self.weight_init), activation_fn(self.activation)
        for _ in range(self.depth):
            if self.maxout_pieces > 1:
                x = Maxout(self.hidden, self.maxout_pieces, kernel_init=init)(x)
            else:
                x = act(nn.Dense(self.hidden, kernel_init=init)(x))
        return DiscriminatorHead(self.conditioning, self.num_classes, kernel_init=init)(
            x, labels, train=train
        )
