"""Records the gradients of one update on a 1-device and a 4-device mesh.

Run as a script in a process with 4 simulated CPU devices (tests/test_step.py):
    record_gradients.py --out F.npz --overrides JSON [--baseline JSON]

The overrides apply to tests.helpers.tiny_config; the file holds
'<devices>|<g|d>|<sum|last>|<path>' arrays, the ingredients' state after the update as
'<devices>|aux|<path>', and with ``--baseline`` (other overrides, e.g. without gradient
accumulation) also 'baseline|...' ones of those on 4 devices.
Both optimisers are replaced by ``recorder``: it leaves the parameters where they
are and keeps each step's gradient, so every D step of the loop and the G step
are differentiated at the same parameters on both meshes. (Comparing weights
after SGD steps instead would compare different points: float32 reduction order
moves the weights by ~1e-8, and a pre-activation that close to a ReLU kink
changes the next gradient by far more; see test_step.py.) Everything else of the
loop runs as in training: BatchNorm and spectral-norm statistics, the
ingredients' state (ADA's p, LeCam's averages), the random draws.
"""

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import builder, parallel
from gan_jax import data as data_lib
from gan_jax import step as step_lib
from tests import helpers


def recorder():
    """An optimiser that does not move: its state is (gradients summed, last gradient)."""

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return {'sum': zeros, 'last': zeros}

    def update(grads, state, params=None):
        del params
        summed = jax.tree.map(jnp.add, state['sum'], grads)
        return jax.tree.map(jnp.zeros_like, grads), {'sum': summed, 'last': grads}

    return optax.GradientTransformation(init, update)


def record(overrides, devices):
    """{'<g|d>|<sum|last>|<path>': gradient} of one update on ``devices`` devices."""
    config = helpers.tiny_config(**overrides)
    setup = builder.build(config)._replace(g_tx=recorder(), d_tx=recorder())

    def init_state():
        state = setup.init_state()
        return state.replace(
            g_opt_state=setup.g_tx.init(state.g_params),
            d_opt_state=setup.d_tx.init(state.d_params),
        )

    mesh = parallel.make_mesh(jax.devices()[:devices])
    state = jax.jit(init_state, out_shardings=parallel.replicated(mesh))()
    iterator = data_lib.make_train_iterator(
        setup.source,
        global_batch=config.train.batch_size,
        batches_per_step=config.train.n_dis,
        seed=config.seed,
        num_threads=1,
        grad_accum=config.train.grad_accum,
        local_devices=devices,
    )
    batch = jax.device_put(next(iterator), parallel.batch_sharding(mesh))
    update = step_lib.compile_update(setup.make_update(config), mesh)
    new, _ = update(state, batch)
    grads = parallel.to_host({'g': new.g_opt_state, 'd': new.d_opt_state, 'aux': new.aux})
    return {
        '|'.join(str(getattr(k, 'key', k)) for k in path): leaf
        for path, leaf in jax.tree_util.tree_leaves_with_path(grads)
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--out', required=True)
    parser.add_argument('--overrides', required=True)
    parser.add_argument('--baseline')
    args = parser.parse_args()
    assert jax.device_count() == 4 and jax.default_backend() == 'cpu', jax.devices()
    overrides = json.loads(args.overrides)
    arrays = {
        f'{devices}|{key}': value
        for devices in (1, 4)
        for key, value in record(overrides, devices).items()
    }
    if args.baseline:
        baseline = record(json.loads(args.baseline), 4)
        arrays.update({f'baseline|{key}': value for key, value in baseline.items()})
    np.savez(args.out, **arrays)


if __name__ == '__main__':
    main()
