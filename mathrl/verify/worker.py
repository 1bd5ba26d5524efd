"""Persistent SymPy worker processes with a hard wall-clock limit that works in any thread.

Why a process: SymPy's simplify has no time bound, and `signal.alarm` only works in the main
thread of the main process (a trainer's reward thread got "timeout" for every sample). A
child process can always be killed. Why persistent: starting Python + SymPy costs ~1 s, a
request costs milliseconds. Why `subprocess` rather than `multiprocessing`: spawn re-imports
the caller's `__main__` (scripts without a main guard recurse) and fork copies a trainer with
CUDA state; `python -m mathrl.verify.symbolic` is neither.

Protocol: one JSON line per request (two trees, rel_tol, approximate), one JSON line back.
A late reply gets the process killed (SIGKILL) and the call raises WorkerTimeout; a
replacement is started at once and imports SymPy in the background. Neither that startup nor
waiting for a free worker counts against the limit, only the comparison does, so a call takes
at most timeout + (startup, when no worker is ready) + (queueing, when all are busy).
POSIX only (select on a pipe).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

MEMORY_LIMIT = 3 << 30  # bytes of address space per worker: a memory bomb dies there, not in the trainer
STARTUP_TIMEOUT = 120.0  # seconds to import SymPy in a fresh process (slow on a busy machine)
POOL_SIZE = int(os.environ.get("MATHRL_VERIFY_WORKERS", "2"))
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the directory holding `mathrl/`


class WorkerTimeout(Exception):
    """The comparison did not finish within its limit; the worker was killed."""


class WorkerCrashed(Exception):
    """The worker died mid-request (e.g. it hit its memory limit)."""


COMMAND = (sys.executable, "-m", "mathrl.verify.symbolic")  # the child: python -m mathrl.verify.symbolic


class Worker:
    """One child process. Not thread-safe on its own: the Pool hands it to one thread at a time."""

    def __init__(self, command: tuple[str, ...] = COMMAND) -> None:
        self.command = list(command)  # tests put a stand-in with injected slow and crashing inputs here
        self.proc: subprocess.Popen | None = None
        self.owner_pid = 0
        self.buffer = b""
        self.ready = False  # the child has imported SymPy and said so
        self.restarts = 0  # processes started after the first (timeouts, crashes)

    def spawn(self) -> None:
        """Start the child without waiting: it imports SymPy while the caller goes on."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        self.restarts += self.owner_pid != 0
        self.proc = subprocess.Popen(
            self.command, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, close_fds=True,
            start_new_session=True)  # Ctrl-C in a terminal goes to the parent, not to us
        self.owner_pid = os.getpid()
        self.buffer = b""
        self.ready = False

    def wait_ready(self) -> None:
        try:
            self.read_line(time.monotonic() + STARTUP_TIMEOUT)
            self.ready = True
        except (WorkerTimeout, WorkerCrashed):
            self.kill()  # a broken install, not a bad answer: fail loudly
            raise RuntimeError(f"the SymPy worker ({' '.join(self.command)}) "
                               f"did not start within {STARTUP_TIMEOUT:.0f} s") from None

    def alive(self) -> bool:
        if self.proc is not None and self.owner_pid != os.getpid():
            self.proc = None  # inherited through fork: that process belongs to our parent
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.owner_pid == os.getpid():
            self.proc.kill()
            self.proc.wait()
            for pipe in (self.proc.stdin, self.proc.stdout):
                pipe.close()
        self.proc = None

    def read_line(self, deadline: float) -> bytes:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise WorkerTimeout()
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise WorkerCrashed("the SymPy worker exited")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def request(self, payload: dict, timeout: float) -> dict:
        if not self.alive():
            self.spawn()
        if not self.ready:  # startup is not part of the comparison's time limit
            self.wait_ready()
        try:
            self.proc.stdin.write(json.dumps(payload).encode() + b"\n")
            self.proc.stdin.flush()
            return json.loads(self.read_line(time.monotonic() + timeout))
        except (WorkerTimeout, WorkerCrashed, BrokenPipeError, OSError, ValueError) as e:
            self.kill()
            self.spawn()  # the replacement imports SymPy now, not during the next request
            if isinstance(e, WorkerTimeout):
                raise
            raise WorkerCrashed(str(e)) from None


class Pool:
    """A few lazily started workers shared by all threads of this process. grade_batch sends
    its distinct comparisons from `size` threads, so slow ones run side by side."""

    def __init__(self, size: int = POOL_SIZE, command: tuple[str, ...] = COMMAND) -> None:
        self.workers = [Worker(command) for _ in range(max(1, size))]
        self.size = len(self.workers)
        self.free = list(self.workers)
        self.cond = threading.Condition()
        self.requests = 0

    def request(self, payload: dict, timeout: float) -> dict:
        if timeout <= 0:
            raise WorkerTimeout()
        with self.cond:
            while not self.free:
                self.cond.wait()
            worker = self.free.pop()
            self.requests += 1
        try:
            return worker.request(payload, timeout)
        finally:
            with self.cond:
                self.free.append(worker)
                self.cond.notify()

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()

    def stats(self) -> dict:
        return {"requests": self.requests, "restarts": sum(w.restarts for w in self.workers),
                "alive": sum(w.alive() for w in self.workers)}


POOL = Pool()
atexit.register(POOL.close)


def confine_worker() -> None:
    """Called first in a worker process (the SymPy one, a task's grader hook): cap its address
    space, and exit when the parent dies; a killed parent closes our stdin, but a long
    computation would not notice, so a thread polls."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, resource.RLIM_INFINITY))
    except (ImportError, ValueError, OSError):  # not POSIX, or a lower hard limit: keep it
        pass
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
