"""One run per output directory: an OS file lock held by the main process for the whole run.

The lock is `filelock`'s (flock on POSIX), so the kernel drops it when its process dies: a run
killed with SIGKILL leaves no stale lock, and the next run takes the directory over at once. The
holder writes who it is (pid, host, start time, command) beside the lock, so a refused run can say
which run holds the directory.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import sys
from pathlib import Path

from filelock import FileLock, Timeout

from si_hf import atomic
from si_hf.layout import HOLDER, LOCK, ROUNDS, STORE_MARKER, WORK

from .errors import StoreLockedError


def _holder(root: Path) -> str:
    try:
        h = json.loads((root / HOLDER).read_text())
        return f"pid {h['pid']} on {h['host']}, started {h['started']}: {h['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


class RunLock:
    """`with RunLock(output_dir):` the run owns `output_dir`; a second run fails at once, naming it."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._lock: FileLock | None = None

    def acquire(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(self.root / LOCK), timeout=0, thread_local=False)
            lock.acquire()
        except Timeout:
            raise StoreLockedError(
                f"output_dir {self.root} is in use by another si-hf run ({_holder(self.root)}); wait for it "
                "to finish, stop it, or choose another --output_dir"
            ) from None
        except OSError as e:
            raise PermissionError(f"output_dir {self.root} is not writable: {e}") from e
        self._lock = lock
        for sub in (ROUNDS, WORK):
            if (self.root / sub).exists() and not os.access(self.root / sub, os.W_OK | os.X_OK):
                self.release()
                raise PermissionError(
                    f"{self.root / sub} is not writable: this run could not publish its rounds"
                )
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
        }
        atomic.write_json(self.root / HOLDER, holder, indent=None)
        if not (self.root / STORE_MARKER).is_file():  # from now on the folder is an si-hf store
            atomic.write_json(self.root / STORE_MARKER, {"store": "si-hf", "layout": 1})

    def release(self) -> None:
        if self._lock is not None:
            (self.root / HOLDER).unlink(missing_ok=True)
            self._lock.release()
            self._lock = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
