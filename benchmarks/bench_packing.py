"""Packed against padded completions in one log-prob chunk: forward, and forward + backward.

    python benchmarks/bench_packing.py --prompt 57 --lengths 16,32,20,12,8,32,32,32
    python benchmarks/bench_packing.py --prompt 122 --lengths 512,512,180,250,300,512,220,90 --pairs 2
    python benchmarks/bench_packing.py --task arithmetic-add2     # whole passes of a training step

With `--task`, one GRPO rollout of that task (8 prompts x 8 samples, the `mathrl run`
defaults) is drawn once, and the step's reference pass and update are timed on it, packed
and padded alternately: what packing saves in a real step, on real completion lengths.

One chunk of rows sharing a prompt of `--prompt` tokens, completions of `--lengths` tokens
(random token ids: the cost does not depend on them), through `logprobs.forward_completion`
on SmolLM2-135M in bf16 mixed precision, 1 thread, packed or padded whatever the share of
padding (packing.MIN_PADDING is set from these numbers). Both sides run in the same process,
alternating (the first pair padded first, the next packed first), so the VM's drift hits
both alike; the padded side is the same code with packing turned off. Prints each time and
the ratio of the medians. results/bench/speed4.md records what it measured.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import mathrl.logprobs as logprobs
from mathrl.engine.host import reuse_freed_memory
from mathrl.models import load_model


def chunk(tokenizer, prompt: int, lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(100, 40000, (len(lengths), prompt + max(lengths)), generator=g)  # (n, P + T)
    ids[:, :prompt] = torch.randint(100, 40000, (prompt,), generator=g)  # one shared prompt
    mask = torch.ones_like(ids)
    for row, length in enumerate(lengths):
        mask[row, prompt + length:] = 0
        ids[row, prompt + length:] = tokenizer.pad_token_id
    return ids, mask


def lengths_arg(text: str) -> list[int]:
    try:
        lengths = [int(x) for x in text.split(",")]
    except ValueError:
        lengths = []
    if not lengths or min(lengths) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return lengths


def step_passes(task: str, pairs: int) -> None:
    """Reference pass and update of one real rollout, packed against padded, alternating."""
    import tempfile

    from mathrl.config import build_config
    from mathrl.run_state import build_run_state
    from mathrl.train import advantages, grade, old_policy_outputs, reference_logprobs, rollout
    from mathrl.update import policy_update

    with tempfile.TemporaryDirectory(prefix="mathrl-bench-packing-") as out:
        cfg = build_config("grpo", None, {"task": task, "threads": 1, "eval_limit": 0, "eval_every": 0,
                                          "samples_every": 0, "save_final": False, "output": out})
        state = build_run_state(cfg)
        state.policy_is_reference = False  # a step after the first: the reference pass runs
        batch = rollout(state, state.sampler.next(state.prompts_per_rank))
        rewards = grade(state, batch)
        lengths = batch.completion_mask.sum(-1)
        print(f"{task}: {batch.size} rows, prompt {batch.prompt_len} columns, completions of "
              f"{float(lengths.mean()):.1f} tokens on average, longest {int(lengths.max())} "
              f"(limit {state.max_new_tokens})")
        times: dict[tuple[bool, str], list[float]] = {}
        for i in range(pairs):
            for packed in ((False, True) if i % 2 == 0 else (True, False)):
                logprobs.can_pack = lambda *args: packed
                start = time.perf_counter()
                ref = reference_logprobs(state, batch)
                middle = time.perf_counter()
                inputs, _ = advantages(state, batch, rewards, ref, old_policy_outputs(state, batch))
                policy_update(state.model, state.value_head, state.optimizer, state.scheduler, state.accelerator,
                              batch, inputs, state.update_params, state.generator)
                end = time.perf_counter()
                times.setdefault((packed, "reference"), []).append(middle - start)
                times.setdefault((packed, "update"), []).append(end - middle)
        for phase in ("reference", "update"):
            padded, packed_ = times[(False, phase)], times[(True, phase)]
            print(f"{phase}: padded {[round(t, 2) for t in padded]} s, packed {[round(t, 2) for t in packed_]} s, "
                  f"median ratio {statistics.median(packed_) / statistics.median(padded):.3f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--prompt", type=int, default=57, help="prompt tokens (57: the arithmetic task's chat prompt)")
    p.add_argument("--lengths", type=lengths_arg, default="16,32,20,12,8,32,32,32",
                   help="completion lengths, one per row")
    p.add_argument("--pairs", type=int, default=6, help="timed (padded, packed) pairs per measure")
    p.add_argument("--task", help="time a training step's reference pass and update on this task's rollout")
    a = p.parse_args()
    torch.set_num_threads(1)
    reuse_freed_memory()  # as `mathrl run` does
    if a.task:
        return step_passes(a.task, a.pairs)
    model, tokenizer = load_model("smollm2-135m", seed=0, dtype="bfloat16")
    lengths = a.lengths
    ids, mask = chunk(tokenizer, a.prompt, lengths)
    def run(packed: bool, grad: bool) -> float:
        # forced either way: packing.MIN_PADDING (set from these numbers) must not pick the side
        logprobs.can_pack = lambda *args: packed
        start = time.perf_counter()
        if grad:
            out = logprobs.forward_completion(model, ids, mask, a.prompt, with_entropy=True)
            (out["logp"].sum() + out["entropy"].sum()).backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.no_grad():
                logprobs.forward_completion(model, ids, mask, a.prompt)
        return time.perf_counter() - start

    run(True, True), run(False, True)  # warm-up: allocator, oneDNN kernels
    print(f"prompt {a.prompt}, lengths {lengths}: {sum(lengths)} real of {len(lengths) * max(lengths)} columns")
    for grad in (False, True):
        times: dict[bool, list[float]] = {False: [], True: []}
        for i in range(a.pairs):
            for packed in ((False, True) if i % 2 == 0 else (True, False)):
                times[packed].append(run(packed, grad))
        ratio = statistics.median(times[True]) / statistics.median(times[False])
        print(f"{'forward + backward' if grad else 'forward (no grad)'}: padded "
              f"{[round(t, 2) for t in times[False]]} s, packed {[round(t, 2) for t in times[True]]} s, "
              f"median ratio {ratio:.3f}", flush=True)


if __name__ == "__main__":
    main()
