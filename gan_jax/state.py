"""The train state: everything a run needs to continue, in one immutable pytree.

Nothing mutable lives outside it, so a checkpoint of this object (plus the data
iterator's position) resumes a run exactly. Optimisers and model definitions are
static (rebuilt from the config) and are not part of the state.
"""

import types
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from gan_jax import schedules


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # Generator updates done so far (int32 scalar).
    g_params: Any
    # G's non-trainable model state, Flax's 'batch_stats' collection: BatchNorm
    # running statistics and spectral-norm vectors ({} when it has none).
    g_batch_stats: Any
    d_params: Any
    d_batch_stats: Any
    g_opt_state: optax.OptState
    d_opt_state: optax.OptState
    ema_params: Any  # Exponential moving average of g_params; None when disabled.
    # State of stateful training ingredients by name ({} when none): ADA's
    # augmentation probability, LeCam's running means (see objective.py).
    aux: dict
    # Base key of the run. It never changes: each step's randomness is derived
    # with fold_in(rng, step), so it does not depend on how the run was split.
    rng: jax.Array


def create_train_state(
    generator, discriminator, g_tx, d_tx, *, z_dim, d_input_shape, num_classes, seed, use_ema, aux
):
    """Initialises both networks and optimisers from ``seed``.

    Initialisation runs in eval mode (``train=False``) so it never needs the
    named batch axis that cross-replica BatchNorm reduces over. ``d_input_shape``
    is one D input (an image, or m packed ones); ``num_classes`` is None for
    unconditional models; ``aux`` is the initial state of stateful ingredients.
    """
    g_key, d_key, train_key = jax.random.split(jax.random.PRNGKey(seed), 3)
    labels = None if num_classes is None else jnp.zeros((1,), jnp.int32)
    g_vars = generator.init(g_key, jnp.zeros((1, z_dim)), labels, train=False)
    d_vars = discriminator.init(d_key, jnp.zeros((1, *d_input_shape)), labels, train=False)
    g_params, d_params = g_vars['params'], d_vars['params']
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        g_params=g_params,
        g_batch_stats=g_vars.get('batch_stats', {}),
        d_params=d_params,
        d_batch_stats=d_vars.get('batch_stats', {}),
        g_opt_state=g_tx.init(g_params),
        d_opt_state=d_tx.init(d_params),
        ema_params=jax.tree.map(jnp.copy, g_params) if use_ema else None,
        aux=aux,
        rng=train_key,
    )


# name -> (learning rate, optim config, differentiable) -> optax optimiser.
# ``differentiable``: G's gradient flows through the optimiser's update (Unrolled
# GAN). d sqrt(v)/dv is infinite at v = 0, i.e. wherever a gradient is exactly 0
# (a dead ReLU), which turns G's gradient into NaN; so the root then gets a tiny
# offset inside it (Adam: eps_root 1e-16; RMSProp: eps inside the root).
OPTIMIZERS = {
    'adam': lambda lr, c, differentiable: optax.adam(
        lr, b1=c.b1, b2=c.b2, eps_root=1e-16 if differentiable else 0.0
    ),
    # WGAN's choice (Arjovsky et al. 2017): momentum-free, as PyTorch's RMSprop
    # (alpha 0.99, eps 1e-8, eps outside the square root).
    'rmsprop': lambda lr, c, differentiable: optax.rmsprop(
        lr, decay=0.99, eps=1e-8, eps_in_sqrt=differentiable
    ),
    # Plain SGD makes gradient-scale bugs visible (Adam is scale invariant).
    'sgd': lambda lr, c, differentiable: optax.sgd(lr),
}


def lazy_rescaled(lr, optim_config, interval):
    """(lr * c, b1 ** c, b2 ** c), c = interval / (interval + 1): Adam for a network
    regularised every ``interval`` steps, as StyleGAN2's official ``training_loop.py``
    (``mb_ratio``). ``lr`` may be a schedule."""
    c = interval / (interval + 1)
    scaled = (lambda count: c * lr(count)) if callable(lr) else c * lr
    return scaled, optim_config.b1**c, optim_config.b2**c


def make_optimizers(optim_config, *, steps, n_dis, differentiable_d=False, lazy_intervals=None):
    """G and D optimisers with their own learning rates (TTUR when they differ).

    ``optim.lr_schedule`` may decay them over the run's ``steps`` G updates
    (``steps * n_dis`` D updates). ``differentiable_d``: G differentiates through
    D's optimiser (see OPTIMIZERS). ``lazy_intervals`` (G's, D's regularisation
    intervals) with ``optim.lazy_rescale``: Adam rescaled by ``lazy_rescaled``.
    """
    c = optim_config
    if c.name not in OPTIMIZERS:
        raise ValueError(f'optim.name={c.name!r} is not one of {sorted(OPTIMIZERS)}.')
    if c.lazy_rescale and c.name != 'adam':
        raise ValueError(
            f"optim.lazy_rescale=True rescales Adam's lr and betas; optim.name={c.name!r}."
        )
    make = OPTIMIZERS[c.name]
    g_lr, d_lr = schedules.learning_rates(c, steps=steps, n_dis=n_dis)
    g_c = d_c = c
    if c.lazy_rescale:
        if lazy_intervals is None:
            raise ValueError('optim.lazy_rescale=True needs the regularisation intervals.')
        (g_lr, *g_betas), (d_lr, *d_betas) = (
            lazy_rescaled(lr, c, k) for lr, k in zip((g_lr, d_lr), lazy_intervals)
        )
        g_c, d_c = (types.SimpleNamespace(b1=b1, b2=b2) for b1, b2 in (g_betas, d_betas))
    return make(g_lr, g_c, False), make(d_lr, d_c, differentiable_d)
