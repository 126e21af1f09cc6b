"""The classifiers' data-parallel training step and batch order (train_classifier.py)."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import parallel
from gan_jax.metrics import classifiers
from gan_jax.metrics import train_classifier as tc
from tests import helpers

LEARNING_RATE = 0.05
STEPS = 3
BATCH = 8


def batch(name, step_index):
    shape = classifiers.get_spec(name).input_shape
    rng = np.random.default_rng(step_index)
    return rng.integers(0, 256, (BATCH, *shape), np.uint8), rng.integers(0, 10, BATCH)


def sgd_steps(name, mesh):
    """Parameters and BatchNorm statistics after STEPS of tc.train_step with plain SGD."""
    optimizer = optax.sgd(LEARNING_RATE)
    variables = classifiers.init_variables(name, jax.random.key(0))
    params, state = variables['params'], {k: v for k, v in variables.items() if k != 'params'}
    opt_state = optimizer.init(params)
    step = tc.train_step(name, optimizer, mesh, jax.random.key(1))
    for i in range(STEPS):
        params, state, opt_state, _ = step(params, state, opt_state, *batch(name, i), i)
    return parallel.to_host({'params': params, **state})


def sgd_steps_by_hand(name):
    """The same updates without shard_map: the full batch's mean loss, its gradient, p - lr g;
    BatchNorm's statistics over the full batch; the same flips."""
    module = classifiers.get_spec(name).build()

    @jax.jit
    def step(params, state, x, labels):
        def loss_fn(params):
            outputs, new_state = module.apply(
                {'params': params, **state}, x, train=True, mutable=list(state)
            )
            loss = optax.softmax_cross_entropy_with_integer_labels(outputs['logits'], labels)
            return loss.mean(), new_state

        grads, state = jax.grad(loss_fn, has_aux=True)(params)
        return jax.tree.map(lambda p, g: p - LEARNING_RATE * g, params, grads), state

    variables = classifiers.init_variables(name, jax.random.key(0))
    params, state = variables['params'], {k: v for k, v in variables.items() if k != 'params'}
    for i in range(STEPS):
        images, labels = batch(name, i)
        x = classifiers.preprocess(jnp.asarray(images), name)
        if tc.TRAINING[name]['flip']:
            x = tc.flip(jax.random.fold_in(jax.random.key(1), i), x)
        params, state = step(params, state, x, labels)
    return jax.device_get({'params': params, **state})


def flat(tree):
    return {
        jax.tree_util.keystr(path): np.asarray(x) for path, x in jax.tree.leaves_with_path(tree)
    }


@pytest.mark.slow
def test_one_and_four_devices_take_the_same_sgd_steps_as_the_full_batch(tmp_path):
    # The CIFAR CNN: BatchNorm over the whole batch and flips besides LeNet's layers (one model,
    # one compile per process: the test's cost is compiling). Plain SGD keeps
    # the update linear in the gradient, so float differences of the reduction order (~1e-7
    # relative) stay of that order after 3 steps; Adam's first steps, about lr * sign(g), would
    # turn them into a full step wherever a gradient entry is near zero.
    code = (
        'import numpy as np; from gan_jax import parallel; '
        'from tests.metrics.test_train_classifier import flat, sgd_steps; '
        f'np.savez({str(tmp_path / "four.npz")!r}, **flat(sgd_steps("cnn_cifar10", '
        'parallel.make_mesh())))'
    )
    helpers.run_python(code, devices=4)
    four = dict(np.load(tmp_path / 'four.npz'))
    one = flat(sgd_steps('cnn_cifar10', parallel.make_mesh(jax.devices()[:1])))
    reference = flat(sgd_steps_by_hand('cnn_cifar10'))
    initial = flat(classifiers.init_variables('cnn_cifar10', jax.random.key(0)))
    assert one.keys() == four.keys() == reference.keys()
    # The steps moved the weights, so the comparison means something.
    assert max(float(np.abs(reference[k] - initial[k]).max()) for k in reference) > 1e-3
    for key, value in reference.items():
        np.testing.assert_allclose(one[key], value, rtol=1e-4, atol=1e-5, err_msg=key)
        np.testing.assert_allclose(four[key], value, rtol=1e-4, atol=1e-5, err_msg=key)


def test_batches_are_whole_passes_of_fresh_permutations():
    stream = tc.batches(np.random.default_rng(7), 10, 3)
    taken = np.stack([next(stream) for _ in range(6)])  # Two passes of 3 batches, 1 left out each.
    rng = np.random.default_rng(7)
    expected = [rng.permutation(10)[:9].reshape(3, 3) for _ in range(2)]
    np.testing.assert_array_equal(taken, np.concatenate(expected))


def test_too_few_images_or_a_batch_that_does_not_divide_over_the_devices_is_an_error():
    images, labels = np.zeros((200, 28, 28, 1), np.uint8), np.zeros(200, int)
    with pytest.raises(ValueError, match='100 training images: fewer than one batch of 128'):
        next(tc.fit('lenet_mnist', images[:100], labels[:100], 1, 0))
    with pytest.raises(ValueError, match='batch size 128 does not divide over 3 devices'):
        next(tc.fit('lenet_mnist', images, labels, 1, 0, mesh=types.SimpleNamespace(size=3)))
