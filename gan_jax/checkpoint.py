"""Checkpoints: the train state and the input pipeline's position, saved together.

An Orbax ``CheckpointManager`` with asynchronous saves (the device-to-host copy
happens before ``save`` returns, so donating the state to the next step is safe)
keeps the last N. Every process takes part in saving and restoring; Orbax writes
the shared files from the primary process, and Grain one position file per process.
"""

import grain
import jax
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be read."""


class Checkpointer:

    def __init__(self, directory, *, keep):
        self.directory = directory
        self._manager = ocp.CheckpointManager(
            directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
            item_handlers={'state': ocp.StandardCheckpointHandler(),
                           'data': grain.checkpoint.CheckpointHandler()})

    def latest_step(self):
        return self._manager.latest_step()

    def save(self, step, state, data_iterator):
        """Starts an asynchronous save of ``state`` and the iterator's position."""
        self._manager.save(int(step), args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=grain.checkpoint.CheckpointSave(data_iterator)), force=True)

    def restore(self, step, abstract_state, data_iterator):
        """Returns the state saved at ``step`` and moves ``data_iterator`` there.

        ``abstract_state`` (``jax.ShapeDtypeStruct`` leaves with shardings) gives
        the structure, dtypes and placement to restore into.
        """
        try:
            restored = self._manager.restore(int(step), args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state),
                data=grain.checkpoint.CheckpointRestore(data_iterator)))
        except Exception as e:  # Orbax raises many types; all mean the same here.
            raise CheckpointError(
                f'The checkpoint of step {step} in {self.directory} could not be read '
                f'({type(e).__name__}: {e}). Nothing was deleted. To resume from an '
                f'earlier checkpoint, move the folder of step {step} out of '
                f'{self.directory}; to start afresh, use another --workdir.') from e
        return restored['state']

    def wait(self):
        """Blocks until pending asynchronous saves are on disk."""
        self._manager.wait_until_finished()

    def close(self):
        self._manager.close()


def abstract_like(state):
    """Shapes, dtypes and shardings of ``state``, the restore target."""
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
