"""The run directory (DESIGN.md, "The run directory"): the only files other tools read.

    <run>/config.json      resolved config + environment_info()
    <run>/metrics.jsonl    one JSON object per step
    <run>/eval/<name>.json evaluation results
    <run>/samples/<name>.jsonl  (.jsonl.gz once compressed for committing: read_samples reads both)
    <run>/checkpoints/     resumable state (written by checkpoint.py)
    <run>/final/           a plain Hugging Face model folder
    <run>/.lock            the running process's lock: pid, host, start time (run_lock.py)
    <run>/discarded-<time>/  what `--resume --restart` moved aside (resume.py)

JSON safety: the JSON standard has no NaN or Infinity (Python writes them, but jq, JS and
most readers reject the file). Every non-finite float is written as null, so a reader sees
"no value" rather than a crash; the trainer warns about the NaN where it happens. Tensors
and numpy scalars are written through `.item()`, paths as strings, tuples as lists.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import platform
import re
import subprocess
import tempfile
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from mathrl.distributed import gather_objects
from mathrl.presets import PRESETS

_SURROGATE = re.compile("[\ud800-\udfff]")

# Versions recorded in config.json: the packages that can move a number.
_PACKAGES = ("mathrl", "torch", "transformers", "accelerate", "datasets", "sympy", "vllm", "peft")


def jsonable(x: Any) -> Any:
    """A copy of x that json.dumps accepts with allow_nan=False (see module docstring)."""
    if x is None or isinstance(x, bool):
        return x
    if isinstance(x, str):
        # A lone surrogate (a custom backend or hook can return one; tokenizers never do) has no
        # UTF-8 encoding: writing it would crash the run, so it becomes U+FFFD.
        return x if x.isascii() else _SURROGATE.sub("\ufffd", x)
    if isinstance(x, int):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "item") and callable(x.item):  # 0-d tensors, numpy scalars
        return jsonable(x.item())
    raise TypeError(f"cannot write {type(x).__name__} to a run directory: {x!r}")


def to_json(x: Any, indent: int | None = None) -> str:
    """Strict JSON text of jsonable(x): what every file of a run directory is written with."""
    return json.dumps(jsonable(x), indent=indent, allow_nan=False, ensure_ascii=False)


def _write_atomic(path: Path, text: str | bytes) -> None:
    """Temp file beside `path`, fsync, os.replace: a reader sees old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8") if isinstance(text, str) else text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:  # a failed write() names no file: say which
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


def _check_name(name: str) -> str:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"a result name is a plain file stem, got {name!r}")
    return name


class RunDir:
    """Reader and writer of one run directory. Nothing is created until the first write."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._tail_checked = False

    config_path = property(lambda self: self.path / "config.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    eval_dir = property(lambda self: self.path / "eval")
    samples_dir = property(lambda self: self.path / "samples")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    final_dir = property(lambda self: self.path / "final")

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # ---------------------------------------------------------------- config
    def write_config(self, config: dict[str, Any]) -> None:
        _write_atomic(self.config_path, to_json(config, indent=2) + "\n")

    def read_config(self) -> dict[str, Any]:
        return json.loads(self.config_path.read_text(encoding="utf-8"))

    # ---------------------------------------------------------------- metrics
    def append_metrics(self, row: dict[str, Any]) -> None:
        """Append one step's metrics and fsync, so a crash loses at most the step in flight."""
        if "step" not in row:
            raise ValueError("a metrics row needs a 'step' key")
        line = to_json(row) + "\n"
        self.path.mkdir(parents=True, exist_ok=True)
        if not self._tail_checked:
            self._drop_torn_tail()
            self._tail_checked = True
        try:
            with open(self.metrics_path, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            if e.filename is not None:
                raise
            raise OSError(e.errno, e.strerror, str(self.metrics_path)) from e  # name the file

    def _drop_torn_tail(self) -> None:
        """After a crash mid-write the file may end in half a line; appending to it would
        glue the next row onto the fragment, so cut back to the last newline first."""
        if not self.metrics_path.exists():
            return
        data = self.metrics_path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.metrics_path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)  # rfind -1 -> 0: the only line was torn

    def read_metrics(self) -> list[dict[str, Any]]:
        """All rows in order. A torn last line (crash mid-append) is ignored; a bad line
        anywhere else is corruption and raises."""
        if not self.metrics_path.exists():
            return []
        lines = self.metrics_path.read_text(encoding="utf-8").split("\n")
        rows = []
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                if i == len(lines) - 1:  # no newline after it: the write never finished
                    break
                raise
        return rows

    def rewind_metrics(self, step: int) -> None:
        """Keep only rows with row['step'] <= step and not final: on resume from a checkpoint
        at `step`, the steps logged after it (and the final eval, logged after the final
        checkpoint) are about to be redone and must not appear twice."""
        kept = [r for r in self.read_metrics() if r["step"] <= step and not r.get("final")]
        _write_atomic(self.metrics_path, "".join(to_json(r) + "\n" for r in kept))
        self._tail_checked = True

    # ---------------------------------------------------------------- eval
    def write_eval(self, name: str, result: dict[str, Any]) -> None:
        path = self.eval_dir / f"{_check_name(name)}.json"
        _write_atomic(path, to_json(result, indent=2) + "\n")

    def read_evals(self) -> dict[str, dict[str, Any]]:
        """{name: result} for every eval/<name>.json, sorted by name."""
        if not self.eval_dir.is_dir():
            return {}
        return {
            p.stem: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted(self.eval_dir.glob("*.json"))
        }

    # ---------------------------------------------------------------- samples
    def write_samples(self, name: str, rows: Iterable[dict[str, Any]]) -> None:
        path = self.samples_dir / f"{_check_name(name)}.jsonl"
        _write_atomic(path, "".join(to_json(r) + "\n" for r in rows))

    def read_samples(self, name: str) -> list[dict[str, Any]]:
        """The rows of samples/<name>.jsonl, or of its gzip-compressed form .jsonl.gz (how
        committed results keep their samples: compress_samples)."""
        path = self.samples_dir / f"{_check_name(name)}.jsonl"
        if not path.is_file() and path.with_suffix(".jsonl.gz").is_file():
            text = gzip.decompress(path.with_suffix(".jsonl.gz").read_bytes()).decode("utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        return [json.loads(x) for x in text.splitlines() if x.strip()]

    def compress_samples(self, keep_train_every: int = 0) -> None:
        """Make a finished run lean enough to commit: every samples/*.jsonl becomes .jsonl.gz
        (eval samples in full: they are the evidence a reader re-grades), and with
        keep_train_every = k only every k-th step's training samples are kept."""
        for path in sorted(self.samples_dir.glob("*.jsonl")):
            step = path.stem.removeprefix("train-step-")
            if keep_train_every and step != path.stem and step.isdigit() and int(step) % keep_train_every:
                path.unlink()
                continue
            gz = path.with_suffix(".jsonl.gz")
            _write_atomic(gz, gzip.compress(path.read_bytes(), mtime=0))
            path.unlink()


def is_run_dir(path: str | Path) -> bool:
    """A run directory is one with a config.json: without it a run cannot be grouped."""
    return (Path(path) / "config.json").is_file()


def environment_info(repo: str | Path | None = None) -> dict[str, Any]:
    """Python and package versions plus the git commit, for config.json.

    Versions come from installed metadata, so nothing heavy is imported. No hostname, user
    or path: config.json is committed with the results.
    """
    versions = {}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    repo = Path(repo) if repo is not None else Path(__file__).resolve().parent
    return {
        "python": platform.python_version(),
        "packages": versions,
        "git_commit": _git(repo, "rev-parse", "HEAD"),
        # a dirty tree means the commit alone does not reproduce the run
        "git_dirty": _git_dirty(repo),
    }


def _git(repo: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _git_dirty(repo: Path) -> bool | None:
    if _git(repo, "rev-parse", "HEAD") is None:
        return None
    status = _git(repo, "status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


def config_change_lines(config: dict[str, Any]) -> list[str]:
    """One line per setting change recorded by `--resume --allow-config-change` (resume.py):
    'from step 3: lr 0.001 -> 0.01'."""
    return [f"from step {c['step']}: " + ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in c["changes"].items())
            for c in config.get("config_changes", [])]


def summarize(run_dir: Path, metrics: list[dict[str, Any]]) -> str:
    """A short human summary for the end of `mathrl run`."""
    steps = [m for m in metrics if "reward/mean" in m]
    evals = [m for m in metrics if any(k.endswith("/acc") for k in m)]
    acc = lambda m: next(v for k, v in m.items() if k.endswith("/acc"))  # noqa: E731
    lines = [f"run directory: {run_dir}"]
    if steps:
        first, last = steps[0], steps[-1]
        lines.append(f"steps: {last['step']}  reward: {first['reward/mean']:.3f} (step {first['step']}) -> "
                     f"{last['reward/mean']:.3f} (step {last['step']})")
        if math.isfinite(last.get("time/cumulative_s", math.nan)):
            lines.append(f"time: {last['time/cumulative_s']:.0f}s  FLOPs: {last.get('flops/cumulative', 0):.3g}")
    if evals:
        lines.append(f"eval accuracy: {acc(evals[0]):.3f} (step {evals[0]['step']}) -> "
                     f"{acc(evals[-1]):.3f} (step {evals[-1]['step']})")
    if is_run_dir(run_dir):
        lines += [f"settings changed on resume, {line}" for line in config_change_lines(RunDir(run_dir).read_config())]
    return "\n".join(lines)


def write_samples(state, batch, rewards) -> None:
    """Every `samples_every` steps, the global batch's completions with their grades and rewards."""
    every = state.cfg.samples_every
    if not every or (state.step + 1) % every and state.step != 0:
        return
    rows = [{"step": state.step + 1, "prompt": p.question, "completion": c, "gold": p.gold,
             "extracted": g.extracted if g else None, "correct": g.correct if g else None, "reward": float(r)}
            for p, c, g, r in zip(batch.problems, batch.completions, batch.grades or [None] * batch.size, rewards)]
    rows = gather_objects(state.accelerator, rows)  # every rank's rows: the file holds the whole global batch
    if state.accelerator.is_main_process:
        state.run.write_samples(f"train-step-{state.step + 1:06d}", rows)


def default_run_dir(cfg) -> Path:
    """runs/<algo>-<task>-<model>-s<seed>-<time>."""
    model = Path(cfg.model).name if Path(cfg.model).exists() else cfg.model.replace("/", "_")
    return Path("runs") / f"{cfg.algo}-{Path(cfg.task).stem}-{model}-s{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_config_record(state) -> dict[str, Any]:
    """config.json: the resolved config, what was derived from it, the preset's first line and the environment."""
    cfg, task = state.cfg, state.task
    return {**cfg.to_dict(), "resolved": {
        "max_new_tokens": state.max_new_tokens, "overlong_buffer": state.overlong_buffer,
        "micro_batch_size": state.micro_batch_size,
        "task": task.ref, "n_train_problems": len(state.train_problems),
        "n_eval_problems": len(state.eval_problems), "n_params_flop": state.n_params,
        "world_size": state.accelerator.num_processes, "device": str(state.device)},
        "preset_doc": (PRESETS[cfg.algo].__doc__ or "").strip().splitlines()[0],
        "environment": environment_info()}
