"""The public Python API: `import mathrl` stays light, exports resolve, and the README's
"Python API" block runs exactly as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def readme_block() -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Python API"):]
    return re.search(r"^```python\n(.*?)^```", section, re.S | re.M).group(1)


def test_the_readme_python_example_runs_as_written(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    (tmp_path / "example.py").write_text(readme_block())
    done = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    accuracy, pass2 = map(float, lines[-3].split())
    assert 0 <= accuracy <= 1 and 0 <= pass2 <= 1
    assert lines[-2].startswith("Grade(correct=True") and lines[-1].startswith("Grade(correct=True")
    assert (tmp_path / "runs" / "python-api" / "final" / "config.json").is_file()


def test_import_mathrl_loads_no_torch_and_exports_resolve():
    code = ("import sys, mathrl; heavy = [m for m in ('torch', 'transformers', 'sympy') if m in sys.modules]; "
            "print(heavy); print(mathrl.get_task('countdown'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", f"Task(countdown@1, reasoning_gym:countdown, "
                                              f"{REPO / 'tasks' / 'countdown.yaml'})"]


def test_every_export_resolves():
    import mathrl

    for name in mathrl.__all__:
        assert getattr(mathrl, name) is not None, name
    assert set(mathrl.__all__) <= set(dir(mathrl))


def test_train_and_evaluate_are_modules_that_run_their_function_when_called(monkeypatch):
    import mathrl
    import mathrl.evaluate as evaluate_module
    import mathrl.train as train_module

    assert train_module is mathrl.train and train_module.train_step  # still the module
    calls = []
    monkeypatch.setattr(train_module, "train", lambda cfg, **kw: calls.append(("train", cfg)))
    monkeypatch.setattr(evaluate_module, "evaluate_model", lambda m, t, **kw: calls.append(("eval", m)))
    mathrl.train("cfg")
    mathrl.evaluate("model", "task")
    assert calls == [("train", "cfg"), ("eval", "model")]


def test_a_registered_advantage_is_usable_by_name(monkeypatch):
    import mathrl
    from mathrl.advantage import outcome
    from mathrl.recipe import Recipe

    def mean_baseline(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
        groups = rewards.view(-1, group_size)  # (B, G)
        return (groups - groups.mean(-1, keepdim=True)).view(-1)  # (N,)

    monkeypatch.setitem(mathrl.ADVANTAGES, "mean_baseline", outcome(mean_baseline, grouped=True))
    cfg = mathrl.build_config("grpo", overrides={"advantage": "mean_baseline", "model": "tiny"})
    recipe = Recipe.from_config(cfg)
    adv = recipe.advantage.outcome(torch.tensor([1.0, 0.0, 0.0, 0.0]), 2)
    assert adv.tolist() == [0.5, -0.5, 0.0, 0.0]
