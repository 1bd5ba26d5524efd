"""The step optimisations are exact, and `mathrl bench` counts what the trainer counts.

Prefix sharing (a group's prompt run once, its KV cache repeated per row) and the trailing-
padding trim must give the numbers of a plain full forward: log-probs, entropies, values and
gradients, and — in the rollout — the same tokens. results/bench/README.md measures the speed.
"""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

import mathrl.rollout as rollout
from mathrl.bench import bench_step, chunk_prompt_passes, phase_flops
from mathrl.config import build_config
from mathrl.logprobs import forward_completion
from mathrl.rollout import hf_generate, left_pad, position_ids
from mathrl.types import Problem

PROBLEMS = [Problem(id=str(i), question=q, gold="0", prompt=q) for i, q in
            enumerate(["What is 2+2?", "7*8 =", "A much longer question, so that prompts are left-padded: 9-4?"])]


def plain_forward(model, ids, mask, prompt_len, temperature, value_head=None):
    """The reference: one full forward over every column, log-softmax (at least float32, as
    logprobs takes it; a float64 model stays float64), gather."""
    out = model(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask),
                output_hidden_states=value_head is not None, use_cache=False)
    logits = out.logits[:, prompt_len - 1:-1]
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32)) / temperature  # (n, T, V)
    logp = torch.log_softmax(logits, -1)  # (n, T, V)
    result = {"logp": logp.gather(-1, ids[:, prompt_len:].unsqueeze(-1)).squeeze(-1),  # (n, T)
              "entropy": -(logp.exp() * logp).sum(-1)}  # (n, T)
    if value_head is not None:
        result["values"] = value_head(out.hidden_states[-1][:, prompt_len - 1:-1])  # (n, T)
    return result


@pytest.fixture(scope="module")
def sampled(tiny):
    model, tokenizer = tiny
    torch.manual_seed(0)
    return hf_generate(model, tokenizer, PROBLEMS, 4, 10, temperature=1.0)  # 12 rows, 3 groups


@pytest.mark.parametrize("rows", [slice(0, 12), slice(2, 9), slice(4, 5)])  # groups, groups split, a single row
def test_prefix_shared_forward_equals_a_plain_forward_values_and_gradients(tiny, sampled, rows):
    model, _ = tiny
    head = torch.nn.Linear(model.config.hidden_size, 1)
    value_head = lambda h: head(h).squeeze(-1)  # noqa: E731
    ids, mask, P = sampled.input_ids[rows], sampled.attention_mask[rows], sampled.prompt_len
    cmask = sampled.completion_mask[rows]  # (n, T)
    grads = []
    for fn in (plain_forward, lambda *a, **k: forward_completion(*a, **k, with_entropy=True)):
        model.zero_grad()
        head.zero_grad()
        out = fn(model, ids, mask, P, 0.7, value_head=value_head)
        ((out["logp"] + 0.1 * out["entropy"] + out["values"]) * cmask).sum().backward()
        grads.append((out, [p.grad.clone() for p in [*model.parameters(), *head.parameters()]]))
    model.zero_grad(set_to_none=True)  # the tiny fixture is shared with other tests
    (ref, ref_grads), (got, got_grads) = grads
    for key in ("logp", "entropy", "values"):
        torch.testing.assert_close(got[key] * cmask, ref[key] * cmask, atol=2e-5, rtol=1e-4)
    for g_ref, g_got in zip(ref_grads, got_grads):
        torch.testing.assert_close(g_got, g_ref, atol=1e-4, rtol=1e-3)


def test_entropy_without_grad_is_the_same_number_and_builds_no_graph(tiny, sampled):
    model, _ = tiny
    args = (model, sampled.input_ids, sampled.attention_mask, sampled.prompt_len, 0.7)
    with_grad = forward_completion(*args, with_entropy=True)
    logged = forward_completion(*args, with_entropy=True, entropy_grad=False)  # what the update logs
    assert with_grad["entropy"].requires_grad and not logged["entropy"].requires_grad
    assert logged["logp"].requires_grad  # the loss still trains through the log-probs
    torch.testing.assert_close(logged["entropy"], with_grad["entropy"].detach(), atol=0, rtol=0)


def test_columns_after_the_longest_completion_come_back_as_zeros(tiny, sampled):
    model, tokenizer = tiny
    P, length = sampled.prompt_len, 3
    ids, mask = sampled.input_ids[:5].clone(), sampled.attention_mask[:5].clone()  # a group and a bit
    mask[:, P + length:] = 0  # every completion ended after 3 tokens: the rest is padding
    ids[:, P + length:] = tokenizer.pad_token_id
    with torch.no_grad():
        out = forward_completion(model, ids, mask, P)["logp"]  # (5, T)
        ref = plain_forward(model, ids, mask, P, 1.0)["logp"]  # (5, T)
    assert out.shape == ref.shape and (out[:, length:] == 0).all()
    torch.testing.assert_close(out[:, :length], ref[:, :length], atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("engine", [True, False])  # mathrl.engine.decoder, or the transformers path
@pytest.mark.parametrize("greedy", [True, False])
def test_rollout_with_a_shared_prompt_cache_samples_the_same_tokens(tiny, monkeypatch, greedy, engine):
    model, tokenizer = tiny
    if not engine:
        monkeypatch.setattr(rollout, "decoder_for", lambda model: None)
    generate_rows = rollout.generate_rows
    outs = []
    for share in (True, False):
        if not share:  # every row prefills its own copy of the prompt, as plain generate() does
            monkeypatch.setattr(rollout, "shared_prompt_cache", lambda *args: {})
            monkeypatch.setattr(rollout, "generate_rows", lambda d, ids, mask, which, *a, **kw: generate_rows(
                d, ids, mask, torch.arange(len(which)), *a, **kw))
        torch.manual_seed(1)
        outs.append(hf_generate(model, tokenizer, PROBLEMS, 4, 12, greedy=greedy, max_rows=6))  # chunks split groups
    assert outs[0].completions == outs[1].completions
    assert torch.equal(outs[0].input_ids, outs[1].input_ids)
    assert torch.equal(outs[0].attention_mask, outs[1].attention_mask)


def test_shared_prompt_cache_holds_one_row_per_sample(tiny):
    model, tokenizer = tiny
    ids, mask = left_pad(rollout.encode_prompts(tokenizer, PROBLEMS), tokenizer.pad_token_id)  # (3, P)
    which = torch.tensor([0, 0, 1, 1, 1, 2])
    cache = rollout.shared_prompt_cache(model, ids, mask, which)[rollout.CACHE_KEY]
    assert cache.get_seq_length() == ids.shape[1] - 1
    keys = cache.layers[0].keys  # (6, heads, P-1, d)
    assert keys.shape[0] == 6 and torch.equal(keys[2], keys[4]) and not torch.equal(keys[1], keys[2])
    assert rollout.shared_prompt_cache(model, ids, mask, torch.tensor([0, 1, 2])) == {}  # nothing shared


# ---- the bench ---------------------------------------------------------------------------------
def test_prompt_passes_are_one_per_chunk_and_group():
    assert chunk_prompt_passes(16, 8, 8) == 2 and chunk_prompt_passes(16, 8, 16) == 2
    assert chunk_prompt_passes(16, 8, 4) == 4  # a group spans two chunks: its prompt runs twice
    assert chunk_prompt_passes(16, 8, 6) == 4  # chunks: [g0], [g0 g1], [g1]
    assert chunk_prompt_passes(5, 1, 2) == 5


def test_executed_flops_count_each_groups_prompt_once_per_chunk():
    cfg = build_config("grpo", None, {"prompts_per_step": 2, "group_size": 8, "micro_batch_size": 8})
    step = {"tokens/prompt": 16 * 57, "tokens/generated": 400, "tokens/trained": 16 * 57 + 400}
    n = 1000
    counted, executed = phase_flops(n, step, cfg, False), phase_flops(n, step, cfg, True)
    assert counted["update"] == 6 * n * (16 * 57 + 400)
    assert executed["update"] == 6 * n * (2 * 57 + 400)  # 2 groups x 1 chunk each
    assert executed["reference"] == 2 * n * (2 * 57 + 400) and counted["old_logprobs"] == 0
    assert executed["rollout"] == 2 * n * (2 * 56 + 16 + 400)  # shared prefill + each row's last prompt token


def test_bench_on_tiny_reports_phases_and_matches_the_trainers_flop_count():
    result = bench_step("tiny", prompts=2, samples=4, new_tokens=6, repeats=1, threads=1, log=lambda _: None)
    m, n = result["median"], result["config"]["n_params_flop"]  # one step: its median is itself
    prompt, generated = m["tokens_prompt"], m["tokens_generated"]  # 8 rows, each prompt counted per row
    flops = {p: v["flops"] for p, v in m["phases"].items()}
    assert flops == {"rollout": 2 * n * (prompt + generated), "reward": 0.0,
                     "reference": 2 * n * (prompt + generated),  # beta = 0.04 > 0: a reference pass
                     "old_logprobs": 0.0,  # mu = 1: pi_old is the current policy
                     "update": 6 * n * (prompt + generated)}
    assert m["flops"] == sum(flops.values())
    # executed: each group's prompt once (one chunk of 8 rows), plus each row's last prompt token in the rollout
    p = prompt / 8
    assert m["phases"]["update"]["executed_flops"] == pytest.approx(6 * n * (2 * p + generated))
    assert m["phases"]["rollout"]["executed_flops"] == pytest.approx(2 * n * (2 * (p - 1) + 8 + generated))
    assert m["roofline_s"] == pytest.approx(m["flops"] / m["peak_flops_wall"])
    assert m["ratio"] == pytest.approx(m["wall_s"] / m["roofline_s"])
    assert m["executed_ratio"] == pytest.approx(m["wall_s"] * m["peak_flops_wall"] / m["executed_flops"])
    assert m["tokens_per_s"] == pytest.approx((prompt + generated) / m["wall_s"])
    assert 0 < m["wall_s"] and result["peak_rss_mib"] > 0


def test_bench_cli_explains_its_options_and_writes_json(tmp_path):
    from mathrl.cli import app

    runner = CliRunner()
    help_text = runner.invoke(app, ["bench", "--help"], terminal_width=200).output
    for option in ("--model", "--prompts", "--samples", "--new-tokens", "--repeats", "--threads"):
        assert option in help_text
    out = tmp_path / "bench.json"
    done = runner.invoke(app, ["bench", "--model", "tiny", "--prompts", "2", "--samples", "2", "--new-tokens", "4",
                               "--repeats", "1", "--threads", "1", "--output", str(out)])
    assert done.exit_code == 0, done.output
    record = json.loads(out.read_text())
    assert {k: record["config"][k] for k in ("model", "prompts", "samples", "new_tokens", "repeats")} == {
        "model": "tiny", "prompts": 2, "samples": 2, "new_tokens": 4, "repeats": 1}
    m = record["median"]
    assert m["flops"] == sum(v["flops"] for v in m["phases"].values())
    # the printed step row is the record's: wall seconds and GFLOP as the table rounds them
    step_row = next(line.split() for line in done.output.splitlines() if line.startswith(f"{'step':<13}"))
    assert step_row[1] == f"{m['wall_s']:.2f}" and step_row[3] == f"{m['flops'] / 1e9:.1f}"
