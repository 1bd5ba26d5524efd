"""Hostile model output (issue 8): fuzz the verifier and the reward path, then train on it.

Model output is adversarial input. Whatever a completion holds (random unicode, LaTeX-like
garbage, huge numbers, deep nesting, code), `grade` returns a verdict: no exception, no run
past the time limit (plus slack for a loaded machine), no code executed (a canary file that
any executed payload would create must never appear). The trainer, fed such completions by a
patched rollout, finishes with finite rewards and writes them to its run directory.

The default suite runs a modest number of examples per test; `pytest -m slow` runs many more.
Each test counts the examples it ran and prints the total (`-s` shows it).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from conftest import DIGIT_TASK, metric_rows, tiny_run

from mathrl.reward import shaped_rewards
from mathrl.rollout import ROLLOUTS
from mathrl.tasks import get_task
from mathrl.types import Problem
from mathrl.verify import EXTRACTORS, MODES, REASONS, check_steps, extract, grade

TIMEOUT = 0.5  # seconds of symbolic work per comparison
SLACK = 3.0  # wall-clock allowance for a loaded machine (the verifier tests use the same)
FAST, MANY = 150, 3000  # examples per test: default suite, `-m slow`
COUNTS: dict[str, int] = {}

# ---- strategies -------------------------------------------------------------------------------

# every code point, lone surrogates included: a custom backend or hook can produce them
unicode_text = st.text(st.characters(exclude_categories=()), max_size=300)

_LATEX = ["\\frac", "\\dfrac", "\\sqrt", "\\boxed", "\\left(", "\\right)", "\\left\\{", "\\right.", "\\text{",
          "\\mathrm{", "\\pi", "\\infty", "\\pm", "\\cdot", "\\times", "\\div", "\\cup", "\\cap", "\\in", "\\le",
          "\\begin{pmatrix}", "\\end{pmatrix}", "\\binom", "\\log_", "\\sin", "\\%", "\\$", "\\,", "\\!", "\\\\",
          "{", "}", "(", ")", "[", "]", "^", "_", "&", "=", "<", ">", "!", "|", ",", ".", "+", "-", "*", "/", " ",
          "\n", "x", "y", "e", "i", "0", "1", "2", "7", "9", "####", "The answer is", "Answer:", "$", "$$"]
latex_garbage = st.lists(st.sampled_from(_LATEX), max_size=80).map("".join)

huge_numbers = st.one_of(
    st.integers(min_value=10**20, max_value=10**400).map(str),
    st.integers(min_value=50, max_value=20_000).map(lambda n: "9" * n),
    st.integers(min_value=300, max_value=10**12).map(lambda k: f"1e{k}"),
    st.integers(min_value=2, max_value=12).map(lambda n: "^".join(["9"] * n)),  # power towers
    st.integers(min_value=3, max_value=9).map(lambda n: "10" + "^{10" * n + "}" * n),
    st.integers(min_value=100, max_value=10**9).map(lambda n: f"{n}!"),
    st.integers(min_value=2, max_value=6).map(lambda n: "(" * n + "9" + ")!" * n),  # factorial towers
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)

_OPENERS = ["(", "{", "[", "\\frac{1}{", "\\sqrt{", "\\boxed{", "\\left(", "\\text{", "x^{", "-", "\\{"]
deep_nesting = st.builds(
    lambda opener, depth, closed: opener * depth + "1" + (_closer(opener) * depth if closed else ""),
    st.sampled_from(_OPENERS), st.integers(min_value=20, max_value=20_000), st.booleans())


def _closer(opener: str) -> str:
    return {"(": ")", "[": "]", "\\left(": "\\right)", "-": "", "\\{": "\\}"}.get(opener, "}")


# Payloads that, if anything eval'd, exec'd or sympify'd them, would create the canary file.
_INJECTIONS = [
    "__import__('pathlib').Path('{canary}').touch()",
    "__import__('os').system('touch {canary}')",
    "exec(\"open('{canary}','w')\")",
    "eval('__import__(\"os\").system(\"touch {canary}\")')",
    "(lambda: open('{canary}', 'w'))()",
    "Symbol('x').__class__.__init__.__globals__['os'].system('touch {canary}')",
    "x; import os; os.system('touch {canary}')",
    "\\text{{__import__('os').system('touch {canary}')}}",
]


def injections(canary: str):
    return st.sampled_from(_INJECTIONS).map(lambda t: t.format(canary=canary))


_WRAPPERS = ["{}", "\\boxed{{{}}}", "The answer is {}", "#### {}", "$${}$$", "Final answer: {}.", "{} = {}",
             "Step 1: 2 + 2 = {}\nSo the answer is \\boxed{{{}}}"]


def completions(canary: str):
    """One to three hostile pieces, each possibly wrapped where extractors look for answers."""
    piece = st.one_of(unicode_text, latex_garbage, huge_numbers, deep_nesting, injections(canary))
    wrapped = st.tuples(st.sampled_from(_WRAPPERS), piece).map(lambda wp: wp[0].format(*[wp[1]] * wp[0].count("{}")))
    return st.lists(st.one_of(piece, wrapped), min_size=1, max_size=3).map(" ".join)


GOLDS = ["42", "-7", "\\frac{1}{2}", "x+1", "(1,2)", "3.14", "\\{1, 2\\}", "2\\sqrt{3}", "10^{100}"]


@pytest.fixture(scope="module")
def canary(tmp_path_factory):
    path = tmp_path_factory.mktemp("canary") / "EXECUTED"
    yield path
    assert not path.exists(), "a hostile completion was executed"


def _count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    print("\nfuzz cases run: " + ", ".join(f"{k}={v}" for k, v in sorted(COUNTS.items())))


# ---- the verifier -----------------------------------------------------------------------------

def check_grade(completion: str, gold: str, extractor: str, mode: str) -> None:
    start = time.monotonic()
    g = grade(completion, gold, extractor=extractor, mode=mode, timeout=TIMEOUT)
    elapsed = time.monotonic() - start
    assert g.reason in REASONS and isinstance(g.correct, bool)
    assert g.extracted is None or isinstance(g.extracted, str)
    assert elapsed < TIMEOUT + SLACK, f"{elapsed:.1f} s for {completion[:80]!r}"


def _grade_test(examples: int, name: str):
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(data=st.data(), gold=st.sampled_from(GOLDS), extractor=st.sampled_from(sorted(EXTRACTORS)),
           mode=st.sampled_from(sorted(MODES)))
    def test(canary, data, gold, extractor, mode):
        check_grade(data.draw(completions(str(canary))), gold, extractor, mode)
        _count(name)
    return test


test_grade_never_raises_hangs_or_executes = _grade_test(FAST, "grade")
test_grade_never_raises_hangs_or_executes_many = pytest.mark.slow(_grade_test(MANY, "grade_many"))


# ---- the reward path: task grading, shaping, step checks --------------------------------------

MATH_TASK = DIGIT_TASK.replace("name: digit", "name: hostile").replace(
    "grader: {extractor: last_number, mode: numeric}", f"grader: {{extractor: auto, mode: math, timeout: {TIMEOUT}}}")


@pytest.fixture(scope="module")
def hostile_tasks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile_tasks")
    (folder / "hostile.yaml").write_text(MATH_TASK)
    (folder / "digit.jsonl").write_text("".join(json.dumps({"q": f"Say {d}", "a": str(d)}) + "\n" for d in range(10)))
    return folder


def _reward_test(examples: int, name: str):
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(data=st.data(), format_reward=st.sampled_from([0.0, 0.5]), buffer=st.sampled_from([0, 4]))
    def test(canary, hostile_tasks, data, format_reward, buffer):
        task = get_task("hostile", tasks_dir=hostile_tasks)
        texts = data.draw(st.lists(completions(str(canary)), min_size=1, max_size=4))
        problems = [Problem(id=str(i), question="q", gold=data.draw(st.sampled_from(GOLDS))) for i in range(len(texts))]
        start = time.monotonic()
        grades = task.grade_batch(texts, problems)
        assert time.monotonic() - start < len(texts) * (TIMEOUT + SLACK)
        lengths = torch.tensor([len(t) % 17 for t in texts])  # (N,) token counts, some past the limit
        rewards, stats = shaped_rewards(grades, lengths, 16, format_reward, buffer, 1.0)
        assert torch.isfinite(rewards).all() and all(math.isfinite(v) for v in stats.values())
        for text in texts:
            assert all(isinstance(end, int) and isinstance(ok, bool) for end, ok in check_steps(text))
            answer = extract(text, "auto")
            assert answer is None or isinstance(answer, str)
        _count(name)
    return test


test_reward_path_stays_finite = _reward_test(FAST // 3, "reward_batches")
test_reward_path_stays_finite_many = pytest.mark.slow(_reward_test(MANY // 3, "reward_batches_many"))


# ---- the trainer, fed hostile completions -----------------------------------------------------

def hostile_strings(canary: str, n: int, seed: int = 0) -> list[str]:
    """n deterministic hostile completions, one of each kind in turn."""
    rng = random.Random(seed)
    kinds = [
        lambda: "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(1, 200))),
        lambda: "".join(rng.choice(_LATEX) for _ in range(rng.randrange(1, 80))),
        lambda: "\\boxed{" + "9" * rng.randrange(50, 20_000) + "}",
        lambda: "The answer is " + "^".join(["9"] * rng.randrange(2, 12)),
        lambda: (o := rng.choice(_OPENERS)) * rng.randrange(20, 20_000) + "1" + _closer(o) * 50,
        lambda: "#### " + rng.choice(_INJECTIONS).format(canary=canary),
        lambda: "",
    ]
    return [kinds[i % len(kinds)]() for i in range(n)]


@pytest.mark.parametrize("algo", ["grpo", "grpo_ps"])  # grpo_ps also checks every step of the text
def test_trainer_survives_hostile_completions(tmp_path, hostile_tasks, canary, monkeypatch, algo):
    inner, served = ROLLOUTS["hf"](), []

    def hostile_rollout(*args, **kwargs):
        batch = inner(*args, **kwargs)
        texts = hostile_strings(str(canary), batch.size, seed=len(served))
        served.extend(texts)
        return replace(batch, completions=texts)

    monkeypatch.setitem(ROLLOUTS, "hf", lambda: hostile_rollout)  # a backend factory
    run = tiny_run(hostile_tasks, tmp_path / algo, algo, steps=2, task="hostile", eval_limit=0, checkpoint_every=0)
    rows = metric_rows(run)
    trained = [r for r in rows if "reward/mean" in r]
    assert len(trained) == 2 and all(r["reward/nonfinite"] == 0 and math.isfinite(r["loss/policy"]) for r in trained)
    samples = [json.loads(x) for p in sorted((run / "samples").glob("train-*.jsonl"))
               for x in p.read_text().splitlines()]
    assert len(samples) == len(served) == 16 and all(math.isfinite(s["reward"]) for s in samples)
    # written as produced; a lone surrogate (no UTF-8 form) is written as U+FFFD
    assert all(s["completion"] == t for s, t in zip(samples, served) if not any(0xD800 <= ord(c) < 0xE000 for c in t))
    COUNTS[f"trainer_{algo}_completions"] = len(served)


# ---- random config, task and suite files (issue 17) -------------------------------------------
# A valid file, parsed, then mutated 1-3 times (a value replaced by junk of another type, a key
# dropped or added, the whole tree replaced) or its text corrupted (cut short, stray YAML
# characters). Whatever comes out, the CLI answers with exit code 0 (still valid) or 2 and one
# `mathrl: error:` line, never a traceback.

junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
              st.sampled_from(["", "auto", "token_mean", "grpo", "ppo", "k3", "-1", "1e400", "nan", "~", "[", "{a"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6)


def _mutate(tree, data, keys: list[str]):
    """One random edit of a parsed YAML tree (a copy)."""
    tree = json.loads(json.dumps(tree))
    if not isinstance(tree, dict) or not tree or data.draw(st.integers(0, 9)) == 0:
        return data.draw(junk)  # the whole file is something else
    node = tree
    while True:  # walk down to a random mapping
        children = [k for k, v in node.items() if isinstance(v, dict) and v]
        if not children or data.draw(st.booleans()):
            break
        node = node[data.draw(st.sampled_from(children))]
    op = data.draw(st.sampled_from(["replace", "replace", "drop", "add"]))
    key = data.draw(st.sampled_from(sorted(node)))
    if op == "drop":
        del node[key]
    else:
        node[data.draw(st.sampled_from(keys)) if op == "add" else key] = data.draw(junk)
    return tree


def _fuzzed_text(data, base: dict, keys: list[str]) -> str:
    import yaml

    tree = base
    for _ in range(data.draw(st.integers(1, 3))):
        tree = _mutate(tree, data, keys)
    text = yaml.safe_dump(tree, allow_unicode=True, sort_keys=False)
    if data.draw(st.integers(0, 4)) == 0:  # syntax: cut short, or a stray YAML character
        cut = data.draw(st.integers(0, len(text)))
        text = text[:cut] + data.draw(st.sampled_from(["", ":", "{", "[", "- ", "&a", "*b", "!!python/object:os.system",
                                                        "\t", "'"]))
    return text


def _clean_exit(result, allowed=(0, 2)) -> None:
    out = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), out + repr(result.exception)
    assert result.exit_code in allowed and "Traceback" not in out, out
    if result.exit_code == 2:
        assert sum(line.startswith("mathrl: error:") for line in result.stderr.splitlines()) == 1, out


BASE_CONFIG = {"lr": 1e-5, "group_size": 4, "prompts_per_step": 2, "loss_agg": "token_mean", "kl_coef": 0.04,
               "kl_estimator": "k3", "max_new_tokens": 32, "task_config": {"difficulty": "easy"}, "seed": 1,
               "micro_batch_size": 4, "minibatches": 2, "ppo_epochs": 2, "eval_kl": None, "threads": 1}


def _config_test(examples: int, name: str):
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(data=st.data(), algo=st.sampled_from(["grpo", "ppo", "sft", "dr_grpo", "dapo"]))
    def test(tmp_path_factory, monkeypatch, data, algo):
        from typer.testing import CliRunner

        import mathrl.cli
        from mathrl.config import FIELDS
        from mathrl.recipe import Recipe

        def no_training(cfg, progress, resume, *options):  # the config is what is tested: stop before any model loads
            Recipe.from_config(cfg)
            raise SystemExit(0)

        monkeypatch.setattr(mathrl.cli, "_train", no_training)
        path = tmp_path_factory.mktemp("cfg") / "config.yaml"
        path.write_text(_fuzzed_text(data, BASE_CONFIG, sorted(FIELDS)))
        _clean_exit(CliRunner().invoke(mathrl.cli.app, ["run", "--algo", algo, "--config", str(path), "--quiet"]))
        _count(name)
    return test


def _task_test(examples: int, name: str):
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(data=st.data())
    def test(tmp_path_factory, data):
        import yaml
        from typer.testing import CliRunner

        from mathrl.cli import app

        folder = tmp_path_factory.mktemp("task")
        rows = (json.dumps({"q": f"Say {d}", "a": str(d)}) + "\n" for d in range(5))
        (folder / "digit.jsonl").write_text("".join(rows))
        base = yaml.safe_load(DIGIT_TASK)
        keys = sorted({*base, "include", "gold", "solution", "fields.solution", "split_seed"})
        (folder / "t.yaml").write_text(_fuzzed_text(data, base, keys))
        _clean_exit(CliRunner().invoke(app, ["tasks", "show", str(folder / "t.yaml")]))
        _count(name)
    return test


def _suite_test(examples: int, name: str):
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(data=st.data())
    def test(tmp_path_factory, data):
        import yaml
        from typer.testing import CliRunner

        from mathrl.cli import app
        from mathrl.config import FIELDS

        folder = tmp_path_factory.mktemp("suite")
        base = yaml.safe_load((Path(__file__).parents[1] / "evals" / "smoke.yaml").read_text())
        (folder / "s.yaml").write_text(_fuzzed_text(data, base, sorted({*base, *FIELDS, "budget"})))
        result = CliRunner().invoke(app, ["compare", str(folder / "s.yaml"), "--dry-run",
                                          "--output", str(folder / "out"), "--quiet"])
        _clean_exit(result)
        _count(name)
    return test


test_random_config_files_exit_2_or_run = _config_test(30, "config_files")
test_random_task_files_exit_2_or_load = _task_test(30, "task_files")
test_random_suite_files_exit_2_or_plan = _suite_test(5, "suite_files")
test_random_config_files_many = pytest.mark.slow(_config_test(1000, "config_files_many"))
test_random_task_files_many = pytest.mark.slow(_task_test(1000, "task_files_many"))
test_random_suite_files_many = pytest.mark.slow(_suite_test(300, "suite_files_many"))
