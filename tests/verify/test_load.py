"""The verifier under load (issue 17): hostile completions in a batch cost about their time
limits spread over the workers, not their sum on one; dead workers are replaced; a large batch
with slow and crashing inputs among it finishes.

SymPy is replaced by a stand-in worker speaking the same protocol, so that "slow" and "crash"
are injected exactly: a request whose answer holds 7771 never returns (the parent must kill
it), one holding 6661 makes the process exit, any other is answered "equal" at once. Every
answer below is a cancellation (`10^{300}\\sqrt{2} + k - 10^{300}\\sqrt{2}` against `k`) that
floats cannot decide, so each one really goes through the pool. Each request is logged with
its start and end times, which shows whether slow requests ran side by side.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from mathrl.verify import grade_batch
from mathrl.verify.compare import SYMBOLIC_CACHE
from mathrl.verify.worker import Pool

STAND_IN = r"""
import json, os, sys, time
log = sys.argv[1]
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    text, kind = line, "slow" if "7771" in line else "crash" if "6661" in line else "ok"
    with open(log, "a") as f:
        f.write(f"{kind} {os.getpid()} {time.monotonic()}\n")
    if "7771" in text:
        time.sleep(3600)
    if "6661" in text:
        os._exit(3)
    print(json.dumps({"equal": True}), flush=True)
"""

SLOW, CRASH = "7771", "6661"


def answer(k: str) -> str:
    return f"\\boxed{{10^{{300}}\\sqrt{{2}} + {k} - 10^{{300}}\\sqrt{{2}}}}"


@pytest.fixture
def pool(tmp_path, monkeypatch):
    (tmp_path / "stand_in.py").write_text(STAND_IN)
    log = tmp_path / "requests.log"
    log.touch()
    fake = Pool(2, command=(sys.executable, str(tmp_path / "stand_in.py"), str(log)))
    fake.log = log
    for module in ("mathrl.verify.compare", "mathrl.verify.grade"):  # the modules, not the functions of that name
        monkeypatch.setattr(sys.modules[module], "POOL", fake)
    SYMBOLIC_CACHE.data.clear()
    yield fake
    fake.close()
    SYMBOLIC_CACHE.data.clear()


def request_starts(log: Path, kind: str) -> list[float]:
    return sorted(float(t) for k, _, t in (line.split() for line in log.read_text().splitlines()) if k == kind)


def test_slow_completions_run_side_by_side_on_the_workers(pool):
    limit, n_slow = 2.0, 4
    for w in pool.workers:  # start both workers before timing: startup does not count against limits
        w.spawn()
        w.wait_ready()
    completions = [answer(f"{SLOW}{i}") for i in range(n_slow)] + [answer(str(i)) for i in range(4)]
    golds = [f"{SLOW}{i}" for i in range(n_slow)] + [str(i) for i in range(4)]
    start = time.monotonic()
    grades = grade_batch(completions, golds, timeout=limit)
    elapsed = time.monotonic() - start
    assert [g.reason for g in grades] == ["timeout"] * n_slow + ["equal"] * 4
    assert pool.stats()["restarts"] == n_slow  # each slow one was killed and its worker replaced
    # two workers: the slow requests run in pairs (one worker would start them a limit apart)
    starts = request_starts(pool.log, "slow")
    assert len(starts) == n_slow and starts[1] - starts[0] < limit and starts[3] - starts[2] < limit, starts
    print(f"\n{n_slow} slow answers at a {limit} s limit, 2 workers: {elapsed:.1f} s")


def test_workers_that_die_are_replaced_and_the_batch_is_graded(pool):
    completions = [answer(CRASH + str(i)) for i in range(3)] + [answer(str(i)) for i in range(5)]
    golds = [CRASH + str(i) for i in range(3)] + [str(i) for i in range(5)]
    grades = grade_batch(completions, golds, timeout=30)
    assert [g.reason for g in grades] == ["too_large"] * 3 + ["equal"] * 5  # a dead worker: a resource limit
    assert pool.stats()["restarts"] >= 3 and pool.stats()["alive"] >= 1


@pytest.mark.slow
def test_ten_thousand_completions_with_slow_and_crashing_ones_never_hang(pool):
    n = 10_000
    kinds = [SLOW if i % 1000 == 7 else CRASH if i % 1000 == 9 else "" for i in range(n)]  # 10 of each
    completions = [answer(f"{k}{i}") for i, k in enumerate(kinds)]
    golds = [f"{k}{i}" for i, k in enumerate(kinds)]
    result: list = []
    worker = threading.Thread(target=lambda: result.append(grade_batch(completions, golds, timeout=1.0)), daemon=True)
    start = time.monotonic()
    worker.start()
    worker.join(timeout=900)
    assert result, f"grading {n} completions did not finish in {time.monotonic() - start:.0f} s"
    reasons = [g.reason for g in result[0]]
    slow = [SLOW in g for g in golds]  # the injected ten, and a plain number that happens to hold 7771
    crash = [CRASH in g and not s for g, s in zip(golds, slow)]
    assert reasons == ["timeout" if s else "too_large" if c else "equal" for s, c in zip(slow, crash)]
    print(f"\n{n} completions ({sum(slow)} slow, {sum(crash)} crashing) graded with 2 workers in "
          f"{time.monotonic() - start:.1f} s, "
          f"{pool.stats()['restarts']} worker restarts")
