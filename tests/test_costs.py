"""Run plumbing that reports costs up front: thread choice, decode calibration, estimates."""

from __future__ import annotations

import pytest

from mathrl import run_state
from mathrl.compute import calibrate_decode, estimate_costs, forward_flops
from mathrl.types import Problem


@pytest.mark.parametrize("load, cores, world, want", [(0.1, 2, 1, 2), (1.5, 2, 1, 1), (0.1, 16, 4, 4), (3.0, 1, 1, 1)])
def test_threads_are_all_of_a_quiet_machine_and_one_of_a_busy_one(monkeypatch, load, cores, world, want):
    monkeypatch.setattr(run_state.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(run_state.os, "cpu_count", lambda: cores)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(world))
    threads, why = run_state.choose_threads(0)
    assert threads == want and f"{cores} cores" in why
    assert run_state.choose_threads(3) == (3, "threads=3 was set")


def test_estimate_is_decode_steps_plus_passes_at_the_decode_flop_rate():
    cal = {"rows": 16, "prefill_s": 0.5, "step_s": 0.2, "tok_per_s": 80.0}
    est = estimate_costs(cal, n_params=1000, max_new_tokens=32, prompt_tokens=50, passes=4, eval_rows=64,
                         eval_chunk=32)
    assert est["rollout_s"] == pytest.approx(0.5 + 32 * 0.2)
    rate = forward_flops(1000, 16) / 0.2  # FLOP/s of one decode step
    assert est["update_s"] == pytest.approx(4 * forward_flops(1000, 16 * 82) / rate)  # = 4 * 82 * 0.2
    assert est["eval_s"] == pytest.approx(2 * (0.5 * 2 + 32 * 0.2 * 2))  # 2 chunks of twice the rows
    assert est["step_s"] == pytest.approx(est["rollout_s"] + est["update_s"])


def test_calibration_times_every_row_for_every_step(tiny):
    model, tok = tiny
    problems = [Problem(id=str(i), question="q", gold="1", messages=[{"role": "user", "content": f"{i}+1?"}])
                for i in range(2)]
    cal = calibrate_decode(model, tok, problems, 3)
    assert cal["rows"] == 6 and cal["step_s"] > 0 and cal["prefill_s"] > 0
    assert cal["tok_per_s"] == pytest.approx(6 / cal["step_s"])
