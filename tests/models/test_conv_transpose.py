"""PhaseConvTranspose computes exactly nn.ConvTranspose(padding='SAME')."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.models.conv import phase_taps
from gan_jax.models.conv_transpose import PhaseConvTranspose, same_padding
from tests.models.checks import assert_same_gradients, assert_same_penalty_gradients


@pytest.mark.slow
@pytest.mark.parametrize(
    'kernel, stride, size', [(4, 2, 7), (3, 2, 5), (5, 2, 4), (4, 4, 3), (2, 2, 5)]
)
def test_same_outputs_and_gradients_as_flax_conv_transpose(kernel, stride, size):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, size, size, 3))
    reference = nn.ConvTranspose(5, (kernel, kernel), (stride, stride), padding='SAME')
    fast = PhaseConvTranspose(5, (kernel, kernel), (stride, stride))
    params = reference.init(jax.random.PRNGKey(1), x)
    params = jax.tree.map(lambda p: p + 0.1, params)  # A nonzero bias too.
    assert jax.tree.map(jnp.shape, fast.init(jax.random.PRNGKey(1), x)) == jax.tree.map(
        jnp.shape, params
    )

    y_ref, y_fast = reference.apply(params, x), fast.apply(params, x)
    assert y_fast.shape == y_ref.shape == (2, size * stride, size * stride, 5)
    np.testing.assert_allclose(y_fast, y_ref, rtol=1e-5, atol=1e-5)

    assert_same_gradients(reference, fast, params, x)


def test_phase_taps_for_the_dcgan_layer():
    # Kernel 4, stride 2, SAME (leading pad 2): y[2p] = K0 x[p-1] + K2 x[p] and
    # y[2p+1] = K1 x[p] + K3 x[p+1], as (offset, tap) pairs.
    assert same_padding(4, 2) == (2, 2)
    assert phase_taps(4, 2, 2) == [[(-1, 0), (0, 2)], [(0, 1), (1, 3)]]


def test_second_order_gradients_match_flax_conv_transpose():
    # The hand-written backward is plain JAX: a gradient penalty through the
    # layer (the gradient of an input-gradient norm) must still be exact.
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 5, 3))
    reference = nn.ConvTranspose(4, (4, 4), (2, 2), padding='SAME')
    fast = PhaseConvTranspose(4, (4, 4), (2, 2))
    params = reference.init(jax.random.PRNGKey(1), x)

    assert_same_penalty_gradients(reference, fast, params, x)
