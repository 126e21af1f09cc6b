"""Checkpoints of the train state.

An Orbax ``CheckpointManager`` with asynchronous saves (the device-to-host copy
happens before ``save`` returns, so donating the state to the next step is safe)
keeps the last N. Every process takes part in saving and restoring; Orbax writes
the shared files from the primary process. The input pipeline's position is not
saved: it is a function of the step (data/pipeline.py).
"""

import errno
import json
import math
import os
import shutil
import time

import jax
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils

from gan_jax import parallel


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be read."""


class CheckpointSaveError(RuntimeError):
    """A checkpoint could not be written; the ones saved before it are intact."""


# What a full disk or an exhausted quota says, through Python or TensorStore.
_NO_SPACE = ('No space left on device', 'Disk quota exceeded', "os_error_code='28'")


def _chain(error):
    """``error`` and the exceptions it was raised from, newest first."""
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def is_disk_full(error) -> bool:
    """Whether ``error`` or an exception it was raised from says the disk or quota is full."""
    return any(
        (isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT))
        or any(text in str(e) for text in _NO_SPACE)
        for e in _chain(error)
    )


def is_timeout(error) -> bool:
    """Whether ``error`` or an exception it was raised from is a TimeoutError."""
    return any(isinstance(e, TimeoutError) for e in _chain(error))


class Checkpointer:
    """The checkpoints in ``directory``, the newest ``keep`` kept (None: all).

    A save is written to a temporary folder and renamed when complete, and older
    checkpoints are deleted only after that, so a failed save (a full disk) leaves
    the earlier ones intact; it raises CheckpointSaveError at the next save or at
    ``wait``/``close``. ``owner``: the run that writes here (it holds the run lock)
    removes the temporary folders of its unfinished saves on opening; a reader
    (evaluation beside a live run) leaves them alone.

    A save that is not on disk ``save_timeout_secs`` after it started (Orbax's
    deadline is wall-clock time, so a process paused with SIGSTOP or a slow disk
    passes it) is abandoned with a warning at the next ``save``, and training goes
    on: that checkpoint is not kept, the earlier ones are intact, and the next save
    is a fresh attempt. At ``wait``/``close`` it raises CheckpointSaveError as any
    failed save does.
    """

    def __init__(self, directory, *, keep, owner=False, save_timeout_secs=1200):
        self.directory = directory
        self._save_timeout_secs = save_timeout_secs
        self._manager = ocp.CheckpointManager(
            directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=keep,
                create=True,
                cleanup_tmp_directories=owner,
                async_options=ocp.AsyncOptions(timeout_secs=save_timeout_secs),
            ),
            item_handlers={'state': ocp.StandardCheckpointHandler()},
        )
        self._pending = None  # The step of the save in progress.

    def latest_step(self):
        return self._manager.latest_step()

    def all_steps(self):
        return sorted(self._manager.all_steps())

    def save(self, step, state):
        """Starts an asynchronous save of ``state`` once the previous one is on disk.

        A previous save that timed out is logged and skipped; any other failure of it
        raises CheckpointSaveError with its own step.
        """
        try:
            self.wait()
        except CheckpointSaveError as error:
            if not is_timeout(error):
                raise
            logging.warning(
                'The checkpoint of step %d in %s was not on disk %d s after it started (a '
                'paused process or a slow disk): abandoned, with the checkpoints before it '
                'intact; training goes on. (%s)',
                self._pending,
                self.directory,
                self._save_timeout_secs,
                error.__cause__,
            )
            self._pending = None
        try:
            self._manager.save(
                int(step), args=ocp.args.Composite(state=ocp.args.StandardSave(state)), force=True
            )
        except Exception as error:  # Orbax and TensorStore raise many types.
            raise self._save_failed(step, error) from error
        self._pending = int(step)

    def _save_failed(self, step, error):
        self._manager.reload()  # What is on disk now.
        saved = sorted(self._manager.all_steps())
        full = is_disk_full(error)
        resume = f'step {saved[-1]}' if saved else 'the start'
        return CheckpointSaveError(
            f'The checkpoint of step {step} could not be written to {self.directory}'
            f'{": the disk is full" if full else ""} ({type(error).__name__}: {error}). '
            f'The checkpoints saved before it ({saved or "none"}) are intact; '
            f'{"free some space, then " if full else ""}run the same command to resume '
            f'from {resume}.'
        )

    def restore(self, step, abstract_state):
        """Returns the state saved at ``step``.

        ``abstract_state`` (``jax.ShapeDtypeStruct`` leaves with shardings) gives
        the structure, dtypes and placement to restore into.
        """
        try:
            restored = self._manager.restore(
                int(step), args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state))
            )
        except Exception as e:  # Orbax raises many types; all mean the same here.
            raise CheckpointError(
                f'The checkpoint of step {step} in {self.directory} could not be read '
                f'({type(e).__name__}: {e}). Nothing was deleted. To resume from an '
                f'earlier checkpoint, move the folder of step {step} out of '
                f'{self.directory}; to start afresh, use another --workdir.'
            ) from e
        return restored['state']

    def restore_newest_readable(self, abstract_state):
        """(state, step) of the newest checkpoint that reads, or (None, None) without any.

        Newer checkpoints that cannot be read are moved to ``<directory>_unreadable/``
        (never deleted) and logged, so an unattended run continues from the last good
        one. If none can be read, nothing is moved and CheckpointError names them all.
        """
        unreadable = []
        for step in reversed(self.all_steps()):
            try:
                state = self.restore(step, abstract_state)
            except CheckpointError as error:
                unreadable.append((step, error))
                continue
            for bad_step, error in unreadable:
                aside = self._move_aside(bad_step)
                logging.error(
                    'Checkpoint %d could not be read (%s); moved to %s and resuming from step %d.',
                    bad_step,
                    error.__cause__,
                    aside,
                    step,
                )
            return state, step
        if unreadable:
            steps = [step for step, _ in unreadable]
            raise CheckpointError(
                f'No checkpoint in {self.directory} can be read (steps {steps}): {unreadable[0][1]}'
            ) from unreadable[0][1]
        return None, None

    def _move_aside(self, step):
        """Moves checkpoint ``step`` out of the manager's folder; returns where it went."""
        aside = os.path.join(f'{self.directory}_unreadable', f'{step}-{int(time.time())}')
        if jax.process_index() == 0:
            os.makedirs(os.path.dirname(aside), exist_ok=True)
            shutil.move(os.path.join(self.directory, str(step)), aside)
        multihost_utils.sync_global_devices(f'moved checkpoint {step} aside')
        self._manager.reload()
        return aside

    def wait(self):
        """Blocks until pending asynchronous saves are on disk; CheckpointSaveError if one
        failed."""
        try:
            self._manager.wait_until_finished()
        except Exception as error:
            raise self._save_failed(self._pending, error) from error
        self._pending = None

    def close(self):
        """``wait``, then releases the folder (also when the wait raises)."""
        try:
            self.wait()
        finally:
            try:
                self._manager.close()
            except Exception as error:  # The failed save again, raised by wait above.
                logging.warning('Closing the checkpoints in %s: %s', self.directory, error)


def abstract_state(init_state, mesh):
    """The restore target for a state built by ``init_state``, without computing it."""
    sharding = parallel.replicated(mesh)
    return jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding),
        jax.eval_shape(init_state),
    )


class BestCheckpoint:
    """The state with the best value of one metric so far, kept beside the latest ones.

    ``<workdir>/checkpoints_best`` holds that one checkpoint and ``best.json`` its metric,
    value, step and evaluation protocol (with its key), so a resumed run keeps comparing
    against it. Only values of the same metric under the same protocol are compared: a
    record of another metric or protocol (``eval.*`` changed on resume) is set aside, with
    its checkpoint, under a name carrying its protocol key (never deleted), and the best
    starts again. So does a record whose own checkpoint never reached the disk (its save
    was abandoned or failed): the next evaluation's value becomes the best and replaces
    both. A NaN value is never the best.
    """

    def __init__(self, workdir, metric, larger_is_better, protocol, protocol_key):
        self.metric, self._larger = metric, larger_is_better
        self._protocol, self._key = protocol, protocol_key
        self._record = os.path.join(workdir, 'best.json')
        self.value = None
        folder = os.path.join(workdir, 'checkpoints_best')
        record = None
        if os.path.exists(self._record):
            with open(self._record) as f:
                record = json.load(f)
        if record is not None:
            comparable = record['metric'] == metric and record.get('protocol_key') == protocol_key
            if comparable and not math.isnan(record['value']):
                self.value = record['value']
            elif not comparable:
                parallel.run_on_process_zero(lambda: self._set_aside(record, folder))
        self.checkpointer = Checkpointer(folder, keep=1, owner=True)
        saved = self.checkpointer.all_steps()
        if self.value is not None and record['step'] not in saved:
            logging.warning(
                'best.json names step %d (%s %s), but %s holds %s: that save never finished. '
                'The best restarts; the next evaluation replaces both.',
                record['step'],
                metric,
                record['value'],
                folder,
                saved or 'no checkpoint',
            )
            self.value = None

    def _set_aside(self, record, folder):
        """Renames best.json and checkpoints_best to names carrying the record's key."""
        tag = record.get('protocol_key', 'unkeyed')
        stem, k = f'-{record["metric"]}-{tag}', 1
        while os.path.exists(self._record[: -len('.json')] + stem + '.json'):
            k += 1
            stem = f'-{record["metric"]}-{tag}-{k}'
        os.replace(self._record, self._record[: -len('.json')] + stem + '.json')
        if os.path.exists(folder):
            os.replace(folder, folder + stem)
        logging.warning(
            'best.json holds %s under another evaluation protocol or metric than this run '
            '(%s, key %s); set aside as best%s.json and checkpoints_best%s; the best restarts.',
            record['metric'],
            self.metric,
            self._key,
            stem,
            stem,
        )

    def update(self, step, state, metrics):
        """Saves ``state`` if ``metrics[self.metric]`` beats the best so far (NaN never does)."""
        value = metrics[self.metric]
        if math.isnan(value):
            logging.warning('%s is NaN at step %d: not a best.', self.metric, step)
            return False
        if self.value is not None and not (
            value > self.value if self._larger else value < self.value
        ):
            return False
        self.checkpointer.save(step, state)
        self.value = value
        if jax.process_index() == 0:
            record = {
                'metric': self.metric,
                'value': value,
                'step': int(step),
                'protocol_key': self._key,
                'protocol': self._protocol,
            }
            with open(self._record, 'w') as f:
                json.dump(record, f, indent=2)
        return True


def restore_from_run(workdir, which, init_state, mesh):
    """(state, step) of a run's checkpoint ``which``: 'latest', 'best' or a step number.

    An unknown ``which`` fails naming the checkpoints the run holds.
    """
    folder = 'checkpoints_best' if which == 'best' else 'checkpoints'
    checkpointer = Checkpointer(os.path.join(workdir, folder), keep=None)
    steps = checkpointer.all_steps()
    step = (
        steps[-1]
        if which in ('best', 'latest') and steps
        else (int(which) if str(which).isdigit() else None)
    )
    if step is None or step not in steps:
        checkpointer.close()
        raise ValueError(
            f'--step={which!r}: {workdir}/{folder} holds checkpoints {steps}; '
            f'use latest, best or one of those steps.'
        )
    state = checkpointer.restore(step, abstract_state(init_state, mesh))
    checkpointer.close()
    return state, step
