"""Two local processes (jax.distributed over gloo CPU collectives) train as one."""

import json
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests import helpers


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _start_two_processes(tmp_path, overrides):
    """Two processes of one run in tmp_path/run, each dumping its weights to p<i>.npz."""
    coordinator = f'127.0.0.1:{_free_port()}'
    return [
        subprocess.Popen(
            [
                sys.executable,
                helpers.TRAIN_AND_DUMP,
                '--workdir',
                str(tmp_path / 'run'),
                '--out',
                str(tmp_path / f'p{i}.npz'),
                '--overrides',
                json.dumps(overrides),
                '--coordinator',
                coordinator,
                '--num_processes',
                '2',
                '--process_id',
                str(i),
            ],
            env=helpers.python_env(devices=1),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]


@pytest.mark.slow
def test_two_processes_end_with_identical_params(tmp_path):
    overrides = {'train.steps': 3, 'log.sample_every_steps': 3, 'checkpoint.every_steps': 3}
    for proc in _start_two_processes(tmp_path, overrides):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-4000:]
    p0, p1 = (dict(np.load(tmp_path / f'p{i}.npz')) for i in range(2))
    assert helpers.max_abs_diff(p0, p1) == 0.0
    # The same run on one process with two devices: same global batch, same data
    # order, same latents, so the same weights up to reduction order.
    single = helpers.train_in_subprocess(
        tmp_path / 'single', tmp_path / 'single.npz', overrides, devices=2
    )
    assert helpers.max_abs_diff(p0, single) < 1e-5
    # The checkpoint holds the train state only (the data position is the step), so
    # the 2-process run continues on one process with two devices as if uninterrupted.
    step_dir = tmp_path / 'run' / 'checkpoints' / '3'
    assert sorted(p.name for p in step_dir.iterdir() if p.is_dir()) == ['state']
    longer = {**overrides, 'train.steps': 6, 'checkpoint.every_steps': 6}
    resumed = helpers.train_in_subprocess(
        tmp_path / 'run', tmp_path / 'resumed.npz', longer, devices=2
    )
    straight = helpers.train_in_subprocess(
        tmp_path / 'straight', tmp_path / 'straight.npz', longer, devices=2
    )
    assert helpers.max_abs_diff(resumed, straight) < 1e-5
    # Resuming with another experiment's config: both processes stop with the error
    # (process 0 checks the config; the other must not go on into a collective alone).
    changed = {**overrides, 'optim.g_lr': 1e-3}
    for proc in _start_two_processes(tmp_path, changed):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode != 0 and 'different config' in err, err[-4000:]
