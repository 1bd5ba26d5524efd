"""FLOP formulas, parameter counting and the meter's step/cumulative bookkeeping."""

import pytest

from mathrl.compute import (
    PHASES,
    ComputeMeter,
    flop_params,
    forward_flops,
    generation_flops,
    train_flops,
)


class FakeClock:
    """Deterministic perf_counter: tests advance it by hand."""

    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t

    def tick(self, s):
        self.t += s


def test_flop_formulas():
    assert forward_flops(1_000, 10) == 20_000  # 2 N D
    assert train_flops(1_000, 10) == 60_000  # 6 N D
    # 30 prompt + 20 generated tokens, each processed once: 2 * 1000 * 50
    assert generation_flops(1_000, 30, 20) == 100_000


def _toy_lm(tied: bool):
    import torch.nn as nn

    class ToyLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(50, 8)  # 400: a lookup
            self.block = nn.Linear(8, 8)  # 72
            self.head = nn.Linear(8, 50, bias=False)  # 400: a matmul
            if tied:
                self.head.weight = self.embed.weight

        def get_input_embeddings(self):
            return self.embed

        def get_output_embeddings(self):
            return self.head

    return ToyLM()


def test_flop_params_excludes_lookup_embedding_but_counts_head():
    assert flop_params(_toy_lm(tied=False)) == 72 + 400  # embedding (400) excluded
    assert flop_params(_toy_lm(tied=True)) == 400 + 72  # shared matrix counted once, as head


def test_flop_params_excludes_learned_positions_and_counts_plain_modules():
    import torch.nn as nn

    class WithPositions(nn.Module):
        def __init__(self):
            super().__init__()
            self.wpe = nn.Embedding(16, 4)  # 64, excluded by name
            self.mlp = nn.Linear(4, 4)  # 20

    assert flop_params(WithPositions()) == 20
    assert flop_params(nn.Linear(3, 1)) == 4  # value head: no embeddings, counts in full


def test_meter_times_phases_and_resets_per_step():
    clock = FakeClock()
    m = ComputeMeter(clock=clock)
    with m.phase("rollout"):
        clock.tick(2.0)
    with m.phase("update"):
        clock.tick(1.0)
    with m.phase("rollout"):  # a phase entered twice in a step accumulates
        clock.tick(0.5)
    clock.tick(0.25)  # outside any phase
    m.add_tokens("prompt", 30)
    m.add_tokens("generated", 70)
    m.add_tokens("trained", 100)
    m.add_flops(1e9)
    s1 = m.step_metrics()
    assert s1["time/rollout_s"] == 2.5
    assert s1["time/update_s"] == 1.0
    assert s1["time/reward_s"] == 0.0  # always present, so every row has the same columns
    assert s1["time/step_s"] == pytest.approx(3.75)
    assert s1["time/other_s"] == pytest.approx(0.25)
    assert s1["tokens/prompt"] == 30 and s1["tokens/generated"] == 70
    assert s1["tokens/trained"] == 100
    assert s1["flops/step"] == 1e9 and s1["flops/cumulative"] == 1e9
    assert "time/device_s" not in s1  # CPU meter

    clock.tick(50.0)  # between steps (logging, checkpointing): charged to no step
    with m.phase("update"):
        clock.tick(1.0)
    m.add_tokens("generated", 5)
    m.add_flops(2e9)
    s2 = m.step_metrics()
    assert s2["time/rollout_s"] == 0.0
    assert s2["time/step_s"] == pytest.approx(1.0)
    assert s2["time/cumulative_s"] == pytest.approx(4.75)
    assert s2["tokens/generated"] == 5 and s2["tokens/cumulative_generated"] == 75
    assert s2["flops/step"] == 2e9 and s2["flops/cumulative"] == 3e9
    for name in PHASES:
        assert f"time/{name}_s" in s2


def test_meter_extra_phase_and_errors():
    clock = FakeClock()
    m = ComputeMeter(clock=clock)
    with m.phase("values"):
        clock.tick(1.0)
    with pytest.raises(ValueError):
        m.add_tokens("completion", 3)  # a typo must not open a silent new counter
    with pytest.raises(ValueError):
        m.add_flops(-1)
    with pytest.raises(ValueError):
        with m.phase("Rollout"):
            pass
    with m.phase("rollout"):
        with pytest.raises(RuntimeError):
            with m.phase("rollout"):
                pass
        with pytest.raises(RuntimeError):
            m.step_metrics()
    out = m.step_metrics()
    assert out["time/values_s"] == 1.0


def test_meter_phase_time_counted_when_body_raises():
    clock = FakeClock()
    m = ComputeMeter(clock=clock)
    with pytest.raises(KeyError):
        with m.phase("reward"):
            clock.tick(3.0)
            raise KeyError("grader crashed")
    assert m.step_metrics()["time/reward_s"] == 3.0


def test_meter_state_dict_round_trip_resumes_cumulatives():
    clock = FakeClock()
    m = ComputeMeter(clock=clock)
    with m.phase("rollout"):
        clock.tick(2.0)
    m.add_tokens("generated", 10)
    m.add_flops(5.0)
    m.step_metrics()
    state = m.state_dict()

    resumed = ComputeMeter(clock=clock)
    resumed.load_state_dict(state)
    with resumed.phase("rollout"):
        clock.tick(1.0)
    resumed.add_tokens("generated", 4)
    resumed.add_flops(1.0)
    out = resumed.step_metrics()
    assert out["time/cumulative_s"] == 3.0
    assert out["tokens/cumulative_generated"] == 14
    assert out["flops/cumulative"] == 6.0
    assert resumed.steps == 2


def test_meter_cuda_path_synchronizes_and_sums_events(monkeypatch):
    """The CUDA bookkeeping, on CPU: a fake torch.cuda whose events read the fake clock."""
    import types

    clock = FakeClock()
    syncs = []

    class Event:
        def __init__(self, enable_timing):
            assert enable_timing
            self.t = None

        def record(self):
            self.t = clock()

        def elapsed_time(self, end):  # milliseconds, like CUDA
            return (end.t - self.t) * 1000.0

    cuda = types.SimpleNamespace(Event=Event, synchronize=lambda: syncs.append(clock()))
    monkeypatch.setattr("mathrl.compute.torch", types.SimpleNamespace(cuda=cuda))
    m = ComputeMeter(device="cuda:0", clock=clock)
    with m.phase("rollout"):
        clock.tick(2.0)
    clock.tick(1.0)
    with m.phase("update"):
        clock.tick(0.5)
    out = m.step_metrics()
    assert out["time/device_s"] == pytest.approx(2.5)  # the gap between phases is not device time
    assert out["time/step_s"] == pytest.approx(3.5)
    assert len(syncs) == 5  # entry and exit of both phases, then before reading the events


@pytest.mark.gpu
def test_meter_cuda_device_seconds():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    m = ComputeMeter(device="cuda")
    x = torch.randn(2048, 2048, device="cuda")
    with m.phase("update"):
        for _ in range(20):
            x = x @ x / 2048
    out = m.step_metrics()
    assert 0.0 < out["time/device_s"] <= out["time/update_s"] * 1.05 + 1e-3
