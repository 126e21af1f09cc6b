"""Two local processes (jax.distributed over gloo CPU collectives) train as one."""

import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests import helpers


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _start(tmp_path, workdir, out, overrides, processes):
    """One run in ``workdir`` on ``processes`` processes of 4 // processes CPU devices each
    (4 devices in all); process i dumps its final weights to <out>.p<i>.npz and its output
    to <out>.p<i>.log (a file: a pipe nobody reads would stall it)."""
    coordinator = f'127.0.0.1:{_free_port()}'
    procs = []
    for i in range(processes):
        distributed = ['--coordinator', coordinator, '--num_processes', str(processes)]
        command = [
            sys.executable,
            helpers.TRAIN_AND_DUMP,
            '--workdir',
            str(workdir),
            '--out',
            str(tmp_path / f'{out}.p{i}.npz'),
            '--overrides',
            json.dumps(overrides),
            *(distributed + ['--process_id', str(i)] if processes > 1 else []),
        ]
        log_path = tmp_path / f'{out}.p{i}.log'
        with open(log_path, 'w') as log:
            proc = subprocess.Popen(
                command,
                env=helpers.python_env(devices=4 // processes),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        proc.log_path = log_path
        procs.append(proc)
    return procs


def _log(proc):
    """The output of a process started by ``_start``."""
    return proc.log_path.read_text()


def _finish(procs, timeout=300):
    """Waits for a run's processes; asserts they succeeded."""
    for proc in procs:
        proc.wait(timeout=timeout)
        log = _log(proc)
        assert proc.returncode == 0, log[-4000:]


def _run(tmp_path, workdir, out, overrides, processes):
    """Trains to the end on ``processes`` processes; returns process 0's final weights
    (after checking that every process ended with the same)."""
    _finish(_start(tmp_path, workdir, out, overrides, processes))
    weights = [dict(np.load(tmp_path / f'{out}.p{i}.npz')) for i in range(processes)]
    assert all(helpers.max_abs_diff(weights[0], w) == 0.0 for w in weights[1:])
    return weights[0]


# Float32 reduction order (across processes over gloo, or within one) over a few steps.
TOLERANCE = 1e-5


@pytest.mark.slow
@pytest.mark.heavy  # CI's 20 minutes: 81-135 s here.
def test_a_run_resumes_on_another_number_of_processes(tmp_path):
    """2 processes x 2 devices and 1 process x 4 devices: same global batch, data order,
    latents and per-device BatchNorm batches, so the same weights up to reduction order.
    The checkpoint holds the train state only (the data position is the step), so either
    shape continues the other's run as if uninterrupted."""
    overrides = {'train.steps': 6, 'log.sample_every_steps': 6, 'checkpoint.every_steps': 2}
    straight = _run(tmp_path, tmp_path / 'straight', 'straight', overrides, processes=1)
    # 1 -> 2: the one-process run as it was at step 2, continued on two processes.
    run = tmp_path / 'run'
    shutil.copytree(tmp_path / 'straight', run)
    for step in (4, 6):
        shutil.rmtree(run / 'checkpoints' / str(step))
    resumed = _run(tmp_path, run, 'one_then_two', overrides, processes=2)
    assert helpers.max_abs_diff(resumed, straight) < TOLERANCE
    # 2 -> 1: the two processes' checkpoint of step 4 continued on one process.
    step_dir = run / 'checkpoints' / '4'
    assert sorted(p.name for p in step_dir.iterdir() if p.is_dir()) == ['state']
    shutil.rmtree(run / 'checkpoints' / '6')
    resumed = _run(tmp_path, run, 'two_then_one', overrides, processes=1)
    assert helpers.max_abs_diff(resumed, straight) < TOLERANCE
    # Resuming with another experiment's config: both processes stop with the error
    # (process 0 checks the config; the other must not go on into a collective alone).
    changed = {**overrides, 'optim.g_lr': 1e-3}
    for proc in _start(tmp_path, run, 'changed', changed, processes=2):
        proc.wait(timeout=120)
        log = _log(proc)
        assert proc.returncode != 0 and 'different config' in log, log[-4000:]


def _newest_checkpoint(workdir):
    """The newest finished checkpoint's step (Orbax renames a finished save to its step)."""
    folder = workdir / 'checkpoints'
    steps = [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
    return max(steps, default=0)


@pytest.mark.heavy
@pytest.mark.slow
def test_a_run_killed_at_random_moments_resumes_on_any_number_of_processes(tmp_path):
    """SIGKILL (the whole run, as a pre-empted pool) at seeded random moments, each time
    after a new checkpoint and up to a step later, alternating 2 and 1 processes; the run
    ends with the weights of an uninterrupted one. With gradient accumulation, whose
    micro-batches the pipeline lays out per device (data/pipeline.py)."""
    steps = 16
    overrides = {
        'train.steps': steps,
        'train.batch_size': 16,
        'train.grad_accum': 2,
        'log.every_steps': 1,
        'log.sample_every_steps': steps,
        'checkpoint.every_steps': 1,
    }
    straight = _run(tmp_path, tmp_path / 'straight', 'straight', overrides, processes=1)
    rng = random.Random(0)
    workdir, kills, attempt = tmp_path / 'run', [], 0
    while True:
        processes = 2 if attempt % 2 == 0 else 1
        out = f'attempt{attempt}'
        procs = _start(tmp_path, workdir, out, overrides, processes)
        if len(kills) == 3:  # The last attempt runs to the end.
            _finish(procs)
            break
        start, deadline = _newest_checkpoint(workdir), time.time() + 300
        while _newest_checkpoint(workdir) <= start and procs[0].poll() is None:
            assert time.time() < deadline, _log(procs[0])[-4000:]
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.3))
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
        codes, logs = [proc.wait() for proc in procs], [_log(proc) for proc in procs]
        if codes == [0] * processes:  # It finished before the signal.
            break
        assert codes == [-signal.SIGKILL] * processes, [log[-4000:] for log in logs]
        kills.append((processes, start, _newest_checkpoint(workdir)))
        attempt += 1
    assert len(kills) >= 2 and _newest_checkpoint(workdir) == steps, kills
    final = dict(np.load(tmp_path / f'{out}.p0.npz'))
    assert helpers.max_abs_diff(final, straight) < TOLERANCE, kills
