"""`mathrl compare`: a suite (evals/<suite>.yaml) -> the runs of its grid -> one report.

A suite is data, like a task. It declares algorithms x tasks x seeds and the settings every
run shares, so that algorithms compare at an equal budget:

    name: smoke                  # the default output folder is results/<name>
    version: 1                   # bump on any change that can move a number (DESIGN.md rule 15)
    description: what it reproduces
    finding: the paper's result to compare with (optional; copied into the report)
    common: {model: tiny, max_steps: 4, prompts_per_step: 2, group_size: 4, ...}  # RunConfig keys
    algorithms: {grpo: {}, ppo: {lr: 2.0e-5}}   # preset name -> that algorithm's overrides
    tasks: [arithmetic]          # or {arithmetic: {task_config: {...}}}: per-task overrides
    seeds: [0, 1]
    budget: {flops: 2.0e14}      # optional: each algorithm's max_steps from a FLOPs budget
    init_from: {algo: sft, steps: 20, lr: 1.0e-4}   # optional warm start (below)

Precedence for one run, lowest first: the algorithm's preset < common < the task's overrides
< the algorithm's overrides < max_steps from budget.flops < the caller's `overrides` (tests and
`--set` shrink a suite this way). Every run's config goes through config.build_config, so an
unknown key or an impossible value fails before anything trains.

Budgets. Without `budget:` the budget is equal samples: every algorithm gets the same steps x
prompts x samples per prompt and the same completion limit (what DeepSeekMath's comparisons
hold fixed). `budget: {flops: X}` instead gives each algorithm max_steps = floor(X / F), F its
estimated FLOPs per step by compute.py's convention (2N per generated or scored token, 6N per
trained token) with every completion assumed to reach max_new_tokens and prompts at their mean
length over 64 training prompts: an upper bound, so runs whose answers end early spend less.
The report's FLOPs column is the measured cost.

Warm start. `init_from` trains one run of its algorithm (SFT: the task's worked solutions) for
`steps` steps per task and seed, and every grid run starts from its `final/` folder; that is
how a small model learns the answer format and gets a non-zero reward to learn from.
`per_seed: false` trains it once (with the first seed) for all seeds: seeds then vary only the
RL run, and since the report pools seeds by model name, only then do the seeds pool.

Resumable: a run whose eval/final.json exists is skipped; one with a checkpoint is resumed;
anything else in its folder is deleted and the run restarts. A finished run's checkpoints
are deleted (it is never resumed; final/ stays). A run made with a different config than
the suite now gives is an error, never silently mixed into the report.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mathrl.checkpoint import list_checkpoints
from mathrl.config import FIELDS, ConfigError, RunConfig, build_config, parse_value, preset_overrides
from mathrl.recipe import Recipe
from mathrl.results import RunDir, is_run_dir, to_json
from mathrl.run_lock import DirLock

SUITE_KEYS = ("name", "version", "description", "finding", "common", "algorithms", "tasks", "seeds",
              "budget", "init_from")
GRID_KEYS = ("algo", "task", "seed", "output")  # set by the grid, never by the suite's settings
INIT_KEYS = ("algo", "steps", "per_seed")  # init_from's own keys; the rest are config keys
# Config keys that cannot move a number: a finished run that differs only in these is reused.
NEUTRAL_KEYS = {"output", "threads", "device", "micro_batch_size", "checkpoint_every", "keep_checkpoints",
                "samples_every", "save_final"}


class SuiteError(ConfigError):
    """A malformed suite; the message names the file and the key."""


@dataclass
class Suite:
    name: str
    version: int
    description: str
    path: Path
    common: dict[str, Any]
    algorithms: dict[str, dict[str, Any]]
    tasks: dict[str, dict[str, Any]]
    seeds: list[int]
    finding: str = ""
    budget: dict[str, Any] = field(default_factory=dict)
    init_from: dict[str, Any] | None = None


@dataclass
class PlannedRun:
    name: str  # folder name under <output>/runs/
    path: Path
    cfg: RunConfig
    algo: str
    is_init: bool = False
    flops_per_step: float | None = None  # the budget estimate (budget.flops only)


@dataclass
class Outcome:
    run: PlannedRun
    action: str  # trained | resumed | skipped | aborted
    final_acc: float | None = None
    seconds: float = 0.0
    note: str = ""  # why a run was aborted


# ---------------------------------------------------------------------------- the suite file
def builtin_evals_dir() -> Path:
    """The folder of the built-in suites: package `mathrl.builtin_evals` when installed from a
    wheel, else the repository's evals/ folder (source checkout)."""
    try:
        from importlib.resources import files

        root = Path(str(files("mathrl.builtin_evals")))
        if root.is_dir():
            return root
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parents[1] / "evals"


def find_suite(name: str | Path) -> Path:
    """A suite YAML path, or the name of a built-in suite (`smoke` -> evals/smoke.yaml)."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise SuiteError(f"suite file {path} does not exist")
        return path
    found = builtin_evals_dir() / f"{name}.yaml"
    if not found.is_file():
        known = sorted(p.stem for p in builtin_evals_dir().glob("*.yaml"))
        raise SuiteError(f"unknown suite {str(name)!r}; built-in: {', '.join(known)}")
    return found


def load_suite(name: str | Path) -> Suite:
    import yaml

    path = find_suite(name)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise SuiteError(f"{path}: malformed YAML ({str(e).splitlines()[0]})") from None
    where = path.name
    _need(isinstance(raw, dict), f"{where}: expected a mapping of suite keys")
    unknown = [k for k in raw if k not in SUITE_KEYS]
    _need(not unknown, f"{where}: unknown suite key(s) {', '.join(map(str, unknown))}; allowed: "
                       f"{', '.join(SUITE_KEYS)}")
    for key in ("name", "version", "description", "algorithms", "tasks", "seeds"):
        _need(key in raw, f"{where}: missing required key '{key}'")
    _need(isinstance(raw["version"], int) and raw["version"] >= 1, f"{where}: version must be an integer >= 1")
    seeds = raw["seeds"]
    _need(isinstance(seeds, list) and seeds and all(isinstance(s, int) for s in seeds),
          f"{where}: seeds must be a non-empty list of integers")
    algorithms = _settings_map(raw["algorithms"], f"{where}: algorithms")
    for algo in algorithms:
        try:
            preset_overrides(algo)
        except ConfigError as e:
            raise SuiteError(f"{where}: algorithms: {e}") from None
    tasks = _settings_map(raw["tasks"], f"{where}: tasks")
    common = raw.get("common") or {}
    _need(isinstance(common, dict), f"{where}: common must be a mapping of config keys")
    init = raw.get("init_from")
    init_settings = {k: v for k, v in init.items() if k not in INIT_KEYS} if isinstance(init, dict) else {}
    for scope, settings in [("common", common), *((f"tasks.{t}", s) for t, s in tasks.items()),
                            *((f"algorithms.{a}", s) for a, s in algorithms.items()), ("init_from", init_settings)]:
        _check_keys(f"{where}: {scope}", settings)
    budget = raw.get("budget") or {}
    _need(isinstance(budget, dict) and set(budget) <= {"flops"}, f"{where}: budget takes only 'flops'")
    if budget:
        flops = budget["flops"]
        _need(isinstance(flops, (int, float)) and flops > 0, f"{where}: budget.flops must be a number > 0")
        _need("max_steps" not in common and not any("max_steps" in s for s in algorithms.values()),
              f"{where}: budget.flops sets max_steps; remove max_steps from common and algorithms")
    if init is not None:
        _need(isinstance(init, dict) and "algo" in init and "steps" in init,
              f"{where}: init_from needs at least 'algo' and 'steps'")
        _need(isinstance(init["algo"], str), f"{where}: init_from.algo must be an algorithm name, got {init['algo']!r}")
        try:
            preset_overrides(init["algo"])
        except ConfigError as e:
            raise SuiteError(f"{where}: init_from.algo: {e}") from None
        _need(isinstance(init["steps"], int) and init["steps"] >= 1, f"{where}: init_from.steps must be an integer >= "
                                                                     "1")
        _need(isinstance(init.get("per_seed", True), bool), f"{where}: init_from.per_seed must be true or false")
        _need(not {"model", "max_steps"} & set(init), f"{where}: init_from takes steps (not max_steps) and "
                                                      f"the model of common (not model)")
    return Suite(name=str(raw["name"]), version=raw["version"], description=str(raw["description"]).strip(),
                 path=path, common=common, algorithms=algorithms, tasks=tasks, seeds=seeds,
                 finding=str(raw.get("finding") or "").strip(), budget=budget, init_from=init)


def _settings_map(value: Any, where: str) -> dict[str, dict[str, Any]]:
    """A list of names, or a mapping name -> overrides (null meaning none)."""
    if isinstance(value, list):
        value = {str(v): {} for v in value}
    _need(isinstance(value, dict) and value, f"{where} must be a non-empty list or mapping")
    out = {str(k): v or {} for k, v in value.items()}
    bad = [k for k, v in out.items() if not isinstance(v, dict)]
    _need(not bad, f"{where}.{bad[0] if bad else ''} must be a mapping of config keys")
    return out


def _check_keys(where: str, settings: dict[str, Any]) -> None:
    for key in settings:
        _need(key not in GRID_KEYS, f"{where}.{key} is set by the grid (algorithms, tasks, seeds, --output); remove it")
        if key not in FIELDS:
            try:
                parse_value(key, "")  # raises config's own message, with its "did you mean" hint
            except ConfigError as e:
                raise SuiteError(f"{where}: {e}") from None


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise SuiteError(message)


# ---------------------------------------------------------------------------- the plan
def plan(suite: Suite, output: Path, overrides: dict[str, Any] | None = None,
         only: list[str] | None = None) -> list[PlannedRun]:
    """Every run to do, in execution order (seed-major: an interrupted suite still has every
    algorithm for its first seeds), each with its finalized config."""
    from mathrl.tasks import get_task

    overrides = dict(overrides or {})
    unknown = [a for a in only or [] if a not in suite.algorithms]
    _need(not unknown, f"--only {unknown[0] if unknown else ''}: not an algorithm of suite {suite.name} "
                       f"(it has {', '.join(suite.algorithms)})")
    runs_dir = Path(output) / "runs"
    estimator = _FlopsEstimator() if suite.budget else None
    out: list[PlannedRun] = []
    for seed in suite.seeds:
        for task, task_settings in suite.tasks.items():
            try:  # fails fast, before anything trains
                get_task(task, tasks_dir=overrides.get("tasks_dir") or suite.common.get("tasks_dir"))
            except ValueError as e:
                raise SuiteError(f"{suite.path.name}: tasks: {str(e).splitlines()[0]}") from None
            label = Path(task).stem
            init = None
            if suite.init_from is not None:
                init = _init_run(suite, runs_dir, task, task_settings, seed, overrides)
                if not any(r.path == init.path for r in out):
                    out.append(init)
            for algo in only or suite.algorithms:
                name = f"{algo}-{label}-s{seed}"
                values = {**suite.common, **task_settings, **suite.algorithms[algo], "task": task, "seed": seed}
                fixed = {"output": str(runs_dir / name)}
                if init is not None:
                    fixed["model"] = str(init.path / "final")
                cfg = _build(suite, f"algorithms.{algo}", algo, {**values, **overrides, **fixed})
                per_step = None
                if estimator is not None and "max_steps" not in overrides:
                    # a warm start's folder does not exist yet; the base model has its architecture
                    base = {**suite.common, **overrides}.get("model", RunConfig.model)
                    per_step = estimator(cfg, base if init else cfg.model)
                    values["max_steps"] = max(1, math.floor(suite.budget["flops"] / per_step))
                    cfg = _build(suite, f"algorithms.{algo}", algo, {**values, **overrides, **fixed})
                out.append(PlannedRun(name, runs_dir / name, cfg, algo, flops_per_step=per_step))
    return out


def _init_run(suite: Suite, runs_dir: Path, task: str, task_settings: dict, seed: int,
              overrides: dict) -> PlannedRun:
    init = dict(suite.init_from)
    algo, steps, per_seed = init.pop("algo"), init.pop("steps"), init.pop("per_seed", True)
    seed = seed if per_seed else suite.seeds[0]
    name = f"init-{algo}-{Path(task).stem}-s{seed}"
    values = {**suite.common, **task_settings, **init, "task": task, "seed": seed, "max_steps": steps,
              **overrides, "output": str(runs_dir / name)}
    values["save_final"] = True  # the grid starts from its final/ folder
    return PlannedRun(name, runs_dir / name, _build(suite, "init_from", algo, values), algo, is_init=True)


def _build(suite: Suite, scope: str, algo: str, values: dict[str, Any]) -> RunConfig:
    try:
        cfg = build_config(algo, None, values)
        Recipe.from_config(cfg)  # an unknown advantage or policy loss fails the plan, not the 5th run
    except ConfigError as e:
        raise SuiteError(f"{suite.path.name}: {scope}: {e}") from None
    _need(cfg.eval_limit > 0, f"{suite.path.name}: {scope}: eval_limit must be > 0 (a suite compares final "
                              "evaluations)")
    return cfg


class _FlopsEstimator:
    """FLOPs per step of a config (module docstring, "Budgets"); loads each model once."""

    def __init__(self):
        self.models: dict[str, tuple[int, Any]] = {}  # name -> (flop_params, tokenizer)

    def __call__(self, cfg: RunConfig, model: str) -> float:
        from mathrl.compute import flop_params
        from mathrl.models import load_model
        from mathrl.rollout import encode_prompts
        from mathrl.tasks import get_task

        if model not in self.models:
            policy, tokenizer = load_model(model, seed=0)
            self.models[model] = flop_params(policy), tokenizer
        n, tokenizer = self.models[model]
        task = get_task(cfg.task, data_dir=cfg.data_dir, tasks_dir=cfg.tasks_dir, task_config=cfg.task_config or None)
        prompts = encode_prompts(tokenizer, task.load("train", limit=64, seed=cfg.seed))
        prompt = sum(map(len, prompts)) / len(prompts) * cfg.batch_size
        completion = (cfg.max_new_tokens or task.max_new_tokens) * cfg.batch_size
        seq = int(prompt + completion)
        return Recipe.from_config(cfg).passes.flops(n, int(prompt), int(completion), seq)


# ---------------------------------------------------------------------------- running
def status(run: PlannedRun) -> str:
    """done | resume | new (module docstring, "Resumable")."""
    done = (run.path / "eval" / "final.json").is_file()
    if done and (not run.is_init or (run.path / "final" / "config.json").is_file()):
        return "done"
    return "resume" if list_checkpoints(run.path / "checkpoints") else "new"


def check_same_config(run: PlannedRun) -> None:
    """A run folder made with another config must not be skipped into, resumed or mixed in."""
    if not is_run_dir(run.path):
        return
    saved = RunDir(run.path).read_config()
    planned = json.loads(to_json(run.cfg.to_dict()))
    # a field added after the run was made: the run had the behaviour of its default
    saved = {**json.loads(to_json(RunConfig().to_dict())), **saved}
    diff = [k for k in FIELDS if k not in NEUTRAL_KEYS and saved.get(k) != planned.get(k)]
    changes = ", ".join(f"{k}: {saved.get(k)!r} -> {planned.get(k)!r}" for k in diff[:3])
    _need(not diff, f"{run.path} was made with a different config ({changes}); delete it or choose another --output")


def execute(run: PlannedRun, progress: bool = True) -> str:
    """Bring one run to done; returns the action taken."""
    from mathrl.train import train

    state = status(run)
    if state == "done":
        return "skipped"
    if state == "resume":
        check_same_config(run)
    else:  # a start that never reached a checkpoint: nothing worth keeping
        shutil.rmtree(run.path, ignore_errors=True)
    train(run.cfg, progress=progress, resume=run.path if state == "resume" else None)
    return "resumed" if state == "resume" else "trained"


def final_accuracy(path: Path) -> float | None:
    final = RunDir(path).read_evals().get("final") or {}
    return final.get("accuracy")


def _acc(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def run_one(run: PlannedRun, progress: bool = False) -> Outcome:
    """Bring one planned run to done (in this process, a pool worker or a scheduler job:
    everything it needs travels in `run`). A finished run is never resumed and lands in
    results/: its checkpoints are dropped and its samples compressed."""
    from mathrl.checkpoint import RunAborted

    start = time.time()
    try:
        action = execute(run, progress)
    except RunAborted as e:
        return Outcome(run, "aborted", seconds=time.time() - start, note=str(e).splitlines()[0])
    shutil.rmtree(run.path / "checkpoints", ignore_errors=True)
    RunDir(run.path).compress_samples()
    return Outcome(run, action, final_accuracy(run.path), time.time() - start)


def compare(suite: str | Path | Suite, output: str | Path | None = None, overrides: dict[str, Any] | None = None,
            only: list[str] | None = None, dry_run: bool = False, progress: bool = True,
            log: Callable[[str], None] = print, jobs: int = 1, executor: str = "local",
            executor_options: dict[str, Any] | None = None) -> list[Outcome]:
    """Run (or with dry_run only list) a suite's grid, `jobs` runs at a time (mathrl/grid.py),
    then write <output>/report.md, summary.json and the plots. Returns one Outcome per run:
    the skipped ones first, then the others as they finish."""
    from mathrl.grid import execute_all

    suite = suite if isinstance(suite, Suite) else load_suite(suite)
    output = Path(output) if output is not None else Path("results") / suite.name
    _need(jobs >= 1, f"--jobs must be >= 1, got {jobs}")
    runs = plan(suite, output, overrides, only)
    for run in runs:  # a stale folder fails before hours of training, not in the middle
        if status(run) == "done":
            check_same_config(run)
    log(f"suite {suite.name} v{suite.version}: {len(runs)} runs -> {output}  (budget: {budget_line(suite, runs)})"
        + (f"; {jobs} at a time ({executor})" if jobs > 1 or executor != "local" else ""))
    outcomes: list[Outcome] = []
    todo = []
    for i, run in enumerate(runs, 1):
        head, state = f"[{i}/{len(runs)}] {run.name}", status(run)
        if dry_run or state == "done":
            acc = final_accuracy(run.path) if state == "done" else None
            log(f"{head}: {state}  {run_line(run)}" if dry_run else f"{head}: skipped (finished), final acc "
                                                                    f"{_acc(acc)}")
            outcomes += [] if dry_run else [Outcome(run, "skipped", acc)]
            continue
        log(f"{head}: {'resuming' if state == 'resume' else 'queued'}  {run_line(run)}")
        todo.append(run)

    def done(o: Outcome) -> None:
        outcomes.append(o)
        text = f"aborted: {o.note}" if o.action == "aborted" else f"{o.action}, final acc {_acc(o.final_acc)}"
        log(f"[{len(outcomes)}/{len(runs)}] {o.run.name}: {text} ({o.seconds / 60:.1f} min)")

    if dry_run:
        return outcomes
    with DirLock(output):  # one compare per output folder at a time (run_lock.py)
        try:
            if todo:
                execute_all(run_one, todo, jobs, executor, executor_options, progress and jobs == 1, done)
        except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: where the suite stopped, how to go on
            left = [r.name for r in todo if r.name not in {o.run.name for o in outcomes}]
            log(f"{str(e) or 'interrupted'}: {len(outcomes)} of {len(runs)} runs finished, not {', '.join(left)}; "
                f"the same command continues: finished runs are skipped, interrupted ones resume from their "
                f"last checkpoint")
            raise
        # with --only, the report still covers every run of the suite that exists
        report = write_suite_report(suite, plan(suite, output, overrides) if only else runs, output)
        log(f"report: {report}")
    return outcomes


# ---------------------------------------------------------------------------- the report
def power_plan(suite: Suite, output: Path, overrides: dict[str, Any] | None = None, delta: float = 0.02) -> str:
    """`--plan`: the finished runs of the suite as a pilot -> the seeds each claim needs
    (claims.py, "Power"), as markdown."""
    from mathrl.claims import markdown
    from mathrl.report import group_runs, load_run, pairwise

    runs = [r for r in plan(suite, output, overrides) if not r.is_init and status(r) == "done"]
    _need(bool(runs), f"--plan needs finished runs of suite {suite.name} under {output} (a pilot); none found")
    result = pairwise(group_runs([load_run(r.path) for r in runs]), delta=delta)
    lines = markdown(result)
    _need(any(line == "## Power" for line in lines),
          f"--plan needs at least 2 finished seeds per algorithm with evaluation samples under {output}")
    return "\n".join(lines[lines.index("## Power"):] + [f"Intervals: {result['method']}."])


def budget_line(suite: Suite, runs: list[PlannedRun]) -> str:
    grid = [r for r in runs if not r.is_init]
    if suite.budget:
        return f"equal estimated FLOPs, {suite.budget['flops']:.3g} per run"
    return "equal samples, " + ", ".join(sorted({f"{r.cfg.max_steps} steps x {r.cfg.prompts_per_step} prompts x "
                                                 f"{r.cfg.group_size} samples" for r in grid}))


def run_line(run: PlannedRun) -> str:
    c = run.cfg
    text = (f"algo={c.algo} task={Path(c.task).stem} seed={c.seed} steps={c.max_steps} "
            f"batch={c.prompts_per_step}x{c.group_size} max_new_tokens={c.max_new_tokens} lr={c.lr:g}")
    return text + (f" est_flops/step={run.flops_per_step:.3g}" if run.flops_per_step else "")


def write_suite_report(suite: Suite, runs: list[PlannedRun], output: Path) -> Path:
    """report.write_report over every run folder of the plan, then a section saying which
    suite, which budget and which settings each algorithm had."""
    from mathrl.report import write_report

    report_order = sorted(runs, key=lambda r: (not r.is_init, list(suite.algorithms).index(r.algo)
                                               if r.algo in suite.algorithms and not r.is_init else -1))
    dirs = [r.path for r in report_order if is_run_dir(r.path)]
    _need(bool(dirs), f"no run of suite {suite.name} has started under {output}; nothing to report")
    path = write_report(dirs, output, f"{suite.name} (suite v{suite.version})",
                        warm_start=[r.path for r in report_order if r.is_init])
    rows = []  # one per algorithm and task: seeds share every setting but the seed
    for r in report_order:
        c = r.cfg
        rows.append(f"| {'init: ' if r.is_init else ''}{c.algo} | {Path(c.task).stem} | {c.max_steps} | "
                    f"{c.prompts_per_step} x {c.group_size} | {c.max_new_tokens or 'task default'} | {c.lr:g} | "
                    f"{c.kl_coef:g} | {c.ppo_epochs} x {c.minibatches} | "
                    f"{'—' if r.flops_per_step is None else f'{r.flops_per_step:.3g}'} |")
    text = [
        "", "## Suite", "",
        f"`{suite.path.name}` version {suite.version}: {suite.description}", "",
        *([f"Paper's finding to compare with: {suite.finding}", ""] if suite.finding else []),
        f"Seeds: {', '.join(map(str, suite.seeds))}. Budget: {budget_line(suite, runs)}"
        + ("; max_steps per algorithm = floor(budget / estimated FLOPs per step), the estimate "
           "assuming every completion reaches max_new_tokens (mathrl/compare.py)." if suite.budget else
           "; every algorithm sees the same number of prompts and samples with the same "
           "completion limit (its FLOPs differ: see the table above)."),
        "", *([_warm_start_line(suite.init_from)] if suite.init_from else []), "",
        "| algorithm | task | steps | prompts x samples | max new tokens | lr | KL coef | epochs x minibatches "
        "| est. FLOPs/step |", "|---|---|---|---|---|---|---|---|---|", *dict.fromkeys(rows), "",
    ]
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n".join(text))
    return path


def _warm_start_line(init: dict[str, Any]) -> str:
    shared = "one per seed" if init.get("per_seed", True) else "shared by all seeds"
    return (f"Warm start: every run starts from the final model of its `init-{init['algo']}` run "
            f"({init['steps']} steps, {shared}).")
