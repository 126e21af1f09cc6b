"""The training example stream, identical however many processes it is split over."""

import functools

import grain
import numpy as np

from gan_jax.data.source import ImageSource


def make_train_iterator(
    source: ImageSource,
    *,
    global_batch: int,
    batches_per_step: int,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
    start_step: int = 0,
    num_threads: int = 8,
    grad_accum: int = 1,
    local_devices: int = 1,
    reshuffle_each_epoch: bool = True,
) -> grain.DatasetIterator:
    """Yields this process's share of each training step as numpy arrays.

    Each element is {"image": uint8 (batches_per_step, b, H, W, C), "label": int32
    (batches_per_step, b)} with b = global_batch // process_count. The global stream is the
    dataset reshuffled every epoch (``reshuffle_each_epoch=False``: the first epoch's
    permutation every epoch); global batch k is stream positions [k*G, (k+1)*G); step t is
    global batches t*batches_per_step ...; process p gets rows [p*b, (p+1)*b) of each global
    batch. So the run does not depend on the process count.

    With ``grad_accum`` k > 1 each global batch is k micro-batches of G/k consecutive stream
    positions, each split over all devices like a batch: device d (of D, this process holding
    ``local_devices`` of them) holds rows j*G/k + d*m ... + m - 1 of micro-batch j (m = G/(k*D))
    as its rows j*m ..., so micro-batch j is the same examples on any number of devices and
    processes. k = 1 is the plain split.

    The iterator's state counts steps from the start of the run (`start_step` included), so a
    state saved at step t restores step t whatever `start_step` the new iterator was made with.
    Decoding runs in `num_threads` grain threads, up to 2 * num_threads steps ahead.
    """
    if global_batch % process_count:
        raise ValueError(
            f'global_batch={global_batch} is not divisible by process_count={process_count}.'
        )
    if global_batch % (grad_accum * process_count * local_devices):
        raise ValueError(
            f'global_batch={global_batch} is not divisible by grad_accum={grad_accum} times '
            f'the {process_count * local_devices} devices.'
        )
    if not 0 <= process_index < process_count:
        raise ValueError(f'process_index={process_index} not in [0, {process_count}).')
    chunk = global_batch // (process_count * grad_accum)
    stream = (
        grain.MapDataset.source(source)
        .shuffle(_shuffle_seed(seed))
        .repeat(reseed_each_epoch=reshuffle_each_epoch)
    )
    # Consecutive chunks of a micro-batch's share per process; every process_count-th one is
    # this process's rows.
    local = stream.batch(chunk, drop_remainder=True)[process_index::process_count]
    if grad_accum > 1:
        local = local.batch(grad_accum, drop_remainder=True).map(
            functools.partial(_device_major, devices=local_devices)
        )
    steps = local.batch(batches_per_step, drop_remainder=True)
    read_options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=2 * num_threads)
    iterator = iter(steps.to_iter_dataset(read_options))
    grain.experimental.set_next_index(iterator, start_step)
    return iterator


def _device_major(batch, devices):
    """[k micro-batches, devices * m, ...] -> [devices * k * m, ...]: each device's rows of
    every micro-batch together, in micro-batch order."""

    def reorder(x):
        k, rows = x.shape[:2]
        x = x.reshape(k, devices, rows // devices, *x.shape[2:]).swapaxes(0, 1)
        return x.reshape(k * rows, *x.shape[3:])

    return {name: reorder(x) for name, x in batch.items()}


def _shuffle_seed(seed: int) -> int:
    """Hashes the run seed: grain shuffles epoch e with seed + e, so runs seeded s and s + 1
    would otherwise see the same permutations one epoch apart."""
    return int(np.random.SeedSequence(seed).generate_state(1)[0])
