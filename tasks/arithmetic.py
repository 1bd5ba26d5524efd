"""Generator hook of the built-in `arithmetic` task (tasks/arithmetic.yaml).

`generate(split, size, seed, config)` yields records {"question", "answer", "solution",
"expression"}. Item i of a split is drawn from `random.Random(seed + i)`, so a split is a pure
function of its seed and the config. Splits listed in `config.distinct` (the YAML lists `test`)
never repeat a question, skipping repeats: a repeated test item would be counted twice and
the easy space is small. Training streams may repeat.

Difficulty: `config.difficulty` names one of `config.presets`; any of `digits` (operand digits),
`operations` (subset of + - *) and `operands` (numbers per expression, >= 2) given next to it
overrides the preset, e.g. `task_config={"digits": 2}`.
"""

from __future__ import annotations

import operator
import random

OPERATIONS = {"+": operator.add, "-": operator.sub, "*": operator.mul}
PARAMS = ("digits", "operations", "operands")


def resolve(config: dict) -> dict:
    """Preset + explicit overrides -> {digits, operations, operands, distinct}, validated."""
    presets = config.get("presets") or {}
    difficulty = config.get("difficulty")
    if difficulty not in presets:
        raise ValueError(f"difficulty {difficulty!r}; allowed: {', '.join(presets)}")
    unknown = set(config) - {"difficulty", "presets", "distinct", *PARAMS}
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r}; allowed: difficulty, presets, "
                         f"distinct, {', '.join(PARAMS)}")
    params = {**presets[difficulty], **{k: config[k] for k in PARAMS if k in config}}
    missing = [k for k in PARAMS if k not in params]
    if missing:
        raise ValueError(f"preset {difficulty!r} lacks {', '.join(missing)}")
    if not (isinstance(params["digits"], int) and params["digits"] >= 1):
        raise ValueError(f"digits must be an integer >= 1, got {params['digits']!r}")
    if not (isinstance(params["operands"], int) and params["operands"] >= 2):
        raise ValueError(f"operands must be an integer >= 2, got {params['operands']!r}")
    ops = params["operations"]
    if not ops or not set(ops) <= set(OPERATIONS):
        raise ValueError(f"operations must be a non-empty subset of {list(OPERATIONS)}, "
                         f"got {ops!r}")
    params["distinct"] = list(config.get("distinct") or [])
    return params


def solve(numbers: list[int], ops: list[str]) -> tuple[int, list[str]]:
    """Evaluate with the usual precedence (* before +/-, then left to right), one line per step."""
    numbers, ops, steps = list(numbers), list(ops), []
    for wanted in (("*",), ("+", "-")):
        i = 0
        while i < len(ops):
            if ops[i] in wanted:
                a, b, op = numbers[i], numbers[i + 1], ops[i]
                value = OPERATIONS[op](a, b)
                steps.append(f"{a} {op} {b} = {value}")
                numbers[i : i + 2], ops[i : i + 1] = [value], []
            else:
                i += 1
    return numbers[0], steps


def make(rng: random.Random, digits: int, operations: list[str], operands: int) -> dict:
    numbers = [rng.randrange(10**digits) for _ in range(operands)]
    ops = [rng.choice(list(operations)) for _ in range(operands - 1)]
    expression = " ".join(f"{n} {o}" for n, o in zip(numbers, ops)) + f" {numbers[-1]}"
    value, steps = solve(numbers, ops)
    return {"question": f"What is {expression}?", "answer": str(value),
            "solution": "\n".join(steps), "expression": expression}


def space_size(digits: int, operations: list[str], operands: int) -> int:
    return (10**digits) ** operands * len(set(operations)) ** (operands - 1)


def generate(split: str, size: int, seed: int, config: dict):
    p = resolve(config)
    args = (p["digits"], p["operations"], p["operands"])
    if split not in p["distinct"]:
        for i in range(size):
            yield make(random.Random(seed + i), *args)
        return
    if size > space_size(*args):
        raise ValueError(f"{size} distinct {split} problems requested, but digits={args[0]}, "
                         f"operations={args[1]}, operands={args[2]} allow only "
                         f"{space_size(*args)}")
    seen: set[str] = set()
    i = 0
    while len(seen) < size:  # terminates: the space holds at least `size` problems
        record = make(random.Random(seed + i), *args)
        i += 1
        if record["expression"] not in seen:
            seen.add(record["expression"])
            yield record
