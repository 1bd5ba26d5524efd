"""The answer checker: extraction, normalisation, safe parsing, equivalence, timeouts.

    from mathrl.verify import grade, equivalent, grade_batch, extract, EXTRACTORS

The pipeline, cheapest first (each file is one concept):
    extract.py    final answer out of a completion (named extractors, `auto`; `unwrap` for golds)
    prose.py      answers in free text: math spans, bare numbers, prose words, currency `$`
    latex.py      balanced-brace helpers shared by extraction and normalisation
    normalize.py  canonical string (units, `\\dfrac`, `\\left`, thousands separators ...)
    numbers.py    plain numbers -> Fraction: the fast path, no parser, no SymPy
    lexer.py, parser.py -> tree.py   whitelisted tokens -> answer tree (never eval/sympify)
    relations.py  ranges as intervals, `=` / `\\approx` chains, labels (`|PQ| =`), ratios
    matrices.py   matrix arithmetic in an answer (`2A + B`, `A B`, `A^2`), evaluated while parsing
    limits.py     size limits checked before anything is evaluated ("too_large")
    exact.py      exact rational value of constant trees
    probe.py      complex-float evaluation at random points (True / False / inconclusive)
    symbolic.py   SymPy, only inside worker processes (worker.py: hard wall-clock limit)
    compare.py    structures (tuples, sets, intervals, equations, matrices, ±) + the tiers
    modes.py      MODES: numeric | math | exact
    grade.py      grade, grade_batch, equivalent
    steps.py      check_steps: per-calculation arithmetic checks (process supervision)
    files.py      verify_jsonl: grade a JSONL file (the `mathrl verify --input` command)

Relations against bare values, a deliberate choice. math-verify's README (FAQ "Why is verify
function not symmetric?") makes `verify(gold, pred)` asymmetric in two cases; mathrl takes one:
- A chain: a predicted `a + 2z = 2z + a = 101` answers its last side (101), but a gold chain
  against a prediction that is no chain is unequal: which side of a gold is meant is unclear,
  and golds should be clean (compare.answer_equal). A chain that starts with a label
  (`x = 2+3 = 5`) is the labelled value `x = 5` on either side.
- Not the interval case: math-verify accepts `(1,2)` for a gold `1 < x < 2` but not the reverse;
  mathrl equates a range and its interval both ways (`t \\in [-1,4]` == `-1 \\le t \\le 4`),
  because golds come in both forms. Against the reward hack math-verify guards there (echoing
  the question's inequality), mathrl never solves an inequality: `-y > -2` is y < 2 (the same
  range, sign-flipped), but `3 - t < 1` is not t > 2 (relations.flipped_interval).
- Symmetric as before: a label and its value (`x = 5`, `|PQ| = 4`, `AB:CD = 3:7` vs the bare
  value), a calculation and its result (`3 + 4 = 7` vs 7); a range against a bare value
  (`x > 2` vs 2) is unequal both ways.

Importing this package does not import SymPy (the worker does).
"""

from mathrl.verify.extract import EXTRACTORS, extract
from mathrl.verify.files import verify_jsonl
from mathrl.verify.grade import compare, equivalent, grade, grade_batch
from mathrl.verify.modes import MODES, REASONS
from mathrl.verify.steps import check_steps

__all__ = ["EXTRACTORS", "MODES", "REASONS", "check_steps", "compare", "equivalent", "extract",
           "grade", "grade_batch", "verify_jsonl"]
