"""Several updates per compiled call, and real examples drawn on the device."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import builder, parallel
from gan_jax import step as step_lib
from tests import helpers


def _config(**overrides):
    return helpers.tiny_config(
        **{
            'data.source': 'ring',
            'model.name': 'mlp',
            'model.z_dim': 3,
            'model.g_width': 6,
            'model.d_width': 5,
            'train.batch_size': 8,
            'optim.name': 'sgd',
            'optim.g_lr': 0.05,
            'optim.d_lr': 0.05,
            **overrides,
        }
    )


def _close(a, b, rtol=1e-5):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-6)


def test_steps_in_one_call_equal_single_steps_on_the_same_batches():
    config = _config(**{'train.n_dis': 2})
    setup = builder.build(config)
    mesh = parallel.make_mesh()
    reals = jax.random.normal(jax.random.PRNGKey(3), (3 * 2, 8, 2))  # 3 steps x n_dis 2.
    labels = jnp.zeros((6, 8), jnp.int32)
    three = step_lib.compile_update(
        step_lib.make_train_steps(setup.make_update(config), steps_per_call=3, n_dis=2), mesh
    )
    one = step_lib.compile_update(setup.make_update(config), mesh)
    state = setup.init_state()
    together, metrics = three(jax.tree.map(jnp.copy, state), {'image': reals, 'label': labels})
    apart = state
    for k in range(3):
        apart, last = one(apart, {'image': reals[2 * k : 2 * k + 2], 'label': labels[:2]})
    assert int(together.step) == int(apart.step) == 3
    _close(together.g_params, apart.g_params)
    _close(together.d_params, apart.d_params)
    np.testing.assert_allclose(metrics['g_loss'], last['g_loss'], rtol=1e-5)


def test_device_batches_are_keyed_draws_with_replacement():
    config = _config(**{'data.on_device': True, 'train.n_dis': 2})
    source = builder.build(config).source
    table = source.as_arrays()
    mesh = parallel.make_mesh()
    key = jax.random.PRNGKey(7)
    draw = parallel.jit_sharded(
        lambda t: step_lib.sample_device_batch(t, key, n_dis=2, global_batch=8),
        mesh,
        in_specs=(jax.sharding.PartitionSpec(),),
        out_specs=jax.sharding.PartitionSpec(None, parallel.DATA_AXIS),
    )
    batch = draw(table)
    # Example i of D step j is the row randint(fold_in(fold_in(key, j), i), 0, N).
    expected = [
        [
            int(
                jax.random.randint(
                    jax.random.fold_in(jax.random.fold_in(key, j), i), (), 0, len(source)
                )
            )
            for i in range(8)
        ]
        for j in range(2)
    ]
    np.testing.assert_array_equal(batch['image'], table['image'][np.array(expected)])
    np.testing.assert_array_equal(batch['label'], table['label'][np.array(expected)])


def test_device_data_steps_in_one_call_equal_single_calls():
    config = _config(**{'data.on_device': True})
    setup = builder.build(config)
    mesh = parallel.make_mesh()
    table = jax.device_put(setup.source.as_arrays(), parallel.replicated(mesh))

    def compiled(per_call):
        steps = step_lib.make_train_steps(
            setup.make_update(config), steps_per_call=per_call, n_dis=1, device_batch=8
        )
        return step_lib.compile_update(steps, mesh, device_data=True)

    state = setup.init_state()
    together, _ = compiled(4)(jax.tree.map(jnp.copy, state), table)
    apart = state
    for _ in range(4):
        apart, _ = compiled(1)(apart, table)
    _close(together.g_params, apart.g_params)
    _close(together.d_params, apart.d_params)


def test_intervals_must_be_multiples_of_steps_per_call(tmp_path):
    from gan_jax import train

    config = _config(**{'train.steps_per_call': 4, 'train.steps': 8, 'log.every_steps': 2})
    with pytest.raises(ValueError, match=r"train.steps_per_call=4 .*'log.every_steps': 2"):
        train.train(config, str(tmp_path / 'run'))


# Both heavy (a minute or more each; CI's 20 minutes): the simultaneous update, and
# grad_accum's micro-batches drawn on the device, laid out as the host pipeline's. The
# relativistic loss compares each real with its micro-batch's fakes, so reals in the wrong
# micro-batch would change D's gradient (D has no BatchNorm).
@pytest.mark.slow
@pytest.mark.parametrize(
    'variant',
    [
        pytest.param({'train.simultaneous': True}, marks=pytest.mark.heavy),
        pytest.param(
            {'train.grad_accum': 2, 'train.batch_size': 16, 'train.loss': 'ragan'},
            marks=pytest.mark.heavy,
        ),
    ],
    ids=['simultaneous', 'grad_accum'],
)
def test_device_data_and_several_steps_per_call_train_the_same_on_1_and_4_devices(
    tmp_path, variant
):
    overrides = {
        'data.source': 'ring',
        'model.name': 'mlp',
        'model.g_batch_norm': True,
        'model.d_maxout_pieces': 3,
        'model.cross_replica_bn': True,
        'train.pack': 2,
        'data.on_device': True,
        'train.steps_per_call': 3,
        'train.steps': 6,
        'log.every_steps': 3,
        'log.sample_every_steps': 6,
        'checkpoint.every_steps': 6,
        'optim.name': 'sgd',
        'optim.g_lr': 0.01,
        'optim.d_lr': 0.01,
        **variant,
    }
    one = helpers.train_in_subprocess(tmp_path / 'one', tmp_path / 'one.npz', overrides)
    four = helpers.train_in_subprocess(
        tmp_path / 'four', tmp_path / 'four.npz', overrides, devices=4
    )
    assert helpers.max_abs_diff(one, four) < 1e-5
