"""GAN objectives as pure functions of discriminator logits.

Every function takes logits of shape [B] and returns the scalar batch mean;
real and fake terms are averaged separately, so the two batches may differ in
size (SNGAN's G step draws twice as many fakes as D's).
Terms of the form log(sigmoid(x)) are written as -softplus(-x), which stays
finite for large |x| where sigmoid would round to 0 or 1.

The trainer picks an objective by config name through `get_loss`.
"""

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


class GANLoss(NamedTuple):
    """A discriminator/generator objective pair, both to be minimised."""

    discriminator: Callable[[Array, Array], Array]  # (real_logits, fake_logits)
    generator: Callable[[Array, Array | None], Array]  # (fake_logits, real_logits)
    # Relativistic losses compare each logit to the mean logit of the other
    # side, so the G step also needs D on real data; the trainer only pays for
    # that pass when this is True. Their functions take a `batch_mean` keyword.
    relativistic: bool = False

    def with_batch_mean(self, batch_mean: Callable[[Array], Array]) -> 'GANLoss':
        """This loss with relativistic reference means taken by `batch_mean`.

        The trainer passes a mean over all devices, so that a relativistic loss on
        N devices equals the loss on one device with the whole batch.
        """
        if not self.relativistic:
            return self
        return self._replace(
            discriminator=functools.partial(self.discriminator, batch_mean=batch_mean),
            generator=functools.partial(self.generator, batch_mean=batch_mean),
        )


def _cross_entropy_d(real_logits: Array, fake_logits: Array) -> Array:
    """-log D(x) - log(1 - D(G(z))): binary cross-entropy, real=1, fake=0."""
    return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def _non_saturating_g(fake_logits: Array, real_logits: Array | None = None) -> Array:
    """-log D(G(z)): strong gradients while D confidently rejects fakes."""
    del real_logits
    return jnp.mean(jax.nn.softplus(-fake_logits))


def _minimax_g(fake_logits: Array, real_logits: Array | None = None) -> Array:
    """log(1 - D(G(z))) = -softplus(f): the original saturating objective.

    Given real logits, D's whole loss negated: the same gradient unless D depends
    on G, as an unrolled D does (Metz et al. 2017, whose demo minimises -loss).
    """
    if real_logits is None:
        return jnp.mean(-jax.nn.softplus(fake_logits))
    return -_cross_entropy_d(real_logits, fake_logits)


def _hinge_d(real_logits: Array, fake_logits: Array) -> Array:
    return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def _negated_fake_g(fake_logits: Array, real_logits: Array | None = None) -> Array:
    """-f: the generator loss shared by the hinge and Wasserstein objectives."""
    del real_logits
    return -jnp.mean(fake_logits)


def _wasserstein_d(real_logits: Array, fake_logits: Array) -> Array:
    """Critic loss; needs a Lipschitz constraint (clipping, penalty) elsewhere."""
    return jnp.mean(fake_logits) - jnp.mean(real_logits)


def _least_squares_d(real_logits: Array, fake_logits: Array) -> Array:
    """Mao et al. 2017 with targets a=0 (fake), b=1 (real)."""
    return 0.5 * jnp.mean((real_logits - 1.0) ** 2) + 0.5 * jnp.mean(fake_logits**2)


def _least_squares_g(fake_logits: Array, real_logits: Array | None = None) -> Array:
    """Mao et al. 2017 with target c=1 for fakes."""
    del real_logits
    return jnp.mean(0.5 * (fake_logits - 1.0) ** 2)


def _relativistic_average(
    pair_loss: Callable[[Array, Array], Array],
) -> tuple[Callable[..., Array], Callable[..., Array]]:
    """RaGAN (Jolicoeur-Martineau 2019) from a standard (D, G) pair of losses.

    D's logit for x becomes C(x) - E[C(y)] with y from the other side; D wants
    reals "more real than the average fake" and fakes "less real than the
    average real", G the opposite, so G's loss is D's with the sides swapped.
    """

    def discriminator(real_logits, fake_logits, batch_mean=jnp.mean):
        return pair_loss(
            real_logits - batch_mean(fake_logits), fake_logits - batch_mean(real_logits)
        )

    def generator(fake_logits, real_logits, batch_mean=jnp.mean):
        return pair_loss(
            fake_logits - batch_mean(real_logits), real_logits - batch_mean(fake_logits)
        )

    return discriminator, generator


def _symmetric_least_squares(real_logits: Array, fake_logits: Array) -> Array:
    """RaLSGAN's pair loss: targets +1 for reals and -1 for fakes (the paper's a=-1, b=1).

    Halved like `_least_squares_d`, as in the author's code.
    """
    return 0.5 * jnp.mean((real_logits - 1.0) ** 2) + 0.5 * jnp.mean((fake_logits + 1.0) ** 2)


LOSSES: dict[str, GANLoss] = {
    'non_saturating': GANLoss(_cross_entropy_d, _non_saturating_g),
    'minimax': GANLoss(_cross_entropy_d, _minimax_g),
    'hinge': GANLoss(_hinge_d, _negated_fake_g),
    'wasserstein': GANLoss(_wasserstein_d, _negated_fake_g),
    'least_squares': GANLoss(_least_squares_d, _least_squares_g),
    'ragan': GANLoss(*_relativistic_average(_cross_entropy_d), relativistic=True),
    'ralsgan': GANLoss(*_relativistic_average(_symmetric_least_squares), relativistic=True),
}


def get_loss(name: str) -> GANLoss:
    """Looks up a loss by config name."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(
            f'Unknown GAN loss {name!r}; available: {", ".join(sorted(LOSSES))}'
        ) from None
