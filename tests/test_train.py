"""The training loop: exact resume, divergence and corrupt checkpoints."""

import os

import jax
import numpy as np
import optax
import pytest

from gan_jax import checkpoint as ckpt_lib
from gan_jax import state as state_lib
from gan_jax import train
from tests import helpers


def _weights(state):
    return train.to_host({'g': state.g_params, 'd': state.d_params,
                          'g_bn': state.g_batch_stats, 'd_bn': state.d_batch_stats,
                          'g_opt': state.g_opt_state, 'd_opt': state.d_opt_state})


def _assert_bit_identical(a, b):
    flat_a, tree_a = jax.tree.flatten(a)
    flat_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(flat_a, flat_b):
        np.testing.assert_array_equal(x, y)


def test_resume_is_bit_identical(tmp_path):
    k = 3
    straight = train.train(helpers.tiny_config(**{'train.steps': 2 * k}), str(tmp_path / 'a'))
    first = train.train(helpers.tiny_config(**{'train.steps': k}), str(tmp_path / 'b'))
    assert int(first.step) == k
    resumed = train.train(helpers.tiny_config(**{'train.steps': 2 * k}), str(tmp_path / 'b'))
    assert int(resumed.step) == 2 * k
    _assert_bit_identical(_weights(straight), _weights(resumed))
    # Sanity check that the comparison can fail: one step fewer differs.
    shorter = train.train(helpers.tiny_config(**{'train.steps': 2 * k - 1}),
                          str(tmp_path / 'c'))
    assert any(not np.array_equal(x, y) for x, y in zip(
        jax.tree.leaves(_weights(shorter)), jax.tree.leaves(_weights(straight))))


def test_ema_is_the_exponential_average_of_generator_params(tmp_path):
    # After one step with decay d: ema = d * initial + (1 - d) * updated.
    config = helpers.tiny_config(**{'ema.kind': 'decay', 'ema.decay': 0.25, 'train.steps': 1})
    initial = train.build(config).init_state().g_params
    state = train.train(config, str(tmp_path))
    expected = jax.tree.map(lambda p0, p1: 0.25 * p0 + 0.75 * p1, initial, state.g_params)
    for e, x in zip(jax.tree.leaves(train.to_host(state.ema_params)),
                    jax.tree.leaves(expected)):
        np.testing.assert_allclose(e, x, rtol=1e-6, atol=1e-7)
    assert any(not np.allclose(p0, p1) for p0, p1 in zip(
        jax.tree.leaves(initial), jax.tree.leaves(state.g_params)))  # It did move.


def _diverging_optimizers(optim_config, *, steps, n_dis):
    """Simulates divergence: the next update turns every parameter into NaN.

    Adam, as in the saved run, so that the checkpoint's optimiser state fits.
    """
    del optim_config, steps, n_dis
    return optax.adam(float('nan')), optax.adam(float('nan'))


def test_divergence_raises_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    workdir = str(tmp_path)
    config = helpers.tiny_config(**{'train.steps': 3, 'checkpoint.every_steps': 3})
    train.train(config, workdir)
    monkeypatch.setattr(state_lib, 'make_optimizers', _diverging_optimizers)
    longer = helpers.tiny_config(**{'train.steps': 9, 'checkpoint.every_steps': 1})
    with pytest.raises(train.NonFiniteLossError, match=r'step 4.*checkpoint of step 3 is kept'):
        train.train(longer, workdir)
    assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['3']


def test_corrupt_checkpoint_fails_clearly_and_is_kept(tmp_path):
    workdir = str(tmp_path)
    train.train(helpers.tiny_config(**{'train.steps': 3}), workdir)
    state_dir = tmp_path / 'checkpoints' / '3' / 'state'
    damaged = 0
    for path in state_dir.rglob('*'):
        if path.is_file() and path.stat().st_size > 0:
            path.write_bytes(b'\0garbage')
            damaged += 1
    assert damaged
    with pytest.raises(ckpt_lib.CheckpointError, match=r'step 3 .*could not be read'):
        train.train(helpers.tiny_config(**{'train.steps': 6}), workdir)
    assert (tmp_path / 'checkpoints' / '3').exists()
