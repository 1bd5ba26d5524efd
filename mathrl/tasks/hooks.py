"""Grader hooks (`grader: {hook: file.py:function}`): a task's own verifier, run isolated.

The hook is called as `function(completion, answer, problem)`: the raw completion, the answer
the task's extractor found in it (None when none), and the problem as a dict (id, question,
gold, meta). It returns a verdict: True / False, a score in [0, 1], (verdict, reason), or a
mapping {"score" or "correct", "reason", "answer"} (the answer it read, if not the extractor's).
Correct means a full score; the reward uses the score (mathrl/reward.py).

A hook reads model output, which is hostile input, so it runs under the answer checker's
protection (mathrl/verify/worker.py): persistent worker processes with an address-space limit;
a call past the task's `grader.timeout` gets its worker killed (SIGKILL) and costs one verdict
("timeout"); a hook that raises, returns something else or kills its worker costs one verdict
("error: ..."). None of these stops a run. A hook file that cannot be imported stops it with
one line, since then every verdict would be wrong. Hooks parse model text with
mathrl.verify.expression, never with eval, sympify or parse_expr.

The worker side is this module's `serve()`: python -m mathrl.tasks.hooks FILE FUNCTION.
"""

from __future__ import annotations

import ast
import atexit
import json
import math
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mathrl.tasks.spec import TaskSpecError, hook_path
from mathrl.types import Grade, Problem

WORKERS = int(os.environ.get("MATHRL_HOOK_WORKERS", "2"))  # processes per hook


class HookError(TaskSpecError):
    """The hook cannot run at all (its file does not import); stops the run."""


def hook_target(ref: str, base_dir: Path, where: str, field: str = "grader.hook") -> tuple[Path, str]:
    """(file, function) of `file.py:function`, checked without running the file (that happens
    in the workers): it exists, parses, and binds `function` at its top level."""
    path, func = hook_path(ref, base_dir, where, field)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except OSError as e:
        raise TaskSpecError(f"{where}: field '{field}': cannot read {path} ({e.strerror})") from None
    except SyntaxError as e:
        raise TaskSpecError(f"{where}: field '{field}': {path.name} line {e.lineno}: "
                            f"{e.msg}") from None
    bound = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    if func not in bound:
        raise TaskSpecError(f"{where}: field '{field}': {path.name} defines no {func!r}")
    return path, func


# ---- the trainer's side -----------------------------------------------------------------------

_POOLS: dict = {}  # (file, function) -> verify.worker.Pool
_LOCK = threading.Lock()


def _pool(path: Path, func: str):
    from mathrl.verify.worker import Pool

    with _LOCK:
        key = (str(path), func)
        if key not in _POOLS:
            _POOLS[key] = Pool(WORKERS, (sys.executable, "-m", "mathrl.tasks.hooks", *key))
        return _POOLS[key]


@atexit.register
def _close_pools() -> None:
    for pool in _POOLS.values():
        pool.close()


def problem_record(problem: Problem) -> dict:
    """What a hook sees of a problem; JSON-safe (it crosses a pipe), odd meta values as str."""
    return json.loads(json.dumps({"id": problem.id, "question": problem.question,
                                  "gold": problem.gold, "meta": problem.meta}, default=str))


def run_hook(path: Path, func: str, completions: list[str], answers: list[str | None],
             problems: list[Problem], timeout: float) -> list[Grade]:
    """One Grade per completion; repeated (completion, problem) pairs are graded once."""
    from mathrl.verify.worker import WorkerCrashed, WorkerTimeout

    pool = _pool(path, func)
    records = [problem_record(p) for p in problems]

    def one(i: int) -> Grade:
        request = {"completion": completions[i], "answer": answers[i], "problem": records[i]}
        try:
            reply = pool.request(request, timeout)
        except WorkerTimeout:
            return Grade(False, answers[i], "timeout", 0.0)
        except WorkerCrashed:
            return Grade(False, answers[i], "error: the hook's worker died (memory limit?)", 0.0)
        if "fatal" in reply:
            raise HookError(f"grader hook {path.name}:{func} cannot run: {reply['fatal']}")
        return Grade(reply["score"] >= 1.0, reply.get("answer", answers[i]), reply["reason"],
                     reply["score"])

    keys = [(c, json.dumps(r, sort_keys=True)) for c, r in zip(completions, records)]
    index: dict[tuple, int] = {}
    for i, key in enumerate(keys):
        index.setdefault(key, i)
    first = list(index)
    if len(first) < 2 or pool.size < 2:
        grades = [one(index[k]) for k in first]
    else:
        with ThreadPoolExecutor(max_workers=pool.size) as threads:
            grades = list(threads.map(lambda k: one(index[k]), first))
    seen = dict(zip(first, grades))
    return [seen[k] for k in keys]


# ---- the worker's side ------------------------------------------------------------------------

def verdict(result) -> dict:
    """A hook's return value -> {"score", "reason"[, "answer"]}; anything else is an error
    verdict. A mapping may name the answer the hook read, when it is not the extractor's."""
    reason, answer = None, None
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str):
        result, reason = result
    elif isinstance(result, dict) and set(result) <= {"score", "correct", "reason", "answer"}:
        reason, answer = result.get("reason"), result.get("answer")
        result = result.get("score", result.get("correct"))
        if not (reason is None or isinstance(reason, str)) or \
                not (answer is None or isinstance(answer, str)):
            return {"score": 0.0, "reason": "error: 'reason' and 'answer' must be strings"}
    if hasattr(result, "item") and not isinstance(result, (bool, int, float)):
        result = result.item()  # numpy / torch scalars
    if isinstance(result, bool):
        score = float(result)
    elif isinstance(result, (int, float)) and math.isfinite(result) and 0 <= result <= 1:
        score = float(result)
    else:
        return {"score": 0.0, "reason": f"error: the hook returned {result!r:.80}; expected "
                                        f"True/False, a score in [0, 1] or (score, reason)"}
    default = "equal" if score == 1.0 else "not_equal" if score == 0.0 else "partial"
    out = {"score": score, "reason": (reason or default)[:200]}
    return out if answer is None else {**out, "answer": answer[:2000]}


def serve(file: str, func: str) -> None:
    """Import the hook, say ready, then answer one JSON request per line until stdin closes."""
    import importlib.util
    import traceback

    from mathrl.verify.worker import confine_worker

    confine_worker()
    sys.path.insert(0, str(Path(file).parent))  # the hook may import modules beside it
    fn, fatal = None, None
    try:
        spec = importlib.util.spec_from_file_location(f"mathrl_grader_hook_{Path(file).stem}", file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        fn = getattr(module, func)
        if not callable(fn):
            fatal = f"{func!r} in {Path(file).name} is not a function"
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which stops the run
        fatal = "".join(traceback.format_exception_only(type(e), e)).strip()[:300]
    out = sys.stdout.buffer
    out.write(b'{"ready": true}\n')  # also when the import failed: each request reports it
    out.flush()
    for line in sys.stdin.buffer:
        if fatal is not None:
            reply = {"fatal": fatal}
        else:
            try:
                request = json.loads(line)
                reply = verdict(fn(request["completion"], request["answer"], request["problem"]))
            except Exception as e:  # noqa: BLE001 - a hook that raises costs one verdict
                reply = {"score": 0.0, "reason": f"error: {type(e).__name__}: {e}"[:200]}
        out.write(json.dumps(reply).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
