"""Initialisers, normalisation and conditioning layers shared by the GAN models.

The values follow the PyTorch DCGAN reference (`weights_init`): conv and dense
kernels ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02) and bias 0.
"""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

dcgan_normal = nn.initializers.normal(stddev=0.02)


def bn_scale_init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    """N(1, 0.02): near-identity scale with a little symmetry breaking."""
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def square_image(image_shape, family: str) -> tuple[int, int]:
    """(resolution, channels) of square (R, R, C) images; other shapes fail, naming the family."""
    if len(image_shape) != 3 or image_shape[0] != image_shape[1]:
        raise ValueError(f'{family} needs square (H, W, C) images, got {tuple(image_shape)}')
    return image_shape[0], image_shape[2]


def check_resolution(x: jax.Array, resolution: int) -> None:
    """Fails on a D input of another size (the layer plan is built for one resolution)."""
    if x.shape[1:3] != (resolution, resolution):
        raise ValueError(f'Expected images of {resolution}x{resolution}, got shape {x.shape}')


def bn_axis(model_config) -> str | None:
    """The mesh axis for cross-replica BatchNorm, or None: each device normalises its shard."""
    return model_config.bn_axis_name if model_config.cross_replica_bn else None


def generator_classes(model_config) -> int | None:
    """G is class-conditional exactly when D is (``model.conditioning`` set)."""
    return model_config.num_classes if model_config.conditioning is not None else None


def class_vectors(labels: jax.Array, num_classes: int, dtype=jnp.float32) -> jax.Array:
    """Integer labels [B] -> one_hot [B, num_classes]; float class vectors [B, num_classes]
    (mixtures of one-hot rows: an interpolation between classes) pass through."""
    if jnp.issubdtype(labels.dtype, jnp.floating):
        if labels.ndim != 2 or labels.shape[-1] != num_classes:
            raise ValueError(f'class vectors of shape {labels.shape}: expected [B, {num_classes}].')
        return labels.astype(dtype)
    return jax.nn.one_hot(labels, num_classes, dtype=dtype)


def class_condition(labels: jax.Array | None, num_classes: int | None) -> jax.Array | None:
    """class_vectors(labels) for a class-conditional generator, None for an unconditional one."""
    if num_classes is None:
        return None
    if labels is None:
        raise ValueError(
            f'This generator is class-conditional ({num_classes} classes): pass labels.'
        )
    return class_vectors(labels, num_classes)


def generator_batch_norm(x, condition, *, train: bool, axis_name: str | None):
    """BatchNorm; class-conditional (SNGAN-projection, ACGAN) when ``condition`` is given.

    ``condition`` is one_hot(labels): ConditionalBatchNorm's gain and bias are
    then per-class tables, the parameters of the references' class embeddings.
    """
    if condition is None:
        return batch_norm(train, axis_name)(x)
    return ConditionalBatchNorm(axis_name=axis_name)(x, condition, train=train)


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


class SlotBatchNorm(nn.Module):
    """BatchNorm with statistics per packing slot.

    PacGAN's authors run G once per slot of a packed D input, so each slot's batch
    is normalised by its own statistics. Here G runs once on all slots, and example
    ``i`` belongs to slot ``i % slots`` (``objective.pack`` joins ``slots``
    consecutive examples); a slot's statistics are over its examples and every axis
    but the last (features). The running mean and the ``running`` statistic move
    toward the slots' average by ``1 - momentum`` per training call; evaluation
    normalises by them. Scale starts at 1, shift at 0.

    The defaults are Blocks' ``BatchNormalization`` (PacGAN's 2-D G): it tracks the
    standard deviation sqrt(var + epsilon) ('stdev'). ``running='var'``, momentum
    0.9, epsilon 1e-5 is tf.contrib's ``batch_norm`` (PacGAN's Stacked MNIST G),
    with the variables of Flax's BatchNorm (mean and biased variance).
    """

    slots: int = 1
    momentum: float = 0.95
    epsilon: float = 1e-4
    running: str = 'stdev'
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        if self.running not in ('stdev', 'var'):
            raise ValueError(f"running={self.running!r}: expected 'stdev' or 'var'.")
        features = x.shape[-1]
        scale = self.param('scale', nn.initializers.ones, (features,))
        shift = self.param('bias', nn.initializers.zeros, (features,))
        ra_mean = self.variable('batch_stats', 'mean', jnp.zeros, (features,))
        ra_spread = self.variable('batch_stats', self.running, jnp.ones, (features,))
        if not train:
            spread = ra_spread.value
            if self.running == 'var':
                spread = jnp.sqrt(spread + self.epsilon)
            return (x - ra_mean.value) * (scale / spread) + shift
        if x.shape[0] % self.slots:
            raise ValueError(
                f'A batch of {x.shape[0]} examples does not split into {self.slots} '
                'packing slots: the batch must be a multiple of train.pack.'
            )
        by_slot = x.reshape(-1, self.slots, *x.shape[1:])
        axes = (0, *range(2, by_slot.ndim - 1))  # Per slot and feature: [slots, features].
        mean, mean_sq = by_slot.mean(axes), (by_slot * by_slot).mean(axes)
        if self.axis_name is not None:
            mean, mean_sq = lax.pmean((mean, mean_sq), self.axis_name)
        var = jnp.maximum(mean_sq - mean**2, 0.0)
        inverse_std = lax.rsqrt(var + self.epsilon)
        if not self.is_initializing():
            m = self.momentum
            batch_spread = var if self.running == 'var' else 1 / inverse_std
            ra_mean.value = m * ra_mean.value + (1 - m) * mean.mean(axis=0)
            ra_spread.value = m * ra_spread.value + (1 - m) * batch_spread.mean(axis=0)
        multiplier = inverse_std * scale
        offset = shift - mean * multiplier

        def per_example(v):  # [slots, features] -> example i's, slot i % slots.
            v = jnp.tile(v, (x.shape[0] // self.slots, 1)) if self.slots > 1 else v
            return v.reshape(-1, *[1] * (x.ndim - 2), features)

        # One multiply-add per element: faster on XLA:CPU than normalising x - mean.
        return x * per_example(multiplier) + per_example(offset)


class Maxout(nn.Module):
    """``features`` maxout units of ``pieces`` linear pieces each (Goodfellow et al. 2013).

    One Dense layer of ``features * pieces`` outputs, each unit the maximum over
    its ``pieces`` contiguous outputs, as Blocks' ``LinearMaxout``.
    """

    features: int
    pieces: int
    kernel_init: Callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        y = nn.Dense(self.features * self.pieces, kernel_init=self.kernel_init)(x)
        return y.reshape(*y.shape[:-1], self.features, self.pieces).max(axis=-1)


class SpectralNorm(nn.Module):
    """Wraps a layer so each of its weight matrices is divided by its spectral norm.

    Miyato et al. 2018. Every parameter with two or more dimensions (a Dense,
    Conv or ConvTranspose ``kernel``, an Embed ``embedding``) is read as the
    matrix ``reshape(w, (-1, out))``, which has the same singular values as
    PyTorch's ``(out, -1)`` view; biases are left alone. The power-iteration
    vectors ``u`` (size out) and ``v`` live in the ``batch_stats`` collection,
    i.e. in the train state beside BatchNorm's statistics, so a resumed run
    continues them. With ``update_stats=True`` (training) one power iteration
    runs from the stored vectors and they are stored back, as in PyTorch; the
    vectors depend only on the replicated weights, so every device computes the
    same ones. With ``update_stats=False`` (evaluation) the stored vectors are
    used as they are: sigma = v^T W u, no iteration.

    Usage: ``SpectralNorm(nn.Conv(64, (3, 3)))(x, update_stats=train)``.
    """

    layer: nn.Module
    n_steps: int = 1
    epsilon: float = 1e-12  # As PyTorch's spectral_norm.

    @nn.compact
    def __call__(self, *args, update_stats: bool, **kwargs):
        def normalise_all(params):
            return jax.tree_util.tree_map_with_path(
                lambda path, w: self._normalise(path, w, update_stats), params
            )

        return nn.map_variables(
            lambda layer: layer(*args, **kwargs),
            'params',
            trans_in_fn=normalise_all,
            init=self.is_initializing(),
            mutable=True,
        )(self.layer)

    def _normalise(self, path, weight, update_stats):
        if weight.ndim < 2:
            return weight
        matrix = weight.reshape(-1, weight.shape[-1])
        name = '/'.join(str(getattr(k, 'key', k)) for k in path[1:])  # Drop 'params'.
        u_var = self.variable(
            'batch_stats',
            f'{name}/u',
            lambda: _l2_normalise(
                jax.random.normal(self.make_rng('params'), (matrix.shape[1],)), self.epsilon
            ),
        )
        v_var = self.variable(
            'batch_stats', f'{name}/v', lambda: _l2_normalise(matrix @ u_var.value, self.epsilon)
        )
        if self.is_initializing():
            # map_variables stores what the layer saw at init: return W itself so
            # that the params hold the initialiser's values, not W / sigma.
            return weight
        u, v = u_var.value, v_var.value
        if update_stats:
            for _ in range(self.n_steps):
                v = _l2_normalise(matrix @ u, self.epsilon)
                u = _l2_normalise(matrix.T @ v, self.epsilon)
            u, v = lax.stop_gradient(u), lax.stop_gradient(v)
            u_var.value, v_var.value = u, v
        # The gradient flows through sigma's dependence on W, as in the paper.
        sigma = v @ matrix @ u
        # Keep W's dtype: under mixed precision the layer then computes in bfloat16.
        return (weight / sigma).astype(weight.dtype)


def _l2_normalise(x, epsilon):
    return x / jnp.maximum(jnp.linalg.norm(x), epsilon)


def spectral(layer: nn.Module, enabled: bool, train: bool):
    """``layer`` as a function of its input, spectrally normalised when ``enabled``."""
    if not enabled:
        return layer
    return lambda *args, **kwargs: SpectralNorm(layer)(*args, update_stats=train, **kwargs)


class ConditionalBatchNorm(nn.Module):
    """BatchNorm whose per-channel gain and bias are linear in a conditioning vector.

    gain = 1 + Dense(condition), bias = Dense(condition), on a BatchNorm without
    its own affine parameters. ``condition`` is one-hot labels (class-conditional
    BN of SNGAN-projection: the Dense kernels are then per-class tables, and the
    gain starts at exactly 1 + N(0, 0.02)) or BigGAN's shared class embedding
    joined with a chunk of z. The ``1 +`` matters: without it the gain starts
    near 0 and the network is dead at initialisation (compare_gan's BigGAN-deep
    bug #54).
    """

    axis_name: str | None = None
    momentum: float = 0.9  # PyTorch's 0.1.
    epsilon: float = 1e-5
    use_bias: bool = False  # Bias on the gain/bias projections (BigGAN-PyTorch's have none).
    spectral_norm: bool = False  # Of the projections (BigGAN).
    kernel_init: Callable = dcgan_normal

    @nn.compact
    def __call__(self, x: jax.Array, condition: jax.Array, *, train: bool) -> jax.Array:
        x = nn.BatchNorm(
            use_running_average=not train,
            momentum=self.momentum,
            epsilon=self.epsilon,
            axis_name=self.axis_name,
            use_scale=False,
            use_bias=False,
        )(x)
        features = x.shape[-1]
        condition = condition.astype(x.dtype)  # Mixed precision: project in x's dtype.
        broadcast = (condition.shape[0],) + (1,) * (x.ndim - 2) + (features,)

        def projection(name):
            dense = nn.Dense(
                features, use_bias=self.use_bias, kernel_init=self.kernel_init, name=name
            )
            return spectral(dense, self.spectral_norm, train)(condition).reshape(broadcast)

        return x * (1.0 + projection('gain')) + projection('bias')


class DiscriminatorHead(nn.Module):
    """Features [B, F] -> real/fake logits [B], and how class labels enter D.

    ``conditioning`` is a name in ``HEADS``: None (unconditional), 'projection'
    (Miyato & Koyama 2018: logit + <embed(y), h>) or 'acgan' (Odena et al. 2017:
    an auxiliary classifier; the head returns (logits, class_logits) and the
    ACGAN loss term in gan_jax/objective.py uses the class logits).
    """

    conditioning: str | None = None
    num_classes: int | None = None
    spectral_norm: bool = False
    kernel_init: Callable = nn.initializers.lecun_normal()

    def __post_init__(self):
        if self.conditioning not in HEADS:
            raise ValueError(
                f'model.conditioning={self.conditioning!r} is not one of {sorted(HEADS, key=str)}.'
            )
        if self.conditioning is not None and not self.num_classes:
            raise ValueError(
                f'model.conditioning={self.conditioning!r} needs class labels, '
                'but the dataset has none (num_classes is None).'
            )
        super().__post_init__()

    @nn.compact
    def __call__(self, features: jax.Array, labels: jax.Array | None, *, train: bool):
        logits = spectral(nn.Dense(1, kernel_init=self.kernel_init), self.spectral_norm, train)(
            features
        )[:, 0]
        return HEADS[self.conditioning](self, features, labels, logits, train)


def _unconditional_head(head, features, labels, logits, train):
    del head, features, labels, train
    return logits


def _projection_head(head, features, labels, logits, train):
    embed = nn.Embed(head.num_classes, features.shape[-1], embedding_init=head.kernel_init)
    class_vectors = spectral(embed, head.spectral_norm, train)(labels)
    return logits + jnp.sum(class_vectors * features, axis=-1)


def _acgan_head(head, features, labels, logits, train):
    del labels
    classifier = nn.Dense(head.num_classes, kernel_init=head.kernel_init)
    return logits, spectral(classifier, head.spectral_norm, train)(features)


HEADS = {None: _unconditional_head, 'projection': _projection_head, 'acgan': _acgan_head}
