"""`Task`: a validated spec plus the behaviour every task shares.

Records come from a source (sources.py); everything after that is the same for every task:
field mapping, gold extraction, solution clean-up, prompt rendering and grading with the
verifier. Nothing here knows any benchmark by name.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path
from typing import Any

from mathrl.tasks.sources import SOURCES, Ctx, TaskDataError, validate_source
from mathrl.tasks.spec import (SCHEMA, TaskSpecError, check_prompt, deep_merge, load_hook,
                               read_task_yaml, render, validate)
from mathrl.types import Grade, Problem


def _get(record: dict, path: str, where: str) -> Any:
    """`record["a"]["b"]` for the dotted path "a.b"."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            have = ", ".join(map(str, value)) if isinstance(value, dict) else type(value).__name__
            raise TaskDataError(f"{where}: no field {path!r} (the record has: {have})")
        value = value[part]
    return value


class Task:
    """One verifiable task. Construct with `get_task()` or `Task.from_file()`."""

    def __init__(self, spec: dict, path: Path, data_dir: str | None = None, ref_suffix: str = ""):
        self.spec = spec  # resolved: validated, defaults filled, overrides applied
        self.path = path
        self.data_dir = data_dir
        self.name: str = spec["name"]
        self.version: int = spec["version"]
        self.ref = f"{self.name}@{self.version}{ref_suffix}"  # what a run records
        self._source = SOURCES[spec["source"]["type"]]
        self._records: dict[str, list[dict]] = {}
        self._gold_hook = (load_hook(spec["gold"]["hook"], path.parent, str(path), "gold.hook")
                           if spec["gold"]["hook"] else None)
        if spec["source"].get("hook"):  # fail at load time, not at the first rollout
            load_hook(spec["source"]["hook"], path.parent, str(path), "source.hook")
        self._grader_hook = None  # (file, function) of the task's own verifier, run isolated
        if spec["grader"]["hook"]:
            from mathrl.tasks.hooks import hook_target

            self._grader_hook = hook_target(spec["grader"]["hook"], path.parent, str(path))

    @classmethod
    def from_file(cls, path: str | Path, data_dir: str | None = None,
                  overrides: dict | None = None, task_config: dict | None = None) -> Task:
        path = Path(path).expanduser().resolve()
        raw = read_task_yaml(path)
        where = str(path)
        if overrides:
            raw = deep_merge(raw, overrides)
        if task_config:
            kind = SOURCES.get((raw.get("source") or {}).get("type"))
            if kind is None or "config" not in kind.schema:
                raise TaskSpecError(f"{where}: task_config given, but this task's source has "
                                    f"no 'config' (only generator and reasoning_gym sources do)")
            raw = deep_merge(raw, {"source": {"config": task_config}})
        spec = validate(raw, SCHEMA, where)
        spec["source"] = validate_source(raw["source"], where)
        check_prompt(spec["prompt"], where)
        if path.stem != spec["name"]:
            raise TaskSpecError(f"{where}: field 'name' is {spec['name']!r} but the file is "
                                f"{path.name}; they must match (tasks are found by file name)")
        verdicts = {ex["correct"] for ex in spec["examples"]}
        if verdicts != {True, False}:
            raise TaskSpecError(f"{where}: field 'examples' needs at least one completion with "
                                f"correct: true and one with correct: false")
        changes = {"overrides": overrides or {}, "task_config": task_config or {}}
        suffix = ("+" + hashlib.sha1(json.dumps(changes, sort_keys=True, default=str)
                                     .encode()).hexdigest()[:8]) if any(changes.values()) else ""
        return cls(spec, path, data_dir, suffix)

    # ---- what runs read ---------------------------------------------------------------------

    @property
    def max_new_tokens(self) -> int:
        return self.spec["generation"]["max_new_tokens"]

    @property
    def extractor(self) -> str:
        return self.spec["grader"]["extractor"]

    @property
    def mode(self) -> str:
        return self.spec["grader"]["mode"]

    @property
    def grader_hook(self) -> str | None:
        """`file.py:function` when the task brings its own verifier, else None."""
        return self.spec["grader"]["hook"]

    @property
    def splits(self) -> list[str]:
        return list(self.spec["source"][self._source.splits_key])

    @property
    def sizes(self) -> dict[str, int]:
        """Declared sizes (no data is loaded); generated sizes for procedural sources."""
        return dict(self.spec["source"].get("sizes") or {})

    @property
    def procedural(self) -> bool:
        """Generated (reasoning_gym, generator) rather than read from fixed files."""
        return self._source.procedural

    @property
    def source_desc(self) -> str:
        return self._source.describe(self.spec["source"])

    def __repr__(self) -> str:
        return f"Task({self.ref}, {self.source_desc}, {self.path})"

    # ---- records -> problems ------------------------------------------------------------------

    def records(self, split: str) -> list[dict]:
        """Raw records of a split, in source order (cached)."""
        if split not in self.splits:
            raise TaskDataError(f"task '{self.name}' has no split {split!r}; "
                                f"available: {', '.join(self.splits)}")
        if split not in self._records:
            ctx = Ctx(self.name, self.spec["source"], self.path.parent, str(self.path),
                      self.data_dir)
            self._records[split] = self._source.load(ctx, split)
        return self._records[split]

    def load(self, split: str, limit: int | None = None, seed: int | None = 0) -> list[Problem]:
        """Problems of `split`, shuffled by `seed` (None keeps source order), first `limit`."""
        records = self.records(split)
        problems = [self.problem(r, split, i) for i, r in enumerate(records)]
        if self.procedural and split != "test" and "test" in self.splits:
            # generated splits are disjoint in seeds but can repeat a question by chance; a
            # held-out split must be held out in content, too
            held_out = {p.question for p in self.load("test", seed=None)}
            problems = [p for p in problems if p.question not in held_out]
        if seed is not None:
            random.Random(seed).shuffle(problems)
        return problems if limit is None else problems[:limit]

    def problem(self, record: dict, split: str, index: int) -> Problem:
        fields = self.spec["fields"]
        origins = getattr(self._records.get(split), "origins", None)  # file and line, for local files
        where = f"{origins[index]} (task '{self.name}', split '{split}')" if origins else \
            f"task '{self.name}' split '{split}' record {index}"
        question, answer = (_get(record, fields[k], where) for k in ("question", "answer"))
        for key, value in (("question", question), ("answer", answer)):
            if value is None or (isinstance(value, str) and not value.strip()):  # else the gold is "None"
                raise TaskDataError(f"{where}: field {fields[key]!r} is empty")
        question, gold = str(question), self.extract_gold(answer, where)
        solution = None
        if fields["solution"]:
            solution = self._clean_solution(str(_get(record, fields["solution"], where)), gold)
        pid = str(_get(record, fields["id"], where)) if fields["id"] else f"{split}/{index}"
        meta = {path.rsplit(".", 1)[-1]: _get(record, path, where) for path in fields["meta"]}
        meta.update(split=split, index=index)
        messages, prompt = self.render_prompt(question)
        return Problem(id=pid, question=question, gold=gold, messages=messages, prompt=prompt,
                       solution=solution, meta=meta)

    def extract_gold(self, value: Any, where: str = "gold") -> str:
        gold = self._gold_hook(str(value)) if self._gold_hook else str(value)
        rule = self.spec["gold"]
        if rule["pattern"]:
            matches = list(re.finditer(rule["pattern"], gold, flags=re.MULTILINE))
            if not matches:
                raise TaskDataError(f"{where}: gold.pattern {rule['pattern']!r} matches nothing "
                                    f"in {gold[-80:]!r}")
            last = matches[-1]
            gold = last.group(1) if last.re.groups else last.group(0)
        for text in rule["remove"]:
            gold = gold.replace(str(text), "")
        return gold.strip()

    def _clean_solution(self, text: str, gold: str) -> str:
        for pattern in self.spec["solution"]["remove"]:
            text = re.sub(pattern, "", text, flags=re.MULTILINE)
        text = text.strip()
        if self.spec["solution"]["append_answer"]:
            text = f"{text}\n{self.answer_line(gold)}" if text else self.answer_line(gold)
        return text

    # ---- prompts ------------------------------------------------------------------------------

    def render_prompt(self, question: str) -> tuple[list[dict] | None, str | None]:
        """(messages, None) for the chat format, (None, prompt) for the plain format."""
        p = self.spec["prompt"]
        if p["format"] == "chat":
            messages = [{"role": "system", "content": p["system"]}] if p["system"] else []
            for shot in p["fewshot"]:
                messages += [{"role": "user", "content": render(p["user"],
                                                                question=shot["question"])},
                             {"role": "assistant", "content": shot["response"]}]
            messages.append({"role": "user", "content": render(p["user"], question=question)})
            return messages, None
        plain = p["plain"] or p["user"] + "\nAnswer:"
        parts = [p["system"]] if p["system"] else []
        parts += [f"{render(plain, question=s['question'])} {s['response']}"
                  for s in p["fewshot"]]
        parts.append(render(plain, question=question))
        return None, "\n\n".join(parts)

    def answer_line(self, gold: str) -> str:
        """The final line a completion should end with, e.g. '#### 42'."""
        return render(self.spec["prompt"]["answer_format"], answer=gold)

    def format_solution(self, problem: Problem) -> str:
        """The SFT target: the worked solution, ending in the answer format.

        Tasks without worked solutions train on the bare answer line.
        """
        return problem.solution if problem.solution else self.answer_line(problem.gold)

    # ---- grading ------------------------------------------------------------------------------

    @property
    def lenient_extractor(self) -> str:
        return self.spec["grader"]["lenient_extractor"]

    def _grader_kwargs(self, lenient: bool = False) -> dict:
        g = self.spec["grader"]
        extractor = g["lenient_extractor"] if lenient else g["extractor"]
        return dict(extractor=extractor, mode=g["mode"], rel_tol=g["rel_tol"],
                    timeout=g["timeout"], percent_as_fraction=g["percent_as_fraction"])

    def grade_answer(self, completion: str, gold: str) -> Grade:
        """The verdict against a bare gold answer (a grader hook then sees no metadata)."""
        return self.grade(completion, Problem(id="answer", question="", gold=str(gold)))

    def grade(self, completion: str, problem: Problem) -> Grade:
        return self.grade_batch([completion], [problem])[0]

    def grade_batch(self, completions: list[str], problems: list[Problem], lenient: bool = False) -> list[Grade]:
        """The task's grade (the reward's), or with `lenient` the format-insensitive one."""
        from mathrl.verify import extract, grade_batch

        if len(completions) != len(problems):
            raise ValueError(f"{len(completions)} completions for {len(problems)} problems")
        kwargs = self._grader_kwargs(lenient)
        if self._grader_hook is not None:
            from mathrl.tasks.hooks import run_hook

            answers = [extract(c, kwargs["extractor"]) for c in completions]
            return run_hook(*self._grader_hook, completions, answers, problems, kwargs["timeout"])
        return grade_batch(completions, [p.gold for p in problems], **kwargs)

    def example_problem(self, entry: dict, index: int) -> Problem:
        """The Problem an `examples:` or `prompt.fewshot` entry stands for."""
        gold = entry["gold"] if "gold" in entry else entry["answer"]
        return Problem(id=f"examples[{index}]", question=entry.get("question", ""),
                       gold=str(gold), meta=dict(entry.get("meta") or {}))

    def run_examples(self) -> list[tuple[dict, Grade]]:
        """Grade every `examples:` entry; the caller compares with `example['correct']`."""
        examples = self.spec["examples"]
        grades = self.grade_batch([ex["completion"] * ex["repeat"] for ex in examples],
                                  [self.example_problem(ex, i) for i, ex in enumerate(examples)])
        return list(zip(examples, grades))
