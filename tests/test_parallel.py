"""The compiler options of the library's sharded programs (gan_jax/parallel.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.sharding import PartitionSpec as P

from gan_jax import parallel

pytestmark = pytest.mark.skipif(
    jax.default_backend() != 'cpu', reason='the options concern XLA:CPU only'
)


def _conv(x, kernel):
    return lax.conv_general_dilated(
        x, kernel, (2, 2), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')
    )


def _inputs():
    keys = jax.random.split(jax.random.key(0))
    return (jax.random.normal(keys[0], (4, 8, 8, 16)), jax.random.normal(keys[1], (3, 3, 16, 32)))


@pytest.fixture
def fresh_options(monkeypatch):
    """compiler_options() recomputed for each test, and again afterwards."""
    parallel.compiler_options.cache_clear()
    yield monkeypatch
    parallel.compiler_options.cache_clear()


def test_sharded_convolutions_leave_ynnpack_but_compute_the_same(fresh_options):
    x, kernel = _inputs()
    mesh = parallel.make_mesh(jax.devices()[:1])
    default = jax.jit(_conv).lower(x, kernel).compile().as_text()
    sharded = parallel.jit_sharded(
        _conv, mesh, in_specs=(P(parallel.DATA_AXIS), P()), out_specs=P(parallel.DATA_AXIS)
    )
    # XLA's default sends the convolution to YNNPACK; the options keep it on Eigen.
    assert '__ynn_fusion' in default
    assert '__ynn_fusion' not in sharded.lower(x, kernel).compile().as_text()
    np.testing.assert_allclose(sharded(x, kernel), jax.jit(_conv)(x, kernel), rtol=1e-5, atol=1e-5)


def test_options_an_xla_rejects_fall_back_to_its_defaults_with_a_warning(fresh_options):
    fresh_options.setattr(
        parallel,
        'CPU_COMPILER_OPTIONS',
        {'xla_cpu_experimental_ynn_fusion_type': 'NOT_A_FUSION_TYPE'},
    )
    with pytest.warns(UserWarning, match='NOT_A_FUSION_TYPE'):
        assert parallel.compiler_options() is None
    mesh = parallel.make_mesh(jax.devices()[:1])
    sharded = parallel.jit_sharded(jnp.negative, mesh, in_specs=P(), out_specs=P())
    assert float(sharded(jnp.ones(()))) == -1.0
