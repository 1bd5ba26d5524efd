"""Task variants: `include: base.yaml` plus the fields that differ (mathrl/tasks/spec.py)."""

from __future__ import annotations

import pytest
import yaml
from test_tasks import write_task

from mathrl.tasks import Task, TaskSpecError, builtin_tasks_dir, get_task, list_tasks

SHOT = {"question": "What is 20 + 20?", "response": "20 + 20 = 40\n#### 40", "answer": 40}


def write_variant(folder, **fields):
    path = folder / f"{fields.get('name', 'toy-shot')}.yaml"
    path.write_text(yaml.safe_dump({"include": "toy.yaml", "name": "toy-shot", "version": 3, **fields}))
    return path


def test_variant_inherits_everything_it_does_not_state(tmp_path):
    base = Task.from_file(write_task(tmp_path))
    variant = Task.from_file(write_variant(tmp_path, prompt={"fewshot": [SHOT]}))
    assert variant.ref == "toy-shot@3" and base.ref == "toy@1"
    # the base's data paths (relative to the folder) and grader carry over
    assert [p.question for p in variant.load("test", seed=None)] == [p.question for p in base.load("test", seed=None)]
    assert variant.spec["grader"] == base.spec["grader"] and variant.spec["examples"] == base.spec["examples"]
    # mappings merge key by key: the user template is the base's, the shot comes first
    messages = variant.load("test", seed=None)[0].messages
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == SHOT["response"] and messages[2] == base.load("test", seed=None)[0].messages[0]


def test_lists_are_replaced_whole(tmp_path):
    write_task(tmp_path)
    examples = [{"completion": "#### 6", "gold": "6", "correct": True},
                {"completion": "#### 7", "gold": "6", "correct": False}]
    variant = Task.from_file(write_variant(tmp_path, examples=examples))
    assert [ex["completion"] for ex in variant.spec["examples"]] == ["#### 6", "#### 7"]


@pytest.mark.parametrize("include, words", [
    ("../toy.yaml", "same folder"),
    ("toy", "same folder"),
    (["toy.yaml"], "same folder"),
    ("missing.yaml", "does not exist"),
])
def test_bad_include_is_one_clear_error(tmp_path, include, words):
    write_task(tmp_path)
    path = write_variant(tmp_path)
    path.write_text(yaml.safe_dump({"include": include, "name": "toy-shot", "version": 1}))
    with pytest.raises(TaskSpecError, match=words) as err:
        Task.from_file(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_include_is_one_level_only(tmp_path):
    write_task(tmp_path)
    write_variant(tmp_path)
    second = tmp_path / "toy-shot-2.yaml"
    second.write_text(yaml.safe_dump({"include": "toy-shot.yaml", "name": "toy-shot-2", "version": 1}))
    with pytest.raises(TaskSpecError, match="one level only"):
        Task.from_file(second)


def test_variant_still_validates_its_own_fields(tmp_path):
    write_task(tmp_path)
    with pytest.raises(TaskSpecError, match="'prompt.user' must contain the placeholder"):
        Task.from_file(write_variant(tmp_path, prompt={"user": "no placeholder"}))


def test_builtin_one_shot_arithmetic_is_arithmetic_with_another_prompt():
    base, variant = get_task("arithmetic"), get_task("arithmetic-1shot")
    assert variant.spec["source"] == base.spec["source"] and variant.spec["grader"] == base.spec["grader"]
    b, v = base.load("test", seed=None), variant.load("test", seed=None)
    assert [(p.question, p.gold) for p in b] == [(p.question, p.gold) for p in v]
    assert len(v[0].messages) == 3 and "e.g." not in v[0].messages[-1]["content"]


@pytest.mark.parametrize("task", [t for t in list_tasks() if t.procedural and t.spec["prompt"]["fewshot"]],
                         ids=lambda t: t.name)
def test_fewshot_questions_are_not_held_out_questions(task):
    """A shot equal to a test question would hand the model that answer in its prompt."""
    small = {"source": {"sizes": {"train": 10}}} if task.spec["source"]["type"] == "reasoning_gym" else None
    task = get_task(task.path, overrides=small)
    held_out = {p.question for p in task.load("test", seed=None)}
    assert not held_out & {shot["question"] for shot in task.spec["prompt"]["fewshot"]}


def test_builtin_variants_live_beside_their_base():
    for path in builtin_tasks_dir().glob("*.yaml"):
        include = yaml.safe_load(path.read_text()).get("include")
        assert include is None or (builtin_tasks_dir() / include).is_file(), path
