"""Run plumbing that reports costs up front: thread choice, decode calibration, estimates."""

from __future__ import annotations

import sys

import pytest

from mathrl import health
from mathrl.compute import calibrate_decode, calibrate_passes, estimate_costs
from mathrl.engine import host
from mathrl.types import Problem


@pytest.mark.parametrize("busy, cores, world, want", [(0.1, 2, 1, 2), (1.5, 2, 1, 1), (0.1, 16, 4, 4), (3.0, 1, 1, 1)])
def test_threads_are_all_of_a_quiet_machine_and_one_of_a_busy_one(monkeypatch, busy, cores, world, want):
    monkeypatch.setattr(host, "busy_cores", lambda: busy)
    monkeypatch.setattr(host.os, "cpu_count", lambda: cores)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(world))
    threads, why = host.choose_threads(0)
    assert threads == want and f"{cores} cores" in why
    assert host.choose_threads(3) == (3, "threads=3 was set")


def test_micro_batch_is_the_whole_batch_for_a_tiny_model_and_the_old_8_for_smollm2():
    from types import SimpleNamespace

    tiny = SimpleNamespace(vocab_size=113, num_hidden_layers=2, hidden_size=64)
    smollm2 = SimpleNamespace(vocab_size=49152, num_hidden_layers=30, hidden_size=576)
    # tiny at 32 new tokens: 4 B * (113 + 32 * 2 * 64) * 32 = 0.54 MB a row, 256 MiB hold 498 rows -> 496 (x 8)
    assert host.choose_micro_batch(0, tiny, 32, 8) == 496
    assert host.choose_micro_batch(0, tiny, 32, 1) == 498
    assert host.choose_micro_batch(0, tiny, 32, 3) == 498  # whole groups: 166 of 3
    # SmolLM2: 77 MB a row at 32 tokens, 1.2 GB at 512: never below the fixed 8 it was measured with
    assert host.choose_micro_batch(0, smollm2, 32, 8) == 8
    assert host.choose_micro_batch(0, smollm2, 512, 8) == 8
    assert host.choose_micro_batch(3, tiny, 32, 8) == 3  # a set value is kept


def test_busy_cores_sees_another_process_spinning_and_not_itself():
    import os
    import subprocess
    import sys
    import time

    before = host.busy_cores(0.3)  # this process sleeps through it: its own CPU is not counted
    if before > (os.cpu_count() or 1) - 0.8:
        pytest.skip(f"no idle core to spin on ({before:.1f} busy)")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert host.busy_cores(0.5) - before > 0.7
    finally:
        spinner.kill()


REFAULTS = """
import resource, sys, torch
import mathrl.costs  # as in a run, the trainer's modules (transformers among them) are loaded first: in a
# bare torch process the heap kept faulting the pages in even with the setting (16,384 faults a time, measured)
from mathrl.engine.host import reuse_freed_memory
took = reuse_freed_memory()
def faults_of_a_64_mib_tensor():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(16 * 2 ** 20)  # 64 MiB, freed at once: above glibc's largest mmap threshold
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults = [faults_of_a_64_mib_tensor() for _ in range(6)]  # the heap grows twice in the first three
print(took, max(faults[3:]), min(faults[3:]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
@pytest.mark.parametrize("system_malloc", [False, True])
def test_a_freed_large_tensor_is_reused_without_page_faults(system_malloc):
    """host.reuse_freed_memory: a 64 MiB tensor allocated again after it was freed takes its
    pages from the heap, where glibc's default maps them afresh (16,384 faults of 4 KiB pages)."""
    import os
    import subprocess

    env = {**os.environ, "MATHRL_SYSTEM_MALLOC": "1"} if system_malloc else \
        {k: v for k, v in os.environ.items() if k != "MATHRL_SYSTEM_MALLOC"}
    out = subprocess.run([sys.executable, "-c", REFAULTS], env=env, capture_output=True, text=True, check=True)
    took, most, least = out.stdout.split()
    if system_malloc:
        assert took == "False" and int(least) > 8000
    else:
        assert took == "True" and int(most) < 1000


def test_estimate_is_decode_steps_plus_passes_at_the_measured_pass_rate():
    cal = {"rows": 16, "prefill_s": 0.5, "step_s": 0.2, "tok_per_s": 80.0, "pass_s_per_row": 0.1}
    est = estimate_costs(cal, max_new_tokens=32, passes=4, eval_rows=64, eval_chunk=32)
    assert est["rollout_s"] == pytest.approx(0.5 + 32 * 0.2)
    assert est["update_s"] == pytest.approx(4 * 0.1 * 16)  # 4 passes over 16 rows
    assert est["eval_s"] == pytest.approx(2 * (0.5 * 2 + 32 * 0.2 * 2))  # 2 chunks of twice the rows
    assert est["step_s"] == pytest.approx(est["rollout_s"] + est["update_s"])
    longer = estimate_costs({**cal, "attn_s_per_col": 1e-4}, 32, 4, 64, 32)
    assert longer["rollout_s"] == pytest.approx(est["rollout_s"] + 16 * 1e-4 * 32 * 31 / 2)  # rows x sum of t
    assert longer["eval_s"] == pytest.approx(est["eval_s"] + 2 * 32 * 1e-4 * 32 * 31 / 2)


def test_calibration_times_every_row_for_every_step(tiny):
    model, tok = tiny
    problems = [Problem(id=str(i), question="q", gold="1", messages=[{"role": "user", "content": f"{i}+1?"}])
                for i in range(2)]
    cal = calibrate_decode(model, tok, problems, 3, context=400)
    assert cal["rows"] == 6 and cal["step_s"] > 0 and cal["prefill_s"] > 0
    assert cal["tok_per_s"] == pytest.approx(6 / cal["step_s"])
    assert calibrate_passes(model, tok, problems, group_size=3, rows=3, completion_tokens=8) > 0
    assert cal["attn_s_per_col"] >= 0  # attention over 400 columns vs the prompt's; noise may hide it on tiny


@pytest.mark.parametrize("summary, says", [
    ({"n": 64, "accuracy": 0.0, "accuracy_lenient": 0.0}, "earns no reward"),
    ({"n": 64, "accuracy": 0.0, "accuracy_lenient": 0.016}, "answer format is what it misses"),
    ({"n": 64, "accuracy": 0.0, "pass@1": 0.05}, None),  # sampling earns some reward: signal
    ({"n": 64, "accuracy": 0.02}, None),
    ({"n": 8, "accuracy": 0.0}, None),  # too few problems to tell
])
def test_a_model_without_reward_at_step_0_is_told_the_remedy(capsys, summary, says):
    from types import SimpleNamespace

    state = SimpleNamespace(accelerator=SimpleNamespace(is_main_process=True), cfg=SimpleNamespace(model="m"),
                            task=SimpleNamespace(name="gsm8k"))
    health.warn_if_no_reward(state, summary)
    err = capsys.readouterr().err
    assert (says in err and "Remedy" in err) if says else err == ""
