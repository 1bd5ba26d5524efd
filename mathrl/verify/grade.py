"""The public verdicts: grade one completion, grade a batch, compare two answers.

A verdict is always a Grade, never an exception or a hang: a missing answer, an unparsable
one, one too large to evaluate and a symbolic comparison that ran out of time are reasons
("no_answer", "unparsable", "too_large", "timeout"), all scored as incorrect.
Unknown extractor / mode names are programming errors and raise ValueError.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from mathrl.types import Grade
from mathrl.verify.extract import EXTRACTORS
from mathrl.verify.modes import MODES, Options
from mathrl.verify.worker import POOL


def _lookup(registry: dict, name: str, what: str) -> Callable:
    if name not in registry:
        raise ValueError(f"unknown {what} {name!r}; choose from {sorted(registry)}")
    return registry[name]


def grade(completion: str, gold: str, extractor: str = "auto", mode: str = "math",
          rel_tol: float = 1e-6, timeout: float = 2.0, percent_as_fraction: bool = False) -> Grade:
    """Extract the final answer from `completion` and compare it with `gold` (already an answer)."""
    return grade_batch([completion], [gold], extractor, mode, rel_tol, timeout,
                       percent_as_fraction)[0]


def grade_batch(completions: list[str], golds: list[str], extractor: str = "auto",
                mode: str = "math", rel_tol: float = 1e-6, timeout: float = 2.0,
                percent_as_fraction: bool = False) -> list[Grade]:
    """grade() for each pair. Repeated (answer, gold) pairs - common within a GRPO group -
    are compared once."""
    if len(completions) != len(golds):
        raise ValueError(f"{len(completions)} completions for {len(golds)} gold answers")
    extract = _lookup(EXTRACTORS, extractor, "extractor")
    compare = _lookup(MODES, mode, "mode")
    options = Options(rel_tol=rel_tol, timeout=timeout, percent_as_fraction=percent_as_fraction)
    answers = [extract(c) for c in completions]
    pairs = list(dict.fromkeys((a, g) for a, g in zip(answers, golds) if a is not None))
    seen = dict(zip(pairs, _compare_all(pairs, compare, options)))
    return [Grade(False, None, "no_answer") if a is None else Grade(seen[a, g] == "equal", a, seen[a, g])
            for a, g in zip(answers, golds)]


def _compare_all(pairs: list[tuple[str, str]], compare: Callable, options: Options) -> list[str]:
    """The distinct comparisons, from one thread per SymPy worker: comparisons that run into
    their time limit then cost about their number / workers limits, not their sum."""
    if len(pairs) < 2 or POOL.size < 2:
        return [compare(a, g, options) for a, g in pairs]
    with ThreadPoolExecutor(max_workers=POOL.size) as threads:
        return list(threads.map(lambda pair: compare(*pair, options), pairs))


def compare(pred: str, gold: str, mode: str = "math", rel_tol: float = 1e-6,
            timeout: float = 2.0, percent_as_fraction: bool = False) -> str:
    """The reason for two already-extracted answers ("equal", "not_equal", "timeout", ...)."""
    options = Options(rel_tol=rel_tol, timeout=timeout, percent_as_fraction=percent_as_fraction)
    return _lookup(MODES, mode, "mode")(pred, gold, options)


def equivalent(pred: str, gold: str, mode: str = "math", rel_tol: float = 1e-6,
               timeout: float = 2.0, percent_as_fraction: bool = False) -> bool:
    """Are two already-extracted answers the same answer?"""
    return compare(pred, gold, mode, rel_tol, timeout, percent_as_fraction) == "equal"
