"""The best checkpoint: compared under one metric and protocol only, never NaN; a save on a
full disk; a save past its deadline."""

import concurrent.futures
import errno
import json
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from gan_jax import checkpoint
from tests import helpers

STATE = {'w': jnp.arange(3.0)}
PROTOCOL_A = {'num_generated': 64, 'seed': 0}
PROTOCOL_B = {'num_generated': 128, 'seed': 0}


def _best(workdir, protocol, key, metric='FID'):
    return checkpoint.BestCheckpoint(str(workdir), metric, False, protocol, key)


def _close(best):
    best.checkpointer.wait()
    best.checkpointer.close()


def _record(path):
    return json.loads(path.read_text())


def test_a_nan_value_is_never_the_best(tmp_path):
    best = _best(tmp_path, PROTOCOL_A, 'a')
    assert not best.update(1, STATE, {'FID': math.nan})
    assert not (tmp_path / 'best.json').exists()
    assert best.update(2, STATE, {'FID': 40.0})
    assert not best.update(3, STATE, {'FID': math.nan})
    assert best.update(4, STATE, {'FID': 30.0})
    _close(best)
    record = _record(tmp_path / 'best.json')
    assert (record['value'], record['step'], record['protocol']) == (30.0, 4, PROTOCOL_A)


def test_a_larger_is_better_metric_keeps_the_largest_across_a_resume(tmp_path):
    best = checkpoint.BestCheckpoint(str(tmp_path), 'IS', True, PROTOCOL_A, 'a')
    assert best.update(1, STATE, {'IS': 5.0}) and best.update(2, STATE, {'IS': 7.0})
    assert not best.update(3, STATE, {'IS': 6.0})
    _close(best)
    best = checkpoint.BestCheckpoint(str(tmp_path), 'IS', True, PROTOCOL_A, 'a')  # Resumed.
    assert best.value == 7.0 and not best.update(4, STATE, {'IS': 6.5})
    assert best.update(5, STATE, {'IS': 8.0})
    _close(best)
    assert _record(tmp_path / 'best.json')['step'] == 5
    assert [p.name for p in (tmp_path / 'checkpoints_best').iterdir()] == ['5']


def test_a_best_record_whose_save_never_finished_restarts_the_best(tmp_path):
    best = _best(tmp_path, PROTOCOL_A, 'a')
    assert best.update(1, STATE, {'FID': 30.0})
    _close(best)
    # As an abandoned save leaves it: best.json names step 2, checkpoints_best holds step 1.
    record = _record(tmp_path / 'best.json')
    (tmp_path / 'best.json').write_text(json.dumps({**record, 'value': 10.0, 'step': 2}))
    best = _best(tmp_path, PROTOCOL_A, 'a')
    # 20 is worse than the record's 10, but 10 has no checkpoint: 20 becomes the best.
    assert best.value is None and best.update(3, STATE, {'FID': 20.0})
    _close(best)
    record = _record(tmp_path / 'best.json')
    assert (record['step'], record['value']) == (3, 20.0)
    assert [p.name for p in (tmp_path / 'checkpoints_best').iterdir()] == ['3']


def test_checkpoints_beyond_keep_are_deleted_oldest_first(tmp_path):
    saver = checkpoint.Checkpointer(str(tmp_path), keep=2)
    for step in (1, 2, 3, 4):
        saver.save(step, {'w': STATE['w'] + step})
    saver.wait()
    saver.close()
    assert sorted(int(p.name) for p in tmp_path.iterdir()) == [3, 4]
    reader = checkpoint.Checkpointer(str(tmp_path), keep=None)
    np.testing.assert_array_equal(_restore(reader, 4, STATE)['w'], STATE['w'] + 4)
    reader.close()


def test_best_is_compared_only_under_the_same_protocol(tmp_path):
    best = _best(tmp_path, PROTOCOL_A, 'a')
    assert best.update(1, STATE, {'FID': 10.0})
    _close(best)
    # Resumed with the same protocol: the record holds, a worse value is not the best.
    best = _best(tmp_path, PROTOCOL_A, 'a')
    assert best.value == 10.0 and not best.update(2, STATE, {'FID': 20.0})
    _close(best)
    # Resumed with eval.* changed: 20 is the first value under this protocol, so the best;
    # the record and checkpoint of the other protocol are set aside, not deleted.
    best = _best(tmp_path, PROTOCOL_B, 'b')
    assert best.value is None and best.update(3, STATE, {'FID': 20.0})
    _close(best)
    record = _record(tmp_path / 'best.json')
    assert (record['value'], record['step'], record['protocol_key']) == (20.0, 3, 'b')
    assert _record(tmp_path / 'best-FID-a.json')['value'] == 10.0
    assert [p.name for p in (tmp_path / 'checkpoints_best-FID-a').iterdir()] == ['1']
    assert [p.name for p in (tmp_path / 'checkpoints_best').iterdir()] == ['3']
    # Another metric is another record, too.
    best = _best(tmp_path, PROTOCOL_B, 'b', metric='KID')
    assert best.value is None
    _close(best)
    assert _record(tmp_path / 'best-FID-b.json')['step'] == 3


# ---- A full disk during a save ------------------------------------------------------


def _restore(checkpointer, step, like):
    target = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), like)
    return checkpointer.restore(step, target)


def _assert_failed_save_keeps_step_1(folder, save_step_2, state):
    """Checkpoint 1 is saved, then saving 2 fails: a clear error, and 1 still restores."""
    saver = checkpoint.Checkpointer(str(folder), keep=1)  # Keep 1: 2 would replace 1.
    saver.save(1, state)
    saver.wait()
    with pytest.raises(checkpoint.CheckpointSaveError) as error:
        save_step_2(saver)
        saver.close()
    message = str(error.value)
    assert message.startswith(
        f'The checkpoint of step 2 could not be written to {folder}: the disk is full ('
    )
    assert 'The checkpoints saved before it ([1]) are intact; free some space' in message
    assert 'resume from step 1.' in message
    reader = checkpoint.Checkpointer(str(folder), keep=None)
    assert reader.all_steps() == [1]
    np.testing.assert_array_equal(_restore(reader, 1, state)['w'], state['w'])
    reader.close()


def test_a_full_tmpfs_fails_the_save_clearly_and_keeps_the_earlier_checkpoint(small_tmpfs):
    state = {'w': jnp.arange(200_000.0)}  # 800 kB: the second copy does not fit.

    def save_step_2(saver):
        helpers.fill_disk(small_tmpfs, leave_bytes=64 << 10)
        saver.save(2, {'w': state['w'] + 1})

    _assert_failed_save_keeps_step_1(small_tmpfs / 'checkpoints', save_step_2, state)


def test_a_failed_write_below_orbax_fails_the_save_clearly(tmp_path, monkeypatch):
    # Simulated where no tmpfs can be mounted: the jax.Array handler that Orbax's
    # StandardCheckpointHandler awaits for every array (the last Python layer before
    # TensorStore writes the files) fails with ENOSPC, as a full disk makes it.
    handler = ocp.type_handlers.get_type_handler(jax.Array)

    async def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def save_step_2(saver):
        monkeypatch.setattr(type(handler), 'serialize', no_space)
        saver.save(2, state)

    state = {'w': jnp.arange(3.0)}
    _assert_failed_save_keeps_step_1(tmp_path / 'checkpoints', save_step_2, state)


def test_a_full_disk_is_recognised_through_python_and_tensorstore():
    assert checkpoint.is_disk_full(OSError(errno.ENOSPC, 'No space left on device'))
    assert checkpoint.is_disk_full(OSError(errno.EDQUOT, 'Disk quota exceeded'))
    # TensorStore's error, as a full tmpfs gave it (through Orbax).
    tensorstore = ValueError(
        'RESOURCE_EXHAUSTED: Error writing local file "x/_sharding": Failed to write 13028 '
        "bytes to file 8: No space left on device [os_error_code='28']"
    )
    try:
        raise RuntimeError('save failed') from tensorstore
    except RuntimeError as wrapped:
        assert checkpoint.is_disk_full(wrapped)
    assert not checkpoint.is_disk_full(OSError(errno.EACCES, 'Permission denied'))


def _commits_outlive(monkeypatch, seconds):
    """Every later save's commit takes ``seconds`` longer: what a process paused with
    SIGSTOP mid-save (Orbax's deadline is wall-clock time) or a slow disk looks like."""
    pool = concurrent.futures.ThreadPoolExecutor(1)
    original = ocp.StandardCheckpointHandler.async_save

    async def slow_async_save(self, *args, **kwargs):
        futures = await original(self, *args, **kwargs)
        return list(futures or []) + [pool.submit(time.sleep, seconds)]

    monkeypatch.setattr(ocp.StandardCheckpointHandler, 'async_save', slow_async_save)


def test_a_save_past_its_deadline_is_abandoned_and_training_goes_on(tmp_path, monkeypatch):
    folder = tmp_path / 'checkpoints'
    saver = checkpoint.Checkpointer(str(folder), keep=None, owner=True, save_timeout_secs=1)
    saver.save(1, STATE)
    saver.wait()
    with monkeypatch.context() as patch:
        _commits_outlive(patch, 3)
        saver.save(2, {'w': STATE['w'] + 1})
        time.sleep(3.5)  # The deadline passes before the commit ends.
    saver.save(3, {'w': STATE['w'] + 2})  # Logs step 2's timeout, then saves step 3.
    saver.close()
    assert sorted(os.listdir(folder)) == ['1', '2.orbax-checkpoint-tmp', '3']
    reader = checkpoint.Checkpointer(str(folder), keep=None)
    assert reader.all_steps() == [1, 3]
    np.testing.assert_array_equal(_restore(reader, 1, STATE)['w'], STATE['w'])
    np.testing.assert_array_equal(_restore(reader, 3, STATE)['w'], STATE['w'] + 2)
    reader.close()
    # The run that owns the folder removes the abandoned save's temporary folder when it
    # resumes (Orbax starts that on opening and finishes it before the first save).
    resumed = checkpoint.Checkpointer(str(folder), keep=None, owner=True)
    resumed.save(4, STATE)
    resumed.close()
    assert sorted(os.listdir(folder)) == ['1', '3', '4']


def test_a_last_save_past_its_deadline_fails_the_close_clearly(tmp_path, monkeypatch):
    folder = tmp_path / 'checkpoints'
    saver = checkpoint.Checkpointer(str(folder), keep=None, owner=True, save_timeout_secs=1)
    saver.save(1, STATE)
    saver.wait()
    _commits_outlive(monkeypatch, 3)
    saver.save(2, STATE)
    expected = r'step 2 .*intact.*resume from step 1'
    with pytest.raises(checkpoint.CheckpointSaveError, match=expected):
        saver.close()
