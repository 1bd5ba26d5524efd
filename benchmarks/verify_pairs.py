"""Inputs of bench_verify.py: (prediction, gold, expected) pairs whose answer is known by construction.

    gsm8k          every GSM8K test solution as written (ends in `#### N`) and with N+1
    math_rewrite   every MATH-500 gold vs one equivalent rewrite (the first family that applies)
    math_perturb   every MATH-500 gold vs the gold with its first digit run + 1 (not equal)
    math_other     every MATH-500 gold vs the next problem's gold (agreement only)
    math_raw       every MATH-500 gold inside a model-style completion (6 styles, cycled), and
                   the same completion around the perturbed gold: raw text, extracted by each tool
    math_forms     every MATH-500 gold vs each issue-13 respelling that applies to it (intervals as
                   inequalities, mixed numbers, thousands styles, decimal commas, delimiters ...)
    tables         mathrl's own category tables (tests/verify/test_categories.py, tests/verify/test_text.py):
                   written for mathrl, so they show where math-verify differs, not who is better
    families       issue 25's table (tests/verify/test_families.py): raw completion vs gold, both
                   as the grader receives them (whole solutions, chains, several parts, labels ...)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def gsm8k_pairs(rows: list[dict]) -> list[dict]:
    pairs = []
    for row in rows:
        body, gold = row["answer"].rsplit("####", 1)
        gold = gold.strip().replace(",", "")
        pairs.append({"completion": row["answer"], "gold": gold, "expected": True})
        pairs.append({"completion": f"{body}#### {int(gold) + 1}", "gold": gold, "expected": False})
    return pairs


def perturb(answer: str) -> str:
    """First digit run + 1 (zero padding kept); `+1` when there is no digit."""
    m = re.search(r"\d+", answer)
    if m is None:
        return answer + "+1"
    run = m.group(0)
    return answer[: m.start()] + str(int(run) + 1).zfill(len(run)) + answer[m.end():]


def _terms(expr: str) -> list[str] | None:
    """Top-level signed terms of a sum (`x^2 - 2x + 1` -> [x^2, -2x, +1]), None if not a sum."""
    if any(bad in expr for bad in ("=", ",", "\\pm", "\\cup", "\\begin", "\\{")):
        return None
    terms, depth, start = [], 0, 0
    for i, ch in enumerate(expr):
        depth += ch in "({[" and 1 or 0
        depth -= ch in ")}]" and 1 or 0
        if depth == 0 and ch in "+-" and i > 0 and expr[i - 1] not in "^{(" and expr[:i].strip():
            terms.append(expr[start:i].strip())
            start = i
    terms.append(expr[start:].strip())
    return terms if len(terms) > 1 and all(terms) else None


def _fraction(m: re.Match) -> str:
    a, b = int(m.group(2)), int(m.group(3))
    sign = m.group(1)
    d = b
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return f"{sign}{a / b:.10g}" if d == 1 else f"{sign}{a}/{b}"


# Equivalent spellings a model might write; the first family that applies is used (math_rewrite).
REWRITES = [
    ("fraction->decimal or a/b", lambda g: re.sub(r"^(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}$", _fraction, g)),
    ("1/sqrt(n) form", lambda g: re.sub(r"^\\frac\{\\sqrt\{(\d+)\}\}\{\1\}$", r"\\frac{1}{\\sqrt{\1}}", g)),
    ("k sqrt(n) -> sqrt(k^2 n)", lambda g: re.sub(r"^(\d+)\s*\\sqrt\{(\d+)\}$",
                                                  lambda m: f"\\sqrt{{{int(m.group(1))**2 * int(m.group(2))}}}", g)),
    ("k sqrt n (short) -> sqrt", lambda g: re.sub(r"^(\d+)\s*\\sqrt(\d)$",
                                                  lambda m: f"\\sqrt{{{int(m.group(1))**2 * int(m.group(2))}}}", g)),
    ("decimal -> fraction", lambda g: re.sub(r"^(\d*)\.(\d+)$", lambda m: "\\frac{%d}{%d}" % (
        int(m.group(1) + m.group(2)), 10 ** len(m.group(2))), g)),
    ("n pi -> pi * n", lambda g: re.sub(r"^(\d+)\s*\\pi$", r"\\pi \\cdot \1", g)),
    ("equation -> right side", lambda g: re.sub(r"^[a-z]\s*=\s*([^a-zA-Z=]+)$", r"\1", g)),
    ("pm expanded", lambda g: (lambda m: m and f"{m.group(1)} + {m.group(2)}, {m.group(1)} - {m.group(2)}"
                               or g)(re.fullmatch(r"([^{}\\]*?)\s*\\pm\s*([^,=]*)", g))),
    ("base subscript dropped", lambda g: re.sub(r"^(\d+)_\{?\d+\}?$", r"\1", g)),
    ("dollar sign dropped", lambda g: re.sub(r"^\\\$(.+)$", r"\1", g)),
    ("units dropped", lambda g: re.sub(r"^(.+?)\s*\\(?:text|mbox)\{\s*[a-z ]+\}(?:\^\d)?$", r"\1", g)),
    ("sqrt -> power 1/2", lambda g: re.sub(r"^\\sqrt\{(\d+)\}$", r"\1^{1/2}", g)),
    ("degrees dropped", lambda g: re.sub(r"^(\d+)\^\\circ$", r"\1", g)),
    ("text unwrapped", lambda g: re.sub(r"^\\text\{\(?([A-Za-z ]+)\)?\}$", r"\1", g)),
    ("thousands separator", lambda g: f"{int(g):,}" if re.fullmatch(r"\d{4,}", g) else g),
    ("terms reversed", lambda g: (lambda t: t and " ".join(
        [t[-1].lstrip("+")] + [x if x[0] in "+-" else "+" + x for x in reversed(t[:-1])]) or g)(_terms(g))),
    ("pmatrix->bmatrix", lambda g: g.replace("pmatrix", "bmatrix")),
    ("union reordered", lambda g: " \\cup ".join(reversed(g.split("\\cup"))).strip() if "\\cup" in g else g),
    ("list reversed", lambda g: ", ".join(reversed([x.strip() for x in g.split(",")]))
        if re.fullmatch(r"[-\d\s,\\a-z{}]+", g) and "," in g and not re.search(r",\\?!?\s*\d{3}(?!\d)", g)
        and "\\{" not in g and "(" not in g else g),
    ("\\left( \\right)", lambda g: "\\left(" + g[1:-1] + "\\right)" if re.fullmatch(r"\([^()]*\)", g) else g),
    ("dfrac", lambda g: g.replace("\\frac", "\\dfrac")),
    ("integer as n.0", lambda g: g + ".0" if re.fullmatch(r"-?\d+", g) else g),
]


def rewrite(gold: str) -> tuple[str, str]:
    for name, fn in REWRITES:
        new = fn(gold)
        if new != gold:
            return name, new
    return "displaystyle", "\\displaystyle " + gold


def math_pairs(rows: list[dict]) -> dict[str, list[dict]]:
    golds = [r["answer"] for r in rows]
    out: dict[str, list[dict]] = {"math_rewrite": [], "math_perturb": [], "math_other": []}
    for i, gold in enumerate(golds):
        family, new = rewrite(gold)
        out["math_rewrite"].append({"pred": new, "gold": gold, "expected": True, "family": family})
        out["math_perturb"].append({"pred": perturb(gold), "gold": gold, "expected": False})
        other = golds[(i + 1) % len(golds)]
        out["math_other"].append({"pred": other, "gold": gold, "expected": True if other == gold else None})
    return out


# ---- raw completions --------------------------------------------------------------------------

STYLES = [
    ("boxed in prose", "We simplify and check both cases. Therefore the answer is $\\boxed{{{a}}}$."),
    ("Minerva final answer", "Solving gives the result.\nFinal Answer: The final answer is ${a}$. I hope it is "
                             "correct."),
    ("inline \\( \\)", "Putting the pieces together, the answer is \\({a}\\)."),
    ("display \\[ \\]", "Collecting terms, we get\n\\[{a}\\]"),
    ("bare expression", "{a}"),
    ("markdown + boxed", "**Final Answer**\n\\[\n\\boxed{{{a}}}\n\\]"),
]


def raw_pairs(rows: list[dict]) -> list[dict]:
    pairs = []
    for i, row in enumerate(rows):
        style, template = STYLES[i % len(STYLES)]
        gold = row["answer"]
        for answer, expected in ((gold, True), (perturb(gold), False)):
            pairs.append({"completion": template.format(a=answer), "gold": gold, "expected": expected,
                          "family": style})
    return pairs


# ---- issue-13 respellings of real golds -------------------------------------------------------

def _interval_as_inequality(g: str) -> str | None:
    m = re.fullmatch(r"([(\[])\s*([^,]+?)\s*,\s*([^,]+?)\s*([)\]])", g)
    if m is None or "\\cup" in g:
        return None
    lo, hi = m.group(2), m.group(3)
    lower = "\\le" if m.group(1) == "[" else "<"
    upper = "\\le" if m.group(4) == "]" else "<"
    if "infty" in lo and "infty" in hi:
        return None
    if "infty" in hi:
        return f"x {'>' if lower == '<' else GE} {lo}"
    if "infty" in lo:
        return f"x {upper} {hi}"
    return None if "(" in lo + hi else f"{lo} {lower} x {upper} {hi}"


GE = "\\ge"


def _mixed(g: str) -> str | None:
    m = re.fullmatch(r"(-?)\\frac\{(\d+)\}\{(\d+)\}", g)
    if m is None or int(m.group(2)) <= int(m.group(3)):
        return None
    q, r = divmod(int(m.group(2)), int(m.group(3)))
    return f"{m.group(1)}{q}\\frac{{{r}}}{{{m.group(3)}}}" if r else None


def _decimal_comma(g: str) -> str | None:
    m = re.fullmatch(r"(-?\d*)\.(\d+)", g)
    return None if m is None or len(m.group(2)) == 3 else f"{m.group(1) or '0'},{m.group(2)}"


FORMS = [
    ("$...$", lambda g: f"${g}$"), ("\\(...\\)", lambda g: f"\\({g}\\)"), ("\\boxed{}", lambda g: f"\\boxed{{{g}}}"),
    ("interval as inequality", _interval_as_inequality),
    ("x \\in interval", lambda g: f"x \\in {g}" if re.fullmatch(r"[(\[].*[)\]]", g) and "infty" in g else None),
    ("+\\infty", lambda g: g.replace("\\infty)", "+\\infty)") if "\\infty)" in g else None),
    ("\\dfrac / \\tfrac", lambda g: g.replace("\\frac", "\\tfrac") if "\\frac" in g else None),
    ("\\sqrt{n} -> \\sqrt "
     "n", lambda g: re.sub(r"\\sqrt\{(\d)\}", r"\\sqrt\1", g) if re.search(r"\\sqrt\{\d\}", g) else None),
    ("mixed number", _mixed),
    ("-\\frac{a}{b} -> -a/b",
     lambda g: re.sub(r"^-\\frac\{(\d+)\}\{(\d+)\}$", r"-\1/\2", g) if g.startswith("-\\frac") else None),
    ("thousands 2{,}500", lambda g: f"{int(g):,}".replace(",", "{,}") if re.fullmatch(r"\d{4,}", g) else None),
    ("thousands 2\\,500", lambda g: f"{int(g):,}".replace(",", "\\,") if re.fullmatch(r"\d{4,}", g) else None),
    ("thousands 2 500", lambda g: f"{int(g):,}".replace(",", " ") if re.fullmatch(r"\d{5,}", g) else None),
    ("decimal comma", _decimal_comma),
    ("currency", lambda g: f"{g} \\text{{ dollars}}" if g.startswith("\\$") else None),
    ("units", lambda g: f"{g} \\text{{ cm}}" if re.fullmatch(r"\d+", g) and int(g) % 7 == 0 else None),
    ("degrees ^{\\circ}", lambda g: g.replace("^\\circ", "^{\\circ}") if "^\\circ" in g else None),
    ("\\text{} -> \\textbf{}", lambda g: g.replace("\\text{", "\\textbf{") if g.startswith("\\text{") else None),
    ("equation rhs", lambda g: re.sub(r"^[a-z]\s*=\s*", "", g) if re.match(r"^[a-z]\s*=", g) else None),
    ("expression as f(x) =", lambda g: f"f(x) = {g}" if re.search(r"(?<![a-z\\])x(?![a-z])", g)
        and not re.search(r"[,=]|\\(?:text|mbox|begin)", g) else None),
    ("vector as tuple", lambda g: "(" + ", ".join(
        x.strip() for x in re.findall(r"[^\\&]+?(?=\\\\|\\end)", g.split("}", 1)[1])) + ")"
        if re.fullmatch(r"\\begin\{pmatrix\}[^&]*\\end\{pmatrix\}", g) else None),
    ("pmatrix -> bmatrix", lambda g: g.replace("pmatrix", "bmatrix") if "pmatrix" in g else None),
]


_NEEDS_INTERVAL = {"interval as inequality", "x \\in interval"}  # (2, 4) may be a point


def form_pairs(rows: list[dict]) -> list[dict]:
    pairs = []
    for row in rows:
        gold = row["answer"]
        for family, fn in FORMS:
            if family in _NEEDS_INTERVAL and "interval" not in row["problem"].lower():
                continue
            new = fn(gold)
            if new and new != gold:
                pairs.append({"pred": new, "gold": gold, "expected": True, "family": family})
                wrong = fn(perturb(gold))  # the same respelling of a different answer
                if wrong and wrong != new:
                    pairs.append({"pred": wrong, "gold": gold, "expected": False, "family": family})
    return pairs


# ---- mathrl's own tables ----------------------------------------------------------------------

def table_pairs() -> list[dict]:
    sys.path.insert(0, str(REPO / "tests" / "verify"))
    import test_categories as cats  # noqa: E402 - the tests are the single source
    import test_text as text  # noqa: E402

    pairs = [{"pred": p, "gold": g, "expected": exp, "family": cat}
             for exp, table in ((True, cats.EQUAL), (False, cats.NOT_EQUAL))
             for cat, rows in table.items() for p, g in rows]
    pairs += [{"completion": c, "gold": g, "expected": ok, "family": "raw text"} for c, g, ok in text.GRADED]
    return pairs


def family_pairs() -> list[dict]:
    sys.path.insert(0, str(REPO / "tests" / "verify"))
    import test_families as fams  # noqa: E402 - the test is the single source

    return [{"completion": c, "gold": g, "expected": ok, "family": family, "gold_raw": "$" in g or "\\boxed" in g}
            for family, rows in fams.FAMILIES.items() for c, g, ok in rows]
