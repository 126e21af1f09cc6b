"""Conv computes exactly nn.Conv, and its gradients are standard-layout convolutions."""

import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from gan_jax.models import conv as conv_lib
from gan_jax.models.conv import Conv
from tests.models.checks import assert_same_gradients, assert_same_penalty_gradients


@pytest.fixture(autouse=True)
def explicit_gradients(monkeypatch):
    """The written-out gradients, also where the backend would use JAX's own (GPUs)."""
    monkeypatch.setattr(conv_lib, 'EXPLICIT_GRADIENT_BACKENDS', (jax.default_backend(),))


CASES = [  # kernel, stride, padding, input size
    (4, 2, 'SAME', 8),
    (4, 2, 'SAME', 7),
    (3, 1, 1, 7),
    (1, 1, 'SAME', 5),
    (3, 2, 'VALID', 9),
    (4, 2, ((1, 2), (0, 1)), 7),
    (5, 3, 'SAME', 11),
    (5, 2, 'SAME', 4),  # Windows larger than the input: computed from patches.
    (5, 1, 'SAME', 2),
    (3, 2, ((2, 1), (0, 3)), 2),
]


def _pair(kernel, stride, padding):
    reference = nn.Conv(5, (kernel, kernel), stride, padding=padding)
    return reference, Conv(5, (kernel, kernel), stride, padding=padding)


@pytest.mark.slow
@pytest.mark.parametrize('kernel, stride, padding, size', CASES)
def test_same_parameters_outputs_and_gradients_as_flax_conv(kernel, stride, padding, size):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, size, size, 3))
    reference, fast = _pair(kernel, stride, padding)
    params = reference.init(jax.random.PRNGKey(1), x)
    # Same names, shapes and initial values: existing runs and checkpoints carry over.
    jax.tree.map(np.testing.assert_array_equal, fast.init(jax.random.PRNGKey(1), x), params)
    params = jax.tree.map(lambda p: p + 0.1, params)  # A nonzero bias too.

    y_ref, y_fast = reference.apply(params, x), fast.apply(params, x)
    assert y_fast.shape == y_ref.shape
    np.testing.assert_allclose(y_fast, y_ref, rtol=1e-5, atol=1e-5)

    assert_same_gradients(reference, fast, params, x)


@pytest.mark.parametrize('kernel, stride, padding, size', CASES[:3])
def test_second_order_gradients_match_flax_conv(kernel, stride, padding, size):
    # A gradient penalty: the parameter gradient of an input-gradient norm.
    x = jax.random.normal(jax.random.PRNGKey(0), (2, size, size, 3))
    reference, fast = _pair(kernel, stride, padding)
    params = reference.init(jax.random.PRNGKey(1), x)

    assert_same_penalty_gradients(reference, fast, params, x)


@pytest.mark.parametrize(
    'kernel, dilation, padding, size',
    [
        ((4, 4), (2, 2), ((2, 2), (2, 2)), (5, 5)),  # A strided convolution's input gradient.
        ((3, 5), (3, 1), ((0, 1), (3, 2)), (4, 6)),  # Outputs that no phase count divides.
        ((4, 3), (2, 2), ((-1, 2), (1, -1)), (6, 5)),  # Cropping (negative padding).
    ],
)
@pytest.mark.slow
def test_dilated_conv_equals_xla_dilated_convolution(kernel, dilation, padding, size):
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(keys[0], (2, *size, 3))
    w = jax.random.normal(keys[1], (*kernel, 3, 4))

    def reference(x, w):
        return lax.conv_general_dilated(
            x, w, (1, 1), padding, lhs_dilation=dilation, dimension_numbers=conv_lib.DIMENSIONS
        )

    def by_phase(x, w):
        return conv_lib.dilated_conv(x, w, dilation, padding)

    y = reference(x, w)
    np.testing.assert_allclose(by_phase(x, w), y, rtol=1e-5, atol=1e-5)
    dy = jax.random.normal(keys[2], y.shape)
    for got, want in zip(jax.vjp(by_phase, x, w)[1](dy), jax.vjp(reference, x, w)[1](dy)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def _convolution_layouts(fn, *args):
    text = jax.jit(fn).lower(*args).as_text()
    return set(re.findall(r'dim_numbers = (\[[^\]]*\]x\[[^\]]*\]->\[[^\]]*\])', text))


def test_gradients_in_a_loop_are_standard_layout_convolutions():
    # What keeps XLA:CPU on its fast kernels inside lax.scan (see conv.py):
    # first- and second-order gradients use NHWC x HWIO -> NHWC only, where
    # flax's own layer needs permuted layouts.
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))

    def penalised_grads(module):
        params = module.init(jax.random.PRNGKey(1), x)

        def loss(p, x):
            out, grad_x = jax.value_and_grad(lambda x: jnp.sum(module.apply(p, x) ** 2))(x)
            return out + jnp.sum(grad_x**2)

        def steps(p):
            return lax.scan(lambda p, _: (p, jax.grad(loss)(p, x)), p, None, length=2)[1]

        return _convolution_layouts(steps, params)

    standard = {'[b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f]'}
    assert penalised_grads(Conv(4, (4, 4), 2)) == standard
    assert penalised_grads(nn.Conv(4, (4, 4), 2)) != standard  # The check can fail.
