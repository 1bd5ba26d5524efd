"""Tasks as data: spec validation, sources, prompts, problems, discovery (mathrl/tasks/)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import yaml

from mathrl.tasks import (SOURCES, Task, TaskDataError, TaskSpecError, builtin_tasks_dir,
                          get_task, list_tasks)
from mathrl.tasks import sources as sources_mod

BUILTIN = sorted(p.stem for p in builtin_tasks_dir().glob("*.yaml"))

BASE = {
    "name": "toy", "version": 1, "description": "toy task", "citation": "",
    "source": {"type": "jsonl", "files": {"train": "toy.jsonl[:6]", "test": "toy.jsonl[6:]"}},
    "fields": {"question": "q", "answer": "a", "solution": "s", "meta": ["extra.level"]},
    "prompt": {"user": "{question}\nAnswer after '####'.", "answer_format": "#### {answer}"},
    "grader": {"extractor": "gsm8k", "mode": "numeric"},
    "generation": {"max_new_tokens": 64},
    "examples": [{"completion": "#### 4", "gold": "4", "correct": True},
                 {"completion": "#### 5", "gold": "4", "correct": False}],
}


def write_task(folder: Path, spec: dict | None = None, rows: int = 8, **changes) -> Path:
    """A toy JSONL task in `folder`; `changes` replace top-level keys of BASE."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "toy.jsonl", "w") as f:
        for i in range(rows):
            f.write(json.dumps({"q": f"What is {i} + {i}?", "a": f"#### {2 * i:,}",
                                "s": f"{i} + {i} = <<{i}+{i}={2 * i}>>{2 * i}\n#### {2 * i}",
                                "extra": {"level": i % 3}}) + "\n")
    spec = {**(spec or BASE), **changes}
    path = folder / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


# ---- built-in tasks -------------------------------------------------------------------------


def test_builtin_tasks_are_all_there():
    required = {"gsm8k", "math500", "arithmetic", "gsm-symbolic"}
    assert required <= set(BUILTIN)
    rg = [t for t in list_tasks() if t.spec["source"]["type"] == "reasoning_gym"]
    assert len(rg) >= 4, "gsm-symbolic and at least three more reasoning-gym tasks"
    for task in list_tasks():
        assert task.path.stem == task.name and task.version >= 1
        assert task.max_new_tokens >= 32 and task.extractor and task.mode


@pytest.mark.parametrize("name", [t.name for t in list_tasks() if t.procedural and t.max_new_tokens < 128])
def test_short_completion_limits_fit_every_gold_target(name):
    """A default limit that truncates the answer would silently zero the reward; short limits
    are where that bites (long ones quote the gold length in tokens in their YAML). A byte-level
    BPE token covers at least one byte, so a target of B bytes fits in B tokens."""
    small = {"source": {"sizes": {"train": 10, "test": 50}}}
    task = get_task(name, overrides=small)
    longest = max(len(task.format_solution(p).encode()) for p in task.load("test", seed=None))
    assert longest <= task.max_new_tokens, (longest, task.max_new_tokens)


def test_core_code_never_names_a_benchmark():
    code = "\n".join(p.read_text() for p in (Path(__file__).parents[1] / "mathrl" / "tasks")
                     .glob("*.py"))
    # "gsm8k" alone is also the verifier's name of the `####` extractor, so it is not listed
    for name in ("openai/gsm8k", "math500", "MATH-500", "gsm_symbolic", "gsm-symbolic",
                 "arithmetic.py", "grade-school"):
        assert name not in code, name


# ---- spec errors: one line naming the file, the field and what is allowed --------------------


@pytest.mark.parametrize("change, words", [
    ({"version": "one"}, ["'version'", "integer"]),
    ({"source": {"type": "ftp"}}, ["'source.type'", "hub, jsonl, parquet, csv, reasoning_gym"]),
    ({"source": {"type": []}}, ["'source.type' is []", "hub, jsonl"]),  # a TypeError before (test_fuzz)
    ({"grader": {"extractor": "regex", "mode": "math"}}, ["'grader.extractor'", "boxed"]),
    ({"prompt": {"user": "no placeholder", "answer_format": "#### {answer}"}},
     ["'prompt.user'", "{question}"]),
    ({"prompt": {"user": "{question}", "answer_format": "#### 4"}}, ["'prompt.answer_format'"]),
    ({"examples": [{"completion": "#### 4", "gold": "4", "correct": True}]},
     ["'examples'", "correct: false"]),
    ({"examples": [{"completion": "#### 4", "gold": "4"}]}, ["'examples[0].correct'"]),
    ({"colour": "red"}, ["unknown field 'colour'", "name, version"]),
    ({"source": {"type": "jsonl", "files": {}}}, ["'source.files'", "at least one split"]),
    ({"source": {"type": "jsonl", "files": {"test": "x.jsonl"}, "url": "x"}},
     ["unknown field 'source.url'", "files, sizes"]),
    ({"name": "other"}, ["'name'", "toy.yaml"]),
    ({"fields": {"question": "q"}}, ["missing required field 'fields.answer'"]),
    ({"source": {"type": "generator", "hook": "nope.py:make"}}, ["'source.hook'", "nope.py"]),
    ({"source": {"type": "generator", "hook": "generate"}}, ["'file.py:function'"]),
    ({"source": {"type": "reasoning_gym", "dataset": "chain_sum", "sizes": {"train": 10, "test": 5},
                 "seeds": {"train": 0, "test": 5}}}, ["'source.seeds'", "overlap"]),
])
def test_bad_specs_give_one_line_errors(tmp_path, change, words):
    path = write_task(tmp_path, **change)
    if change.get("name") == "other":
        path = path.rename(tmp_path / "toy.yaml")
    with pytest.raises(TaskSpecError) as err:
        Task.from_file(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message, message


def test_missing_required_field_and_bad_yaml(tmp_path):
    spec = {k: v for k, v in BASE.items() if k != "grader"}
    path = write_task(tmp_path, spec=spec)
    with pytest.raises(TaskSpecError, match=r"missing required field 'grader'"):
        Task.from_file(path)
    path.write_text("name: toy\nversion: [1\n")
    with pytest.raises(TaskSpecError, match=r"toy.yaml: invalid YAML at line \d+"):
        Task.from_file(path)
    path.write_text("- just a list\n")
    with pytest.raises(TaskSpecError, match="must be a YAML mapping"):
        Task.from_file(path)


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(TaskSpecError) as err:
        get_task("gsm9k")
    assert "unknown task 'gsm9k'" in str(err.value)
    for name in BUILTIN:
        assert name in str(err.value)


def test_unknown_reasoning_gym_dataset_suggests_close_names(tmp_path):
    path = write_task(tmp_path, source={"type": "reasoning_gym", "dataset": "chain_summ",
                                        "sizes": {"train": 4, "test": 2}})
    with pytest.raises(TaskSpecError, match=r"'source.dataset'.*close: chain_sum"):
        Task.from_file(path).load("test")


# ---- local file sources, field mapping, gold and solutions -----------------------------------


def test_jsonl_source_maps_fields_gold_and_solution(tmp_path):
    task = Task.from_file(write_task(
        tmp_path, gold={"pattern": r"####\s*(.*)$", "remove": [","]},
        solution={"remove": ["<<[^>]*>>", "^####.*$"], "append_answer": True}))
    test = task.load("test", seed=None)
    assert [p.id for p in test] == ["test/0", "test/1"]  # source order, ids per split
    p = test[1]  # record 7: 7 + 7
    assert (p.question, p.gold) == ("What is 7 + 7?", "14")
    assert p.solution == "7 + 7 = 14\n#### 14" == task.format_solution(p)
    assert p.meta == {"level": 1, "split": "test", "index": 1}
    assert len(task.load("train")) == 6
    assert task.sizes == {} and task.splits == ["train", "test"]


def test_gold_pattern_takes_the_last_match_and_hooks_run_first(tmp_path):
    (tmp_path / "hooks.py").write_text("def upper(text):\n    return text.upper()\n")
    gold = {"pattern": r"(\d+)", "hook": "hooks.py:upper"}
    task = Task.from_file(write_task(tmp_path, gold=gold))
    assert task.extract_gold("1 then 22 then 333") == "333"
    with pytest.raises(TaskDataError, match="matches nothing"):
        task.extract_gold("no digits")


def test_csv_parquet_and_slices(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"q": f"q{i}", "a": str(i)} for i in range(10)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    (tmp_path / "d.csv").write_text("q,a\n" + "".join(f"q{i},{i}\n" for i in range(10)))
    for kind, file in (("parquet", "d.parquet"), ("csv", "d.csv")):
        task = Task.from_file(write_task(
            tmp_path, source={"type": kind, "files": {"train": f"{file}[:70%]",
                                                     "test": f"{file}[-3:]"}},
            fields={"question": "q", "answer": "a"}))
        assert [p.gold for p in task.load("test", seed=None)] == ["7", "8", "9"]
        assert [p.gold for p in task.load("train", seed=None)] == [str(i) for i in range(7)]


def test_missing_file_field_and_split_are_data_errors(tmp_path):
    task = Task.from_file(write_task(tmp_path, fields={"question": "question", "answer": "a"}))
    with pytest.raises(TaskDataError, match=r"no field 'question' \(the record has: q, a, s"):
        task.load("test")
    with pytest.raises(TaskDataError, match="no split 'validation'; available: train, test"):
        task.load("validation")
    (tmp_path / "toy.jsonl").unlink()
    with pytest.raises(TaskDataError, match="toy.jsonl does not exist"):
        Task.from_file(tmp_path / "toy.yaml").load("test")


# ---- load(): shuffle, limit ----------------------------------------------------------------


def test_load_shuffles_deterministically_and_limit_takes_the_first():
    task = get_task("arithmetic")
    a, b = task.load("train", seed=1), task.load("train", seed=1)
    assert a == b and [p.id for p in a] != [p.id for p in task.load("train", seed=2)]
    assert task.load("train", limit=5, seed=1) == a[:5]
    assert [p.id for p in task.load("test", seed=None)][:3] == ["test/0", "test/1", "test/2"]


# ---- prompts --------------------------------------------------------------------------------


def test_chat_prompt_has_system_fewshot_and_user_turns(tmp_path):
    prompt = {**BASE["prompt"], "system": "Be brief.",
              "fewshot": [{"question": "What is 1 + 1?", "response": "#### 2", "answer": 2}]}
    task = Task.from_file(write_task(tmp_path, prompt=prompt))
    p = task.load("test", seed=None)[0]
    assert p.prompt is None
    assert [m["role"] for m in p.messages] == ["system", "user", "assistant", "user"]
    assert p.messages[1]["content"] == "What is 1 + 1?\nAnswer after '####'."
    assert p.messages[2]["content"] == "#### 2"
    assert p.messages[3]["content"] == f"{p.question}\nAnswer after '####'."


def test_plain_prompt_and_latex_braces(tmp_path):
    prompt = {"format": "plain", "user": "{question} Put it in \\boxed{}.",
              "answer_format": "\\boxed{{answer}}",
              "fewshot": [{"question": "1+1?", "response": "\\boxed{2}"}]}
    task = Task.from_file(write_task(tmp_path, prompt=prompt))
    p = task.load("test", seed=None)[0]
    assert p.messages is None
    assert p.prompt == ("1+1? Put it in \\boxed{}.\nAnswer: \\boxed{2}\n\n"
                        "What is 6 + 6? Put it in \\boxed{}.\nAnswer:")
    assert task.answer_line("12") == "\\boxed{12}"
    over = get_task(str(task.path), overrides={"prompt": {"format": "chat"}})
    assert over.load("test", seed=None)[0].messages is not None and over.ref.startswith("toy@1+")


# ---- generated sources ------------------------------------------------------------------------


def test_arithmetic_generator_is_deterministic_correct_and_held_out():
    task = get_task("arithmetic")
    test, train = task.load("test", seed=None), task.load("train", seed=None)
    assert len(test) == 100 and len({p.question for p in test}) == 100  # distinct
    assert not {p.question for p in test} & {p.question for p in train}
    assert test == get_task("arithmetic").load("test", seed=None)  # a pure function of seeds
    for p in test + train[:200]:
        expression = re.fullmatch(r"What is (.*)\?", p.question)[1]
        assert int(p.gold) == eval(expression)  # noqa: S307 - our own digits and + - *
        assert len(expression.split()) == 3 and all(len(t) == 1 for t in expression.split())
        assert p.solution.endswith(f"\n#### {p.gold}") and p.solution == task.format_solution(p)


def test_arithmetic_difficulty_overrides():
    task = get_task("arithmetic", task_config={"difficulty": "hard", "operands": 5})
    assert task.ref.startswith("arithmetic@1+") and task.ref != get_task("arithmetic").ref
    for p in task.load("test", limit=20):
        terms = p.meta["expression"].split()
        assert len(terms) == 9 and int(p.gold) == eval(p.meta["expression"])  # noqa: S307
        steps = p.solution.splitlines()
        assert len(steps) == 5 and steps[-1] == f"#### {p.gold}"  # 4 operations, 1 answer line
    with pytest.raises(TaskSpecError, match=r"'source.config'.*difficulty 'insane'; allowed: easy"):
        get_task("arithmetic", task_config={"difficulty": "insane"}).load("test")
    with pytest.raises(TaskSpecError, match=r"'source.config'.*unknown key 'digit'"):
        get_task("arithmetic", task_config={"digit": 2}).load("test")
    with pytest.raises(TaskSpecError, match="task_config given, but"):
        get_task("gsm8k", task_config={"digits": 2})


def test_reasoning_gym_source_is_seeded_and_disjoint():
    small = {"source": {"sizes": {"train": 30, "test": 10}}}
    task = get_task("gsm-symbolic", overrides=small)
    test = task.load("test", seed=None)
    assert test == get_task("gsm-symbolic", overrides=small).load("test", seed=None)
    assert len(test) == 10 and all(p.gold.lstrip("-").isdigit() for p in test)
    assert all(p.solution.endswith(f"#### {p.gold}") for p in test)
    train = task.load("train", seed=None)
    assert not {p.question for p in train} & {p.question for p in test}


# ---- discovery and Hub resolution -----------------------------------------------------------


def test_user_tasks_dir_and_env_path_override_builtins(tmp_path, monkeypatch):
    user = write_task(tmp_path / "mine", name="gsm8k")
    assert get_task("gsm8k", tasks_dir=user.parent).path == user.resolve()
    assert get_task("gsm8k").path == builtin_tasks_dir() / "gsm8k.yaml"
    monkeypatch.setenv("MATHRL_TASKS_PATH", f"/nonexistent{__import__('os').pathsep}{user.parent}")
    assert get_task("gsm8k").path == user.resolve()
    names = [t.name for t in list_tasks()]
    assert names.count("gsm8k") == 1 and "math500" in names
    assert get_task(str(user)).path == user.resolve()  # a path works as a name


def test_builtin_dir_in_a_source_checkout():
    assert builtin_tasks_dir() == Path(__file__).resolve().parents[1] / "tasks"


def hub_task(tmp_path: Path) -> Task:
    return Task.from_file(write_task(
        tmp_path, name="hubby", source={"type": "hub", "path": "mathrl-tests/never-published",
                                        "files": {"test": "test.jsonl"}},
        fields={"question": "q", "answer": "a"}), data_dir=None)


def test_hub_source_local_routes_in_order(tmp_path, monkeypatch):
    monkeypatch.delenv("MATHRL_DATA_DIR", raising=False)
    task = hub_task(tmp_path)
    for folder in (tmp_path / "flat", tmp_path / "nested" / "hubby", tmp_path / "env" / "hubby"):
        folder.mkdir(parents=True)
        (folder / "test.jsonl").write_text(json.dumps({"q": folder.name, "a": "1"}) + "\n")
    task.data_dir = str(tmp_path / "flat")  # DIR itself holds the split files
    assert task.load("test")[0].question == "flat"
    task._records.clear()
    task.data_dir = str(tmp_path / "nested")  # DIR/<task>/
    assert task.load("test")[0].question == "hubby"
    task._records.clear()
    task.data_dir = None
    monkeypatch.setenv("MATHRL_DATA_DIR", str(tmp_path / "env"))
    assert task.load("test")[0].question == "hubby"


def test_hub_source_offline_fails_fast_with_one_message(tmp_path, monkeypatch):
    monkeypatch.delenv("MATHRL_DATA_DIR", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: refused at once
    calls = []
    real = sources_mod._hf_load
    def spy(src, split, offline):
        calls.append(offline)
        return real(src, split, offline)

    monkeypatch.setattr(sources_mod, "_hf_load", spy)
    task = hub_task(tmp_path)
    task.data_dir = str(tmp_path / "empty")
    start = time.perf_counter()
    with pytest.raises(TaskDataError) as err:
        task.load("test")
    assert time.perf_counter() - start < 15
    message = str(err.value)
    assert "\n" not in message and calls == [True]  # cache tried offline; probe stopped the Hub
    for route in ("1) --data DIR: no", "2) $MATHRL_DATA_DIR: not set",
                  "3) datasets cache: no usable copy of mathrl-tests/never-published",
                  "4) Hub: http://127.0.0.1:9 unreachable", "--data DIR"):
        assert route in message, message
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TaskDataError, match="Hub: skipped because HF_HUB_OFFLINE is set"):
        task.load("test")


def test_sources_registry_is_a_plain_dict():
    assert isinstance(SOURCES, dict)
    assert {"hub", "jsonl", "parquet", "csv", "reasoning_gym", "generator"} <= set(SOURCES)


def test_hub_probe_gives_up_on_a_server_that_never_answers(monkeypatch):
    import socket

    with socket.socket() as server:  # accepts connections (kernel backlog), never replies
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        start = time.perf_counter()
        reason = sources_mod.probe_hub(timeout=0.5)
        assert time.perf_counter() - start < 3
    assert reason is not None and "127.0.0.1" in reason
