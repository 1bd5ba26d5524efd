"""The SymPy tier: the worker process (timeouts, crashes, restarts, cache) and the agreement
between the in-process float probe and SymPy on every function both implement."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from mathrl.verify import compare, grade_batch, probe, symbolic
from mathrl.verify.compare import SYMBOLIC_CACHE
from mathrl.verify.parser import parse
from mathrl.verify.worker import POOL

CANCELLATION = ("10^{300}\\sqrt{2} + 1 - 10^{300}\\sqrt{2}", "1")  # floats say 0: SymPy decides


def test_inconclusive_probe_goes_to_the_worker_and_is_cached():
    SYMBOLIC_CACHE.data.clear()
    before = POOL.stats()["requests"]
    assert compare(*CANCELLATION, timeout=30) == "equal"
    assert compare(CANCELLATION[0], "2", timeout=30) == "not_equal"
    assert POOL.stats()["requests"] == before + 2
    assert compare(*CANCELLATION, timeout=30) == "equal"  # served from the LRU cache
    assert POOL.stats()["requests"] == before + 2


def test_worker_killed_from_outside_is_restarted():
    compare("10^{200}\\sqrt{3} + 2 - 10^{200}\\sqrt{3}", "2", timeout=30)  # make sure one runs
    for worker in POOL.workers:
        if worker.alive():
            worker.proc.kill()
            worker.proc.wait()
    SYMBOLIC_CACHE.data.clear()
    assert compare(*CANCELLATION, timeout=30) == "equal"


def test_worker_dying_mid_request_is_a_verdict():
    compare(*CANCELLATION, timeout=30)  # warm a worker so that the kill below hits a request
    SYMBOLIC_CACHE.data.clear()

    def kill_soon():
        time.sleep(0.3)
        for worker in POOL.workers:
            if worker.proc is not None and worker.proc.poll() is None:
                worker.proc.kill()

    killer = threading.Thread(target=kill_soon)
    killer.start()
    reason = compare("(x+1)^{3000}", "x^{3000}+1", timeout=20)
    killer.join()
    assert reason == "too_large"  # a dead worker means a resource limit was hit
    assert compare(*CANCELLATION, timeout=30) == "equal"


def test_numbers_and_import_never_touch_sympy():
    # In a fresh interpreter: importing mathrl.verify and grading numbers, fractions and even
    # most expressions must not import SymPy or start a worker.
    code = (
        "import sys\n"
        "from mathrl.verify import grade_batch, compare\n"
        "from mathrl.verify.worker import POOL\n"
        "gs = grade_batch(['#### 18', '\\\\boxed{0.5}', 'The answer is 1,000.'], ['18', '1/2', '1000'])\n"
        "assert all(g.correct for g in gs), gs\n"
        "assert compare('\\\\frac{\\\\sqrt3}{3}', '1/\\\\sqrt3') == 'equal'\n"
        "assert 'sympy' not in sys.modules and POOL.stats()['requests'] == 0\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_grade_batch_matches_single_grades():
    completions = ["#### 18", "#### 17", "\\boxed{x+1}", "nothing", "#### 18"]
    golds = ["18", "18", "1+x", "3", "18"]
    batch = grade_batch(completions, golds)
    from mathrl.verify import grade

    assert batch == [grade(c, g) for c, g in zip(completions, golds)]
    assert [g.correct for g in batch] == [True, False, True, False, True]
    with pytest.raises(ValueError, match="completions for"):
        grade_batch(["a"], [])


# Every function both tiers implement, at points inside and outside the usual domains.
FUNCTION_CASES = [
    "\\sin x", "\\cos x", "\\tan x", "\\cot x", "\\sec x", "\\csc x", "\\arcsin(x/3)", "\\arccos(x/3)",
    "\\arctan x", "\\sinh x", "\\cosh x", "\\tanh x", "\\exp(x)", "\\log(x)", "\\ln x", "\\log_2 x",
    "\\sqrt{x}", "\\sqrt[3]{x}", "\\sqrt[3]{-8}", "|x|", "\\lfloor x \\rfloor", "\\lceil x \\rceil",
    "\\binom{7}{3}", "5!", "x^{1/2}", "(-8)^{1/3}", "x^x", "e^{i x}", "\\frac{1}{x}", "i x^2",
]


@pytest.mark.parametrize("latex", FUNCTION_CASES)
def test_probe_and_sympy_agree_on_every_function(latex):
    import sympy as sp

    tree = parse(latex)
    for x in (-1.7, -0.4, 0.6, 2.3):
        point = {"x": complex(x)}
        try:
            fast = probe._Evaluator(point)(tree)
        except probe._Undefined:
            continue
        slow = complex(symbolic.build(tree).evalf(30, subs={sp.Symbol("x"): sp.Rational(str(x))}))
        assert abs(fast - slow) <= 1e-9 * max(1.0, abs(slow)), (latex, x, fast, slow)


@pytest.mark.slow
def test_worker_exits_when_its_parent_is_killed(tmp_path):
    # A SIGKILLed trainer must not leave a SymPy process behind, even one busy simplifying.
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys\n"
        "from mathrl.verify import compare\n"
        "from mathrl.verify.worker import POOL\n"
        "compare('10^{300}\\\\sqrt{2} + 1 - 10^{300}\\\\sqrt{2}', '1', timeout=60)\n"
        "print(*[w.proc.pid for w in POOL.workers if w.proc], flush=True)\n"
        "compare('(x+1)^{3000}', 'x^{3000}+1', timeout=600)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert pids
    time.sleep(0.5)  # the worker is now inside the slow simplify
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie (exited, not yet reaped) counts as gone
        return f.read().split()[2] != "Z"
