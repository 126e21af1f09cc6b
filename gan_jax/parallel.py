"""Devices, hosts, the data-parallel mesh, and how the sharded programs are compiled."""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

# The one mesh axis: the global batch is split over it, parameters are replicated.
DATA_AXIS = 'data'


def make_mesh(devices=None):
    """A 1-D mesh over every device of every process."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (DATA_AXIS,))


# XLA:CPU (JAX 0.10) hands each convolution to YNNPACK by default; its other path
# (Eigen) runs the models' convolutions faster (measured in benchmarks/README.md).
# This list is XLA's default YNNPACK list with the convolutions left out: matrix
# products and reductions stay on YNNPACK.
CPU_COMPILER_OPTIONS = {
    'xla_cpu_experimental_ynn_fusion_type': (
        'LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE'
    ),
}


@functools.cache
def compiler_options():
    """``CPU_COMPILER_OPTIONS`` on a CPU backend whose XLA accepts them, else None."""
    if jax.default_backend() != 'cpu' or not CPU_COMPILER_OPTIONS:
        return None
    try:  # An XLA without these options would fail every compile: probe once.
        jax.jit(jnp.negative, compiler_options=CPU_COMPILER_OPTIONS).lower(jnp.zeros(())).compile()
    except jax.errors.JaxRuntimeError as error:
        warnings.warn(
            f'XLA:CPU rejected gan_jax.parallel.CPU_COMPILER_OPTIONS ({error}); '
            'compiling with its defaults.',
            stacklevel=2,
        )
        return None
    return CPU_COMPILER_OPTIONS


def jit_sharded(fn, mesh, in_specs, out_specs, donate_argnums=()):
    """``jax.jit(jax.shard_map(fn))`` with this backend's ``compiler_options()``."""
    return jax.jit(
        jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs),
        donate_argnums=donate_argnums,
        compiler_options=compiler_options(),
    )


def to_host(tree):
    """Replicated global arrays -> numpy (works when other processes hold copies too)."""
    return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)


def replicated(mesh):
    return NamedSharding(mesh, P())


def batch_sharding(mesh):
    """Batches are (n_dis, batch, ...): the batch dimension is split over devices."""
    return NamedSharding(mesh, P(None, DATA_AXIS))


def initialize_distributed(coordinator_address=None, num_processes=None, process_id=None):
    """``jax.distributed.initialize``; arguments None are auto-detected (TPU, SLURM...).

    On CPU the cross-process collectives need an implementation: gloo (the
    setting only concerns the CPU backend).
    """
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
    )


def run_on_process_zero(fn):
    """Calls ``fn()`` on process 0 only; if it raises, every process raises.

    Process 0 re-raises its exception; the others raise a RuntimeError with its
    type and message, so that no process goes on into a collective alone.
    """
    error = None
    if jax.process_index() == 0:
        try:
            fn()
        except Exception as e:  # Every failure must reach every process.
            error = e
    if jax.process_count() > 1:
        message = np.zeros(8192, np.uint8)
        if error is not None:
            text = f'{type(error).__name__} on process 0: {error}'.encode()[: message.size - 1]
            message[: len(text)] = np.frombuffer(text, np.uint8)
        message = np.asarray(multihost_utils.broadcast_one_to_all(message))
        if error is None and message.any():
            raise RuntimeError(bytes(message).rstrip(b'\0').decode(errors='replace'))
    if error is not None:
        raise error


def check_batch_divisible(global_batch, key='train.batch_size'):
    """Fails early, naming the numbers, when the batch cannot be split evenly."""
    n_dev, n_proc = jax.device_count(), jax.process_count()
    if global_batch % n_dev:
        raise ValueError(
            f'{key}={global_batch} is not divisible by the number of devices '
            f'({n_dev}); choose a multiple of {n_dev}.'
        )
    if global_batch % n_proc:
        raise ValueError(
            f'{key}={global_batch} is not divisible by the number of processes '
            f'({n_proc}); choose a multiple of {n_proc}.'
        )
