"""One run per run folder; a lock left by a killed run does not block the next one."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from gan_jax import run_lock
from tests import helpers


def _write_owner(tmp_path, **owner):
    path = tmp_path / run_lock.LOCK_NAME
    path.write_text(json.dumps(owner))
    return path


def test_a_live_process_on_this_host_holds_the_folder(tmp_path):
    # The parent of this process is alive for as long as the test runs.
    _write_owner(tmp_path, host=socket.gethostname(), pid=os.getppid(), started=time.time())
    with pytest.raises(run_lock.RunFolderBusyError, match=f'process {os.getppid()} on'):
        run_lock.RunLock(str(tmp_path)).acquire()


def test_a_dead_process_leaves_a_stale_lock_that_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    _write_owner(tmp_path, host=socket.gethostname(), pid=dead.pid, started=time.time())
    lock = run_lock.RunLock(str(tmp_path))
    lock.acquire()
    assert json.loads((tmp_path / run_lock.LOCK_NAME).read_text())['pid'] == os.getpid()
    lock.release()
    assert not (tmp_path / run_lock.LOCK_NAME).exists()


def test_another_hosts_lock_holds_while_refreshed(tmp_path):
    path = _write_owner(tmp_path, host='elsewhere', pid=1, started=time.time())
    with pytest.raises(run_lock.RunFolderBusyError, match='on elsewhere'):
        run_lock.RunLock(str(tmp_path)).acquire()
    old = time.time() - run_lock.STALE_SECONDS - 1
    os.utime(path, (old, old))
    run_lock.RunLock(str(tmp_path)).acquire()


@pytest.mark.slow
def test_a_second_run_in_the_folder_is_refused_and_a_killed_one_is_resumed(tmp_path):
    workdir = tmp_path / 'run'
    command = [
        sys.executable,
        os.path.join(helpers.REPO, 'launch.py'),
        '--config=' + os.path.join(helpers.REPO, 'experiments', 'dcgan.py'),
        '--config.train.steps=100000',
        '--config.model.g_width=8',
        '--config.model.d_width=8',
        '--config.eval.every_steps=0',
        '--config.checkpoint.every_steps=20',
        '--config.log.every_steps=10',
        f'--workdir={workdir}',
    ]
    env = helpers.python_env()
    first = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (workdir / 'checkpoints' / '20').exists():
            assert time.time() < deadline and first.poll() is None, 'the first run did not start'
            time.sleep(0.5)
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode != 0
        assert f'in use by another run (process {first.pid} on' in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()

    # The killed run's lock is stale: the same command resumes (and is stopped by SIGTERM).
    def saved():
        return max(int(p.name) for p in (workdir / 'checkpoints').iterdir() if p.name.isdigit())

    killed_at = saved()
    third = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while saved() <= killed_at:
        assert time.time() < deadline and third.poll() is None, third.stderr.read()[-2000:]
        time.sleep(0.5)
    third.send_signal(signal.SIGTERM)
    _, err = third.communicate(timeout=120)
    assert third.returncode == 0 and 'Resumed from the checkpoint of step' in err
    assert not (workdir / run_lock.LOCK_NAME).exists()  # Released at exit.
