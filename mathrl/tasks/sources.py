"""Where a task's records come from: a plain dict registry of loaders, `SOURCES`.

A loader turns (task context, split) into a list of raw records (dicts); field mapping, gold
extraction and prompts are the same for every source and live in task.py. Heavy packages
(datasets, reasoning_gym, pyarrow) are imported inside the loader that needs them, so that
`import mathrl.tasks` and the CLI stay fast.
"""

from __future__ import annotations

import csv
import difflib
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from mathrl.tasks.spec import MAP, STR, Field, TaskSpecError, load_hook, validate


class TaskDataError(ValueError):
    """A task whose records cannot be found or read; the one-line message lists what was tried."""


@dataclass(frozen=True)
class Ctx:
    """What a loader needs to know about the task it loads for."""

    name: str
    source: dict  # the validated spec["source"]
    base_dir: Path  # folder of the task YAML: relative files and hooks resolve against it
    where: str  # the YAML path, for error messages
    data_dir: str | None  # --data DIR


# ---- local files ----------------------------------------------------------------------------


class Records(list):
    """A file's records, with where each one came from ("<file>: line 7"), so that an error
    about a record's fields can name the line to fix."""

    def __init__(self, rows=(), origins=()):
        super().__init__(rows)
        self.origins = list(origins)


def _not_utf8(path: Path, e: UnicodeDecodeError, line: int | None = None) -> TaskDataError:
    at = f"line {line}" if line else f"byte {e.start}"
    return TaskDataError(f"{path}: {at} is not UTF-8 text ({e.reason} at {e.object[e.start:e.start + 1]!r})")


def _object(path: Path, where: str, row: Any) -> dict:
    if not isinstance(row, dict):
        raise TaskDataError(f"{path}: {where} is a JSON {type(row).__name__}, not an object (one record)")
    return row


# Policy for malformed data (README "Task data files"): fail on the first bad record, naming the
# file and line. A skipped line would silently change the problem set, its size and its order.
def _read_jsonl(path: Path) -> Records:
    rows = Records()
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise _not_utf8(path, e, n) from None
            if line.strip():
                try:
                    rows.append(_object(path, f"line {n}", json.loads(line)))
                except json.JSONDecodeError as e:
                    raise TaskDataError(f"{path}: line {n} is not JSON ({e.msg})") from None
                rows.origins.append(f"{path}: line {n}")
    return rows


def _read_json(path: Path) -> Records:
    try:
        rows = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from None
    except json.JSONDecodeError as e:
        raise TaskDataError(f"{path}: line {e.lineno} is not valid JSON ({e.msg})") from None
    if not isinstance(rows, list):
        raise TaskDataError(f"{path}: a .json data file must hold a list of records")
    return Records([_object(path, f"record {i}", r) for i, r in enumerate(rows)],
                   [f"{path}: record {i}" for i in range(len(rows))])


def _read_csv(path: Path) -> Records:
    rows = Records()
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            for row in reader:
                extra, missing = row.pop(None, None) or [], sum(v is None for v in row.values())
                if extra or missing:  # more or fewer cells than the header: shifted columns
                    raise TaskDataError(f"{path}: line {reader.line_num} has {len(row) + len(extra) - missing} "
                                        f"fields, the header has {len(reader.fieldnames)}")
                rows.append(row)
                rows.origins.append(f"{path}: line {reader.line_num}")
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from None
    except csv.Error as e:
        raise TaskDataError(f"{path}: line {reader.line_num} is not CSV ({e})") from None
    return rows


def _read_parquet(path: Path) -> Records:
    import pyarrow.parquet as pq  # installed with `datasets`

    rows = pq.read_table(path).to_pylist()
    return Records(rows, [f"{path}: row {i}" for i in range(len(rows))])


READERS: dict[str, Callable[[Path], Records]] = {
    ".jsonl": _read_jsonl,
    ".json": _read_json,
    ".csv": _read_csv,
    ".parquet": _read_parquet,
}

# `file.jsonl[:80%]`, `file.jsonl[100:]`: the `datasets` split-slicing syntax, so that one local
# file can provide disjoint train and test splits.
_SLICE = re.compile(r"^(?P<file>.+?)\[(?P<a>-?\d*%?):(?P<b>-?\d*%?)\]$")


def _bound(text: str, n: int, default: int) -> int:
    if not text:
        return default
    if text.endswith("%"):
        return round(n * int(text[:-1]) / 100)
    return int(text)


def read_file(ref: str, base_dir: Path) -> Records:
    """Read `ref` (a path, optionally with a `[a:b]` slice), relative to `base_dir`."""
    m = _SLICE.match(ref)
    path = Path(m["file"] if m else ref).expanduser()
    path = path if path.is_absolute() else base_dir / path
    reader = READERS.get(path.suffix)
    if reader is None:
        raise TaskDataError(f"{path}: unsupported data file type {path.suffix!r}; "
                            f"allowed: {', '.join(READERS)}")
    if not path.is_file():
        raise TaskDataError(f"data file {path} does not exist")
    rows = reader(path)
    if m:
        cut = slice(_bound(m["a"], len(rows), 0), _bound(m["b"], len(rows), len(rows)))
        rows = Records(rows[cut], rows.origins[cut])
    return rows


def _load_files(ctx: Ctx, split: str) -> list[dict]:
    return read_file(ctx.source["files"][split], ctx.base_dir)


# ---- the Hugging Face Hub, with its offline routes --------------------------------------------

HUB_TIMEOUT_S = 10.0  # reachability probe; `load_dataset` alone retries for ~25 s offline


def _hub_offline_by_env() -> str | None:
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return var
    return None


def probe_hub(timeout: float = HUB_TIMEOUT_S) -> str | None:
    """None if the Hub answers within `timeout` seconds, else why not.

    Runs in a daemon thread because DNS resolution ignores socket timeouts; urllib honours
    the *_PROXY variables, so a proxied Hub counts as reachable.
    """
    import urllib.error
    import urllib.request

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    result: list[str | None] = []

    def probe() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"),
                                   timeout=timeout)
            result.append(None)
        except urllib.error.HTTPError:  # any HTTP answer means the server is there
            result.append(None)
        except Exception as e:  # noqa: BLE001 - every failure is a reason to report
            reason = getattr(e, "reason", e)
            result.append(f"{endpoint} unreachable ({reason})")

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return result[0] if result else f"{endpoint} did not answer within {timeout:.0f} s"


def _hf_load(src: dict, split: str, offline: bool) -> list[dict]:
    import datasets
    import datasets.config as dconfig
    import huggingface_hub.constants as hconst

    saved = dconfig.HF_HUB_OFFLINE, hconst.HF_HUB_OFFLINE
    # in-process equivalent of HF_HUB_OFFLINE=1: the cache is consulted and no request is made
    dconfig.HF_HUB_OFFLINE = hconst.HF_HUB_OFFLINE = offline or saved[0]
    try:
        ds = datasets.load_dataset(src["path"], src.get("name"), split=src["splits"][split],
                                   revision=src.get("revision"))
    finally:
        dconfig.HF_HUB_OFFLINE, hconst.HF_HUB_OFFLINE = saved
    return [dict(row) for row in ds]


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:200]


def _local_dirs(ctx: Ctx) -> list[tuple[str, list[Path] | None]]:
    """The two local routes, in order, as (label, candidate folders or None if unset)."""
    env = os.environ.get("MATHRL_DATA_DIR")
    data = Path(ctx.data_dir).expanduser() if ctx.data_dir else None
    return [
        ("--data DIR", [data, data / ctx.name] if data else None),
        ("$MATHRL_DATA_DIR", [Path(env).expanduser() / ctx.name] if env else None),
    ]


def _load_hub(ctx: Ctx, split: str) -> list[dict]:
    src = ctx.source
    file = src["files"].get(split, f"{split}.jsonl")
    tried = []
    for label, dirs in _local_dirs(ctx):
        if dirs is None:
            tried.append(f"{label}: not set")
            continue
        for d in dirs:
            if (d / file).is_file():
                return read_file(file, d)
        tried.append(f"{label}: no {' or '.join(str(d / file) for d in dirs)}")
    hub_id = f"{src['path']}" + (f" ({src['name']})" if src.get("name") else "")
    try:
        return _hf_load(src, split, offline=True)
    except Exception as e:  # noqa: BLE001 - datasets raises many types for "not cached"
        tried.append(f"datasets cache: no usable copy of {hub_id} ({_first_line(e)})")
    start = time.perf_counter()
    why = _hub_offline_by_env()
    if why:
        tried.append(f"Hub: skipped because {why} is set")
    elif (why := probe_hub()) is not None:
        tried.append(f"Hub: {why} after {time.perf_counter() - start:.1f} s")
    else:
        try:
            return _hf_load(src, split, offline=False)
        except Exception as e:  # noqa: BLE001
            tried.append(f"Hub: load_dataset({src['path']!r}) failed ({_first_line(e)})")
    raise TaskDataError(
        f"task '{ctx.name}' split '{split}': no data found. Tried "
        + "; ".join(f"{i}) {t}" for i, t in enumerate(tried, 1))
        + f". Fix: put {file} into DIR/{ctx.name}/ and pass --data DIR "
        f"(or set MATHRL_DATA_DIR=DIR), or give this machine Hub access.")


# ---- procedural generators ----------------------------------------------------------------


def _load_reasoning_gym(ctx: Ctx, split: str) -> list[dict]:
    import reasoning_gym
    from reasoning_gym.factory import DATASETS

    src = ctx.source
    name = src["dataset"]
    if name not in DATASETS:
        close = difflib.get_close_matches(name, DATASETS, n=5) or sorted(DATASETS)[:5]
        raise TaskSpecError(f"{ctx.where}: field 'source.dataset' is {name!r}, not a "
                            f"reasoning_gym dataset; close: {', '.join(close)} "
                            f"({len(DATASETS)} known, see reasoning_gym.factory.DATASETS)")
    try:
        ds = reasoning_gym.create_dataset(name, size=src["sizes"][split],
                                          seed=src["seeds"][split], **src["config"])
    except (TypeError, AssertionError, ValueError) as e:
        raise TaskSpecError(f"{ctx.where}: field 'source.config' rejected by reasoning_gym "
                            f"{name!r}: {_first_line(e)}") from None
    return list(ds)


def _load_generator(ctx: Ctx, split: str) -> list[dict]:
    src = ctx.source
    generate = load_hook(src["hook"], ctx.base_dir, ctx.where, "source.hook")
    try:
        return list(generate(split=split, size=src["sizes"][split], seed=src["seeds"][split],
                             config=src["config"]))
    except (TypeError, ValueError, KeyError) as e:
        raise TaskSpecError(f"{ctx.where}: field 'source.config' rejected by "
                            f"{src['hook']}: {_first_line(e)}") from None


# ---- the registry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    load: Callable[[Ctx, str], list[dict]]
    schema: dict[str, Field]  # keys of `source:` besides `type`
    splits_key: str  # the mapping whose keys are the available splits
    procedural: bool = False  # generated: train drops questions that occur in test
    describe: Callable[[dict], str] = lambda src: src["type"]


_SIZES = Field(MAP, schema=None)  # split -> number of records (informational for files/hub)
_FILES = Field(MAP, required=True)  # split -> file path (optionally sliced: `x.jsonl[:80%]`)
_PROCEDURAL = {
    "config": Field(MAP, default={}),
    "sizes": Field(MAP, default={"train": 10000, "test": 500}),
    # item i of a split is drawn from Random(seed + i), as reasoning_gym does, so disjoint
    # [seed, seed + size) ranges mean train and test never share a random stream
    "seeds": Field(MAP, default={"train": 0, "test": 1_000_000_000}),
}
_FILE_SOURCE = Source(_load_files, {"files": _FILES, "sizes": _SIZES}, "files", describe=lambda src:
                      f"{src['type']}:" + ",".join(dict.fromkeys(
                          Path(_SLICE.sub(r"\g<file>", str(f))).name
                          for f in src["files"].values())))

SOURCES: dict[str, Source] = {
    "hub": Source(_load_hub, {
        "path": Field(STR, required=True),  # Hub dataset id, e.g. owner/name
        "name": Field(STR),  # Hub config name, e.g. main
        "revision": Field(STR),
        "splits": Field(MAP, default={"train": "train", "test": "test"}),  # ours -> Hub's
        "files": Field(MAP, default={}),  # ours -> file name in the local data folder
        "sizes": _SIZES,
    }, "splits", describe=lambda src: f"hub:{src['path']}"),
    "jsonl": _FILE_SOURCE,
    "parquet": _FILE_SOURCE,
    "csv": _FILE_SOURCE,
    "reasoning_gym": Source(_load_reasoning_gym, {"dataset": Field(STR, required=True),
                                                  **_PROCEDURAL}, "sizes", procedural=True,
                            describe=lambda src: f"reasoning_gym:{src['dataset']}"),
    "generator": Source(_load_generator, {"hook": Field(STR, required=True), **_PROCEDURAL},
                        "sizes", procedural=True,
                        describe=lambda src: f"generator:{src['hook']}"),
}


def validate_source(raw: Any, where: str) -> dict:
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str) or raw["type"] not in SOURCES:
        got = raw.get("type") if isinstance(raw, dict) else raw
        raise TaskSpecError(f"{where}: field 'source.type' is {got!r}; allowed: "
                            f"{', '.join(SOURCES)}")
    kind = SOURCES[raw["type"]]
    src = {"type": raw["type"],
           **validate({k: v for k, v in raw.items() if k != "type"}, kind.schema, where,
                      "source.")}
    if not src[kind.splits_key]:
        raise TaskSpecError(f"{where}: field 'source.{kind.splits_key}' must name at least one "
                            f"split, e.g. {{test: ...}}")
    if kind.procedural:
        _check_seed_ranges(src, where)
    return src


def _check_seed_ranges(src: dict, where: str) -> None:
    sizes, seeds = src["sizes"], src["seeds"]
    for split in sizes:
        if not isinstance(sizes[split], int) or not isinstance(seeds.get(split), int):
            raise TaskSpecError(f"{where}: fields 'source.sizes.{split}' and "
                                f"'source.seeds.{split}' must both be integers")
    spans = sorted((seeds[s], seeds[s] + sizes[s], s) for s in sizes)
    for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
        if start < end:
            raise TaskSpecError(f"{where}: field 'source.seeds': splits {a!r} and {b!r} "
                                f"overlap (item i uses seed + i); allowed: seeds at least "
                                f"`size` apart")
