"""The train state: everything a run needs to continue, in one immutable pytree.

Nothing mutable lives outside it, so a checkpoint of this object (plus the data
iterator's position) resumes a run exactly. Optimisers and model definitions are
static (rebuilt from the config) and are not part of the state.
"""

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # Generator updates done so far (int32 scalar).
    g_params: Any
    g_batch_stats: Any  # BatchNorm running statistics of G ({} when it has none).
    d_params: Any
    d_batch_stats: Any
    g_opt_state: optax.OptState
    d_opt_state: optax.OptState
    ema_params: Any  # Exponential moving average of g_params; None when disabled.
    # Base key of the run. It never changes: each step's randomness is derived
    # with fold_in(rng, step), so it does not depend on how the run was split.
    rng: jax.Array


def create_train_state(generator, discriminator, g_tx, d_tx, *, z_dim, image_shape,
                       seed, use_ema):
    """Initialises both networks and optimisers from ``seed``.

    Initialisation runs in eval mode (``train=False``) so it never needs the
    named batch axis that cross-replica BatchNorm reduces over.
    """
    g_key, d_key, train_key = jax.random.split(jax.random.PRNGKey(seed), 3)
    g_vars = generator.init(g_key, jnp.zeros((1, z_dim)), train=False)
    d_vars = discriminator.init(d_key, jnp.zeros((1, *image_shape)), train=False)
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
        rng=train_key,
    )


OPTIMIZERS = {
    'adam': lambda lr, c: optax.adam(lr, b1=c.b1, b2=c.b2),
    'rmsprop': lambda lr, c: optax.rmsprop(lr),
    # Plain SGD makes gradient-scale bugs visible (Adam is scale invariant).
    'sgd': lambda lr, c: optax.sgd(lr),
}


def make_optimizers(optim_config):
    """G and D optimisers with their own learning rates (TTUR when they differ)."""
    c = optim_config
    if c.name not in OPTIMIZERS:
        raise ValueError(f'optim.name={c.name!r} is not one of {sorted(OPTIMIZERS)}.')
    make = OPTIMIZERS[c.name]
    return make(c.g_lr, c), make(c.d_lr, c)
