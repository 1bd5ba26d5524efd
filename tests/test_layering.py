"""DESIGN.md: data only flows forward — a module imports from modules before it, never after."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mathrl"

# The data flow, in order. A module may import only from modules listed before it.
ORDER = ["types", "advantage", "loss", "presets", "config", "verify", "tasks", "reward", "models", "engine",
         "rollout", "rollout_vllm", "logprobs", "value", "update", "health", "metrics", "stats", "compute", "recipe",
         "distributed", "tracking", "results", "claims", "evaluate", "resume", "checkpoint", "run_lock", "sampler",
         "costs", "run_state", "train", "report_plots", "report", "grid", "compare", "bench", "cli", "__main__"]


def top_module(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported_mathrl_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mathrl."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("mathrl."))
    return found


def test_every_module_is_placed_in_the_order():
    modules = {top_module(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert modules <= set(ORDER), f"add new modules to ORDER: {sorted(modules - set(ORDER))}"


def test_imports_only_flow_forward():
    rank = {name: i for i, name in enumerate(ORDER)}
    backwards = []
    for path in PACKAGE.rglob("*.py"):
        me = top_module(path)
        if me == "__init__":
            continue
        for other in imported_mathrl_modules(path) - {me}:
            if rank[other] > rank[me]:
                backwards.append(f"{path.relative_to(PACKAGE)} imports mathrl.{other}")
    assert not backwards, "\n".join(backwards)


def test_the_engine_reads_no_algorithm_module():
    """mathrl/engine/ is the execution machinery: it may read the model loading and the shared
    types, and the algorithm modules read it, never the reverse."""
    for path in (PACKAGE / "engine").rglob("*.py"):
        assert imported_mathrl_modules(path) <= {"engine", "models", "types"}, path


def test_library_never_imports_the_cli():
    for path in PACKAGE.rglob("*.py"):
        if top_module(path) not in ("cli", "__main__"):
            assert "cli" not in imported_mathrl_modules(path), path
