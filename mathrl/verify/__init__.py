"""The answer checker: extraction, normalisation, safe parsing, equivalence, timeouts.

    from mathrl.verify import grade, equivalent, grade_batch, extract, EXTRACTORS

The pipeline, cheapest first (each file is one concept):
    extract.py    final answer out of a completion (named extractors, `auto`; `unwrap` for golds)
    prose.py      answers in free text: math spans, bare numbers, prose words, currency `$`
    latex.py      balanced-brace helpers shared by extraction and normalisation
    normalize.py  canonical string (units, `\\dfrac`, `\\left`, thousands separators ...)
    numbers.py    plain numbers -> Fraction: the fast path, no parser, no SymPy
    lexer.py, parser.py -> tree.py   whitelisted tokens -> answer tree (never eval/sympify)
    limits.py     size limits checked before anything is evaluated ("too_large")
    exact.py      exact rational value of constant trees
    probe.py      complex-float evaluation at random points (True / False / inconclusive)
    symbolic.py   SymPy, only inside worker processes (worker.py: hard wall-clock limit)
    compare.py    structures (tuples, sets, intervals, equations, matrices, ±) + the tiers
    modes.py      MODES: numeric | math | exact
    grade.py      grade, grade_batch, equivalent
    steps.py      check_steps: per-calculation arithmetic checks (process supervision)
    files.py      verify_jsonl: grade a JSONL file (the `mathrl verify --input` command)

Importing this package does not import SymPy (the worker does).
"""

from mathrl.verify.extract import EXTRACTORS, extract
from mathrl.verify.files import verify_jsonl
from mathrl.verify.grade import compare, equivalent, grade, grade_batch
from mathrl.verify.modes import MODES, REASONS
from mathrl.verify.steps import check_steps

__all__ = ["EXTRACTORS", "MODES", "REASONS", "check_steps", "compare", "equivalent", "extract",
           "grade", "grade_batch", "verify_jsonl"]
