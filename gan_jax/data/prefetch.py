"""Moves batches onto the devices ahead of the training step that needs them."""

import collections

import grain
import jax


class DevicePrefetcher(grain.DatasetIterator):
    """Global jax.Arrays from a grain iterator of process-local numpy batches, `size` ahead.

    The wrapped iterator has already produced the batches waiting here, so its own state is
    ahead of training. This iterator's get_state() is the position just after the last batch it
    handed out, which is what a checkpoint at the end of that step must hold; set_state() drops
    the waiting batches. It is a grain DatasetIterator, so grain.checkpoint.CheckpointSave and
    CheckpointRestore take it directly.
    """

    def __init__(
        self, iterator: grain.DatasetIterator, sharding: jax.sharding.Sharding, size: int = 2
    ):
        super().__init__(iterator)
        self._sharding = sharding
        self._size = size
        self._waiting = collections.deque()  # (global batch, parent state after it)
        self._state = iterator.get_state()

    def __next__(self):
        try:
            while len(self._waiting) <= self._size:
                batch = jax.tree.map(self._to_global, next(self._parent))
                self._waiting.append((batch, self._parent.get_state()))
        except StopIteration:
            if not self._waiting:
                raise
        batch, self._state = self._waiting.popleft()
        return batch

    def _to_global(self, local):
        return jax.make_array_from_process_local_data(self._sharding, local)

    def get_state(self):
        return self._state

    def set_state(self, state) -> None:
        self._waiting.clear()
        self._parent.set_state(state)
        self._state = state


def device_prefetch(
    iterator: grain.DatasetIterator, sharding: jax.sharding.Sharding, size: int = 2
) -> DevicePrefetcher:
    """See DevicePrefetcher; with the trainer's PartitionSpec(None, "data") the batch axis
    (axis 1 of each step) is split over the mesh's "data" devices."""
    return DevicePrefetcher(iterator, sharding, size)
