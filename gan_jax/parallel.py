"""Devices, hosts and the data-parallel mesh."""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

# The one mesh axis: the global batch is split over it, parameters are replicated.
DATA_AXIS = 'data'


def make_mesh(devices=None):
    """A 1-D mesh over every device of every process."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (DATA_AXIS,))


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
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)


def check_batch_divisible(global_batch, key='train.batch_size'):
    """Fails early, naming the numbers, when the batch cannot be split evenly."""
    n_dev, n_proc = jax.device_count(), jax.process_count()
    if global_batch % n_dev:
        raise ValueError(
            f'{key}={global_batch} is not divisible by the number of devices '
            f'({n_dev}); choose a multiple of {n_dev}.')
    if global_batch % n_proc:
        raise ValueError(
            f'{key}={global_batch} is not divisible by the number of processes '
            f'({n_proc}); choose a multiple of {n_proc}.')
