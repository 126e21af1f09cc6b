"""One run per run folder: a lock file that a crashed or killed run does not leave stuck.

``<workdir>/run.lock`` holds the owner's host, process id and start time, and
its modification time is refreshed while the run lives (``refresh``). Another
run refuses the folder while the owner lives: on the same host, while its
process exists; from another host, while the lock was refreshed within
``STALE_SECONDS``. A stale lock is taken over and the takeover logged. With
several processes (one multi-host run) process 0 holds the lock for the run.
"""

import json
import os
import socket
import time

from absl import logging

LOCK_NAME = 'run.lock'
# A lock on another host counts as held while refreshed this recently.
STALE_SECONDS = 600


class RunFolderBusyError(RuntimeError):
    """Another live run holds the run folder."""


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # It exists, under another user.
    return True


def _describe(owner):
    started = time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(owner['started']))
    return f'process {owner["pid"]} on {owner["host"]}, started {started}'


class RunLock:
    """``acquire()`` or raise RunFolderBusyError; ``refresh()`` while running; ``release()``."""

    def __init__(self, workdir):
        self.path = os.path.join(workdir, LOCK_NAME)
        self.owner = {'host': socket.gethostname(), 'pid': os.getpid(), 'started': time.time()}

    def _holder(self):
        """The live owner recorded in the lock file, or None if there is none or it is stale."""
        try:
            with open(self.path) as f:
                owner = json.load(f)
            age = time.time() - os.path.getmtime(self.path)
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if owner == self.owner:
            return None
        if owner.get('host') == self.owner['host']:
            return owner if _alive(owner['pid']) else None
        return owner if age < STALE_SECONDS else None

    def acquire(self):
        holder = self._holder()
        if holder is not None:
            raise RunFolderBusyError(
                f'{os.path.dirname(self.path)} is in use by another run ({_describe(holder)}). '
                'Wait for it to finish or stop it, or use another --workdir.'
            )
        if os.path.exists(self.path):
            logging.warning('Taking over the stale lock %s (its run is gone).', self.path)
        tmp = f'{self.path}.{os.getpid()}.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.owner, f)
        os.replace(tmp, self.path)  # Atomic: the file is always whole.
        # Two runs that started together both wrote; the one whose write landed last wins.
        time.sleep(0.05)
        with open(self.path) as f:
            if json.load(f) != self.owner:
                raise RunFolderBusyError(
                    f'{os.path.dirname(self.path)} was taken by another run starting at the '
                    'same moment; use another --workdir.'
                )

    def refresh(self):
        """Marks the lock as live (for runs on other hosts that look at it)."""
        os.utime(self.path)

    def release(self):
        try:
            with open(self.path) as f:
                mine = json.load(f) == self.owner
        except (FileNotFoundError, json.JSONDecodeError):
            return
        if mine:
            os.remove(self.path)
