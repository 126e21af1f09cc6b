"""Mixed precision (train.compute_dtype='bfloat16'): bfloat16 layers, float32 state."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import builder, parallel
from gan_jax import step as step_lib
from tests import helpers

# SN in both nets and a conditional G: spectral-norm and conditional-BN weights too.
OVERRIDES = {
    'model.d_spectral_norm': True,
    'model.g_spectral_norm': True,
    'model.conditioning': 'projection',
    'optim.name': 'sgd',
    'optim.g_lr': 0.1,
    'optim.d_lr': 0.1,
    'train.batch_size': 64,
    'model.g_width': 16,
    'model.d_width': 16,
}
BATCH = OVERRIDES['train.batch_size']


def _update_and_batch(compute_dtype):
    config = helpers.tiny_config(**OVERRIDES, **{'train.compute_dtype': compute_dtype})
    setup = builder.build(config)
    mesh = parallel.make_mesh()
    update = jax.shard_map(
        setup.make_update(config),
        mesh=mesh,
        in_specs=(jax.P(), jax.P(None, parallel.DATA_AXIS)),
        out_specs=(jax.P(), jax.P()),
    )
    rng = np.random.default_rng(0)
    shape = setup.source.image_shape
    batch = {
        'image': rng.integers(0, 256, (1, BATCH, *shape), np.uint8),
        'label': rng.integers(0, 10, (1, BATCH)).astype(np.int32),
    }
    return setup.init_state(), jax.jit(update), batch


def _layer_output_dtypes(update, state, batch):
    """Dtypes of the update's convolutions and of its matrix products over the batch.

    Those are the layers' work (the transposed convolutions' forward passes are
    matrix products, see conv.dilated_conv). Spectral norm's power iteration and its gradient stay
    float32 by design (its vectors are statistics); those products are vectors
    or matrices of weight shape, not over the batch.
    """
    jaxpr = str(jax.make_jaxpr(update)(state, batch))
    found = re.findall(
        r'(\w+)\[([\d,]*)\](?:\{[^}]*\})? = (conv_general_dilated|dot_general)', jaxpr
    )
    dims = [[int(d) for d in shape.split(',') if d] for _, shape, _ in found]
    layers = [
        dtype
        for (dtype, _, op), dim in zip(found, dims)
        if op == 'conv_general_dilated' or (len(dim) >= 2 and dim[0] % BATCH == 0)
    ]
    assert len(layers) >= 10, found  # The pattern still matches the jaxpr's format.
    return layers


@pytest.mark.slow
def test_bfloat16_layers_compute_in_bfloat16_and_state_stays_float32():
    state, update, batch = _update_and_batch('bfloat16')
    assert set(_layer_output_dtypes(update, state, batch)) == {'bf16'}
    new_state, metrics = update(state, batch)
    dtypes = {
        leaf.dtype
        for leaf in jax.tree.leaves(new_state)
        if jnp.issubdtype(leaf.dtype, jnp.floating)
    }
    assert dtypes == {jnp.dtype('float32')}
    assert all(np.isfinite(v) for v in jax.device_get(metrics).values())
    # The float32 run really is float32: the check above can tell them apart.
    state, update, batch = _update_and_batch('float32')
    assert set(_layer_output_dtypes(update, state, batch)) == {'f32'}


@pytest.mark.heavy  # CI's 20 minutes.
@pytest.mark.slow
def test_bfloat16_update_matches_float32_to_bfloat16_precision():
    """One SGD step (Adam would hide a wrong gradient): parameter changes agree."""
    changes = {}
    for dtype in ('float32', 'bfloat16'):
        state, update, batch = _update_and_batch(dtype)
        new_state, _ = update(state, batch)
        changes[dtype] = jax.tree.map(
            lambda new, old: np.asarray(new - old),
            (new_state.g_params, new_state.d_params),
            (state.g_params, state.d_params),
        )
    full, half = (
        np.concatenate([c.ravel() for c in jax.tree.leaves(changes[d])])
        for d in ('float32', 'bfloat16')
    )
    error = np.linalg.norm(half - full) / np.linalg.norm(full)
    cosine = half @ full / np.linalg.norm(half) / np.linalg.norm(full)
    # bfloat16 rounds each value to 2^-9 (2e-3) relative, but backpropagation
    # through BatchNorm and bias sums cancels large terms, so the error grows as
    # the nets shrink (seen: 21% at batch 8 / width 8, 6% at batch 64 / width 32).
    # A missing or wrong gradient path would be off by O(1) and point elsewhere.
    assert error < 0.15
    assert cosine > 0.99
    assert error > 1e-4  # ...and it is not secretly float32.


def test_unknown_compute_dtype_is_rejected_by_name():
    config = helpers.tiny_config(**{'train.compute_dtype': 'float16'})
    with pytest.raises(ValueError, match="train.compute_dtype='float16'.*bfloat16"):
        builder.build(config)


def test_compute_dtype_names():
    assert step_lib.compute_dtype('bfloat16') == jnp.bfloat16
    assert step_lib.compute_dtype('float32') == jnp.float32
