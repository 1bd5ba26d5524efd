"""One writer per run directory: an OS lock held for the whole life of a run or a suite.

Two processes writing one run directory (a `--resume` started while the first still runs, as
a Slurm requeue can do) interleave metrics.jsonl and race on checkpoints. `DirLock` holds
`fcntl.flock` on `<dir>/.lock` from start-up to the end of the run; a second process fails at
once with one line naming the holder (pid, host, start time), which the lock file records.

The kernel drops a flock when the process holding it ends, however it ends (kill -9
included), so a lock left by a dead process never blocks the next run: only the file stays,
and the next holder overwrites it (saying whose lock it took over). On NFS, Linux emulates
flock with byte-range locks that the server frees when a lost node stops renewing its lease
(NFSv4: 90 s by default). On a file system without locks the run goes on, with a warning.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

LOCK_FILE = ".lock"


class RunInUse(OSError):
    """Another live process holds the directory's lock."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


class DirLock:
    """`with DirLock(path):` one holder of `path` at a time across processes and hosts.

    `held=False` makes a no-op lock (the non-main ranks of a multi-process run)."""

    def __init__(self, path: str | Path, held: bool = True):
        self.path, self.held = Path(path), held
        self.fd: int | None = None
        self.created: list[Path] = []  # what the lock made (folder, file): a failed start removes it

    def acquire(self) -> "DirLock":
        if not self.held:
            return self
        lock_path = self.path / LOCK_FILE
        self.created = [p for p in (self.path, lock_path) if not p.exists()]
        self.path.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd) or "it is starting up"  # between its flock and its pwrite
                os.close(fd)
                raise RunInUse(errno.EBUSY, f"{self.path} is in use by another mathrl process ({holder}); "
                                            f"wait for it to end or stop it, then run again") from None
            except OSError as e:  # ENOLCK, EINVAL, ENOSYS: a file system without flock
                print(f"mathrl: warning: cannot lock {lock_path} ({e.strerror}); nothing stops a second "
                      f"process from writing {self.path} at the same time", file=sys.stderr)
                self.fd = fd
                return self
            try:  # the file may have been removed after we opened it (a failed start's folder)
                same = os.path.samestat(os.fstat(fd), os.stat(lock_path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read_holder(fd)
        if previous:  # a clean release empties the file: this holder died while it held the lock
            print(f"mathrl: taking over the lock of {self.path} from a process that ended without "
                  f"releasing it ({previous})", file=sys.stderr)
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        self.fd = fd
        return self

    def release(self, failed_start: bool = False) -> None:
        """Drop the lock; after a failed start, also the lock file and folder it created (a
        failed start leaves nothing behind; acquire's inode check makes removing it safe)."""
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)  # empty: released on purpose, not by a crash
        except OSError:
            pass
        if failed_start:
            for path in reversed(self.created):  # the file, then the folder if nothing else is in it
                with contextlib.suppress(OSError):
                    if path.is_dir():
                        path.rmdir()
                    else:
                        path.unlink()
        os.close(self.fd)  # closing the last descriptor releases the flock
        self.fd = None

    def __enter__(self) -> "DirLock":
        return self.acquire() if self.fd is None else self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"null")
    except (OSError, ValueError):
        return ""
    if not isinstance(holder, dict):
        return ""
    return f"pid {holder.get('pid')} on host {holder.get('host')}, started {holder.get('started')}"


def lock_run_dir(path: str | Path, accelerator) -> DirLock:
    """The run directory's lock, held by the main process; every rank gets the same outcome
    (all go on, or all raise RunInUse), so no rank waits in a collective for a rank that left."""
    lock, error = DirLock(path, held=accelerator.is_main_process), None
    try:
        lock.acquire()
    except OSError as e:  # in use, or a path that cannot be a folder
        error = e
    refused = str(error or "")
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        refused = broadcast_object_list([refused])[0]
    if refused:
        lock.release(failed_start=True)
        raise error or RunInUse(errno.EBUSY, refused)
    return lock
