"""The task spec: one YAML file -> one validated, defaults-filled dict.

The schema is data (nested dicts of `Field`s) so that an error can always name the file, the
field and what is allowed, and so that `mathrl tasks show` prints exactly what a run uses.
Source-specific keys are declared by each source in `sources.SOURCES`, not here.
"""

from __future__ import annotations

import copy
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from mathrl.verify import EXTRACTORS as VERIFY_EXTRACTORS
from mathrl.verify import MODES as VERIFY_MODES


class TaskSpecError(ValueError):
    """A task YAML that cannot be used; the one-line message names file, field and the fix."""


@dataclass(frozen=True)
class Field:
    types: tuple  # accepted Python types after yaml.safe_load
    required: bool = False
    default: Any = None
    choices: tuple | None = None  # allowed values (the error lists them)
    schema: dict | None = None  # nested schema when the value is a mapping
    items: dict | None = None  # schema of each mapping in a list


STR, INT, NUM, BOOL = (str,), (int,), (int, float), (bool,)
SCALAR = (str, int, float)
MAP, LIST = (dict,), (list,)

# The verifier's own registries (importing them loads no SymPy): a typo in a YAML fails at
# load time, not after the first rollout.
EXTRACTORS = tuple(VERIFY_EXTRACTORS)
MODES = tuple(VERIFY_MODES)
FORMATS = ("chat", "plain")

SCHEMA: dict[str, Field] = {
    "name": Field(STR, required=True),
    "version": Field(INT, required=True),  # bump on any change that can move a score
    "description": Field(STR, required=True),
    "citation": Field(STR, default=""),
    "license": Field(STR, default=""),
    "source": Field(MAP, required=True),  # keys checked by the source type (sources.py)
    "fields": Field(MAP, required=True, schema={
        "question": Field(STR, required=True),  # dotted path into a record, e.g. metadata.x
        "answer": Field(STR, required=True),
        "solution": Field(STR),  # worked solution, the SFT target
        "id": Field(STR),  # default: "<split>/<index in source order>"
        "meta": Field(LIST, default=[]),  # dotted paths copied into Problem.meta
    }),
    "gold": Field(MAP, default={}, schema={
        "pattern": Field(STR),  # regex; the LAST match's group 1 (or whole match) is the gold
        "remove": Field(LIST, default=[]),  # substrings deleted from the gold (e.g. ",")
        "hook": Field(STR),  # "file.py:function" (str -> str), applied before pattern/remove
    }),
    "solution": Field(MAP, default={}, schema={
        "remove": Field(LIST, default=[]),  # regexes deleted from the solution
        "append_answer": Field(BOOL, default=True),  # end it with prompt.answer_format
    }),
    "prompt": Field(MAP, required=True, schema={
        "format": Field(STR, default="chat", choices=FORMATS),
        "system": Field(STR, default=""),
        "user": Field(STR, required=True),  # must contain {question}
        "plain": Field(STR),  # plain-completion template; default: user + "\nAnswer:"
        "answer_format": Field(STR, required=True),  # how a completion ends; has {answer}
        "fewshot": Field(LIST, default=[], items={
            "question": Field(STR, required=True),
            "response": Field(STR, required=True),  # the full assistant turn
            "answer": Field(SCALAR),  # if given, `tasks check` grades the response against it
            "meta": Field(MAP, default={}),  # Problem.meta for a grader hook's check of it
        }),
    }),
    "grader": Field(MAP, required=True, schema={
        "extractor": Field(STR, default="auto", choices=EXTRACTORS),
        # the format-insensitive grade reported beside the strict one (never the reward), so that
        # learning the answer format is not read as learning to reason; `auto` falls back to the
        # last number when no answer marker is found
        "lenient_extractor": Field(STR, default="auto", choices=EXTRACTORS),
        "mode": Field(STR, default="math", choices=MODES),
        "rel_tol": Field(NUM, default=1e-6),
        "timeout": Field(NUM, default=2.0),
        "percent_as_fraction": Field(BOOL, default=False),  # "50%" equals 0.5 (else 50)
        # "file.py:function": the task's own verdict (mathrl/tasks/hooks.py) on the completion,
        # the extracted answer and the problem, instead of `mode`; `timeout` is per call
        "hook": Field(STR),
    }),
    "generation": Field(MAP, required=True, schema={
        "max_new_tokens": Field(INT, required=True),
        "temperature": Field(NUM),
        "stop": Field(LIST),
    }),
    "examples": Field(LIST, required=True, items={
        "completion": Field(STR, required=True),
        "gold": Field(SCALAR, required=True),
        "correct": Field(BOOL, required=True),
        "meta": Field(MAP, default={}),  # Problem.meta, for a grader hook
        "repeat": Field(INT, default=1),  # the completion repeated N times (a 1 MB input, short)
        "note": Field(STR, default=""),
    }),
}


def _type_name(types: tuple) -> str:
    names = {str: "string", int: "integer", float: "number", bool: "true/false", dict: "mapping",
             list: "list"}
    return " or ".join(dict.fromkeys(names[t] for t in types))


def _is(value: Any, types: tuple) -> bool:
    # bool is an int in Python; a YAML `true` where a number belongs is a mistake
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def validate(obj: dict, schema: dict[str, Field], where: str, prefix: str = "") -> dict:
    """Check `obj` against `schema`; return a copy with defaults filled in."""
    out = {}
    unknown = sorted(set(obj) - set(schema))
    if unknown:
        raise TaskSpecError(f"{where}: unknown field '{prefix}{unknown[0]}'; allowed in "
                            f"{prefix.rstrip('.') or 'the top level'}: {', '.join(schema)}")
    for key, f in schema.items():
        name = f"{prefix}{key}"
        if obj.get(key) is None:
            if f.required:
                raise TaskSpecError(f"{where}: missing required field '{name}' "
                                    f"({_type_name(f.types)})")
            default = copy.deepcopy(f.default)
            # an omitted section still gets its own defaults (e.g. no `gold:` -> no pattern)
            out[key] = validate(default, f.schema, where, f"{name}.") if f.schema else default
            continue
        value = obj[key]
        if not _is(value, f.types):
            raise TaskSpecError(f"{where}: field '{name}' must be a {_type_name(f.types)}, "
                                f"got {type(value).__name__} {value!r:.60}")
        if f.choices is not None and value not in f.choices:
            raise TaskSpecError(f"{where}: field '{name}' is {value!r}; allowed: "
                                f"{', '.join(map(str, f.choices))}")
        if f.schema is not None:
            value = validate(value, f.schema, where, f"{name}.")
        if f.items is not None:
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    raise TaskSpecError(f"{where}: field '{name}[{i}]' must be a mapping with "
                                        f"keys {', '.join(f.items)}")
            value = [validate(item, f.items, where, f"{name}[{i}].")
                     for i, item in enumerate(value)]
        out[key] = value
    return out


def deep_merge(base: dict, override: dict) -> dict:
    """`override` wins; mappings merge key by key, everything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml(path: Path) -> dict:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise TaskSpecError(f"{path}: cannot read task file ({e.strerror})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise TaskSpecError(f"{path}: invalid YAML{at}: {problem}") from None
    if not isinstance(raw, dict):
        raise TaskSpecError(f"{path}: a task file must be a YAML mapping, got "
                            f"{type(raw).__name__}")
    return raw


def read_task_yaml(path: Path) -> dict:
    """A task file's mapping, with `include: other.yaml` resolved.

    A variant (another prompt, grader or difficulty) names its base task in the same folder
    and states only what differs; the rest is deep-merged from the base (mappings key by key,
    lists such as `examples:` replaced whole). One level only: a base cannot include, so a
    variant reads in one glance. Same folder only: the base's relative paths (hooks, data
    files) then mean the same thing in both. The variant carries its own `version`: bump it
    when the base changes in a way that can move a score.
    """
    raw = read_yaml(path)
    if "include" not in raw:
        return raw
    name = raw.pop("include")
    if not isinstance(name, str) or Path(name).name != name or not name.endswith((".yaml", ".yml")):
        raise TaskSpecError(f"{path}: field 'include' must be the file name of a task YAML in "
                            f"the same folder, e.g. 'base-task.yaml'; got {name!r}")
    base_path = path.parent / name
    if not base_path.is_file():
        raise TaskSpecError(f"{path}: field 'include': {base_path} does not exist")
    base = read_yaml(base_path)
    if "include" in base:
        raise TaskSpecError(f"{path}: field 'include': {name} includes another file itself; "
                            f"include the base task directly (one level only)")
    return deep_merge(base, raw)


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def render(template: str, **values: str) -> str:
    """Fill `{name}` placeholders for the given names only.

    Unlike str.format, LaTeX braces such as `\\boxed{}` need no escaping; `\\boxed{{answer}}`
    renders as `\\boxed{42}` (the inner `{answer}` is the placeholder).
    """
    return _PLACEHOLDER.sub(lambda m: str(values[m[1]]) if m[1] in values else m[0], template)


def check_prompt(prompt: dict, where: str) -> None:
    for key in ("user", "plain"):
        if prompt.get(key) is not None and "{question}" not in prompt[key]:
            raise TaskSpecError(f"{where}: field 'prompt.{key}' must contain the placeholder "
                                f"{{question}}")
    if "{answer}" not in prompt["answer_format"]:
        raise TaskSpecError(f"{where}: field 'prompt.answer_format' must contain the "
                            f"placeholder {{answer}}, e.g. '#### {{answer}}'")


_HOOKS: dict[Path, Any] = {}


def hook_path(ref: str, base_dir: Path, where: str, field: str) -> tuple[Path, str]:
    """(file, function) of `file.py:function`, the file relative to the task YAML's folder."""
    file, sep, func = ref.rpartition(":")
    if not sep or not file.endswith(".py") or not func.isidentifier():
        raise TaskSpecError(f"{where}: field '{field}' is {ref!r}; expected 'file.py:function' "
                            f"relative to the task file")
    path = (base_dir / file).resolve()
    if not path.is_file():
        raise TaskSpecError(f"{where}: field '{field}': hook file {path} does not exist")
    return path, func


def load_hook(ref: str, base_dir: Path, where: str, field: str) -> Callable:
    """Import `file.py:function` into this process (gold and source hooks: they never see
    model output; grader hooks run isolated, see hooks.py)."""
    path, func = hook_path(ref, base_dir, where, field)
    if path not in _HOOKS:
        # a name unique per path: two task folders may both ship a `hooks.py`
        mod_name = f"mathrl_task_hook_{abs(hash(str(path))):x}_{path.stem}"
        mod_spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
        _HOOKS[path] = module
    fn = getattr(_HOOKS[path], func, None)
    if not callable(fn):
        raise TaskSpecError(f"{where}: field '{field}': {path.name} has no function {func!r}")
    return fn
