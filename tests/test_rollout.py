import pytest
import torch

from mathrl.logprobs import completion_logprobs
import mathrl.engine.attention as attention
import mathrl.rollout as rollout
from mathrl.rollout import completion_mask_after_eos, hf_generate, merge_groups, teacher_forced_batch
from mathrl.types import Problem


def chat(text, i=0):
    return Problem(id=str(i), question=text, gold="5", messages=[{"role": "user", "content": text}])


def test_completion_mask_stops_after_first_eos():
    ids = torch.tensor([[5, 6, 2, 7, 2], [5, 6, 7, 8, 9], [2, 0, 0, 0, 0]])
    mask, truncated = completion_mask_after_eos(ids, [2])
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    assert truncated.tolist() == [False, True, False]


def test_groups_are_contiguous_and_shapes_consistent(tiny):
    model, tok = tiny
    torch.manual_seed(0)
    batch = hf_generate(model, tok, [chat("What is 2+3?"), chat("Hi", 1)], 3, 10)
    assert batch.size == 6 and [p.id for p in batch.problems] == ["0"] * 3 + ["1"] * 3
    T = batch.input_ids.shape[1] - batch.prompt_len
    assert batch.completion_mask.shape == (6, T) and batch.attention_mask.shape == batch.input_ids.shape
    # the prompt part of the attention mask counts exactly the real prompt tokens
    assert batch.prompt_tokens == int(batch.attention_mask[:, :batch.prompt_len].sum())


def test_on_rows_reports_rows_as_they_finish(tiny, monkeypatch):
    """What the eval progress bar counts: every row once, as it ends (EOS or the limit)."""
    model, tok = tiny
    problems = [chat("a"), chat("b", 1), chat("c", 2)]
    seen: list[int] = []
    torch.manual_seed(0)
    batch = hf_generate(model, tok, problems, 3, 30, temperature=3.0, max_rows=4, on_rows=seen.append)
    assert sum(seen) == batch.size and len(seen) > 3  # more often than once per chunk
    monkeypatch.setattr(rollout, "decoder_for", lambda model: None)  # the transformers path: once per chunk
    seen.clear()
    hf_generate(model, tok, problems, 3, 4, max_rows=4, on_rows=seen.append)
    assert seen == [4, 4, 1]


def test_left_padding_does_not_change_greedy_output(tiny):
    model, tok = tiny
    alone = hf_generate(model, tok, [chat("Hi")], 1, 8, greedy=True)
    padded = hf_generate(model, tok, [chat("Hi"), chat("A much longer question, padded", 1)], 1, 8, greedy=True)
    assert alone.completions[0] == padded.completions[0]


def test_logprobs_match_an_unpadded_forward(tiny):
    model, tok = tiny
    torch.manual_seed(1)
    batch = hf_generate(model, tok, [chat("What is 2+3?"), chat("Hi", 1)], 2, 8)
    logp = completion_logprobs(model, batch, temperature=1.0, micro_batch_size=3)["logp"]
    for i in range(batch.size):
        keep = batch.attention_mask[i].bool()
        ids = batch.input_ids[i][keep].unsqueeze(0)
        plen = int(batch.attention_mask[i, :batch.prompt_len].sum())
        T = int(batch.completion_mask[i].sum())
        logits = model(ids).logits[0].float()
        ref = torch.log_softmax(logits[plen - 1:plen - 1 + T], -1).gather(-1, ids[0, plen:plen + T, None]).squeeze(-1)
        assert torch.allclose(ref, logp[i, :T], atol=1e-4)
        assert torch.all(logp[i, T:] == 0)  # masked beyond EOS


def test_teacher_forced_batch_appends_eos(tiny):
    model, tok = tiny
    batch = teacher_forced_batch(tok, [chat("Q")], ["#### 5"], "cpu")
    T = int(batch.completion_mask.sum())
    assert T == len("#### 5") + 1  # char-level tokens + EOS
    assert batch.completion_ids[0, T - 1] == tok.eos_token_id


def test_merge_groups_keeps_rows_and_repads(tiny):
    model, tok = tiny
    torch.manual_seed(0)
    a = hf_generate(model, tok, [chat("Hi"), chat("Longer prompt here", 1)], 2, 5)
    b = hf_generate(model, tok, [chat("Another", 2)], 2, 9)
    merged = merge_groups([(a, 1), (b, 0)], tok.pad_token_id)
    assert [p.id for p in merged.problems] == ["1", "1", "2", "2"]
    assert merged.completions == a.completions[2:4] + b.completions[0:2]
    # the real tokens of each row survive re-padding
    for row, (src, r) in enumerate([(a, 2), (a, 3), (b, 0), (b, 1)]):
        assert merged.input_ids[row][merged.attention_mask[row].bool()].tolist() == \
            src.input_ids[r][src.attention_mask[r].bool()].tolist()


# ---- the decode loop -------------------------------------------------------------------------


def test_greedy_decode_equals_transformers_generate(tiny):
    model, tok = tiny
    problems = [chat("What is 2+3?"), chat("Hi", 1), chat("A much longer question, padded", 2)]
    batch = hf_generate(model, tok, problems, 1, 12, greedy=True)
    ids, mask = rollout.left_pad(rollout.encode_prompts(tok, problems), tok.pad_token_id)
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12, do_sample=False,
                         pad_token_id=tok.pad_token_id, eos_token_id=rollout.eos_ids(model, tok))
    ref_mask, _ = completion_mask_after_eos(out[:, ids.shape[1]:], rollout.eos_ids(model, tok))
    assert batch.completions == rollout.decode_completions(tok, out[:, ids.shape[1]:], ref_mask)


def test_decode_attention_equals_sdpa():
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal = 3, True
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(4, h, L, 8, generator=gen) for h, L in ((6, 1), (2, 7), (2, 7)))
    mask = torch.ones(4, 1, 1, 7, dtype=torch.bool)
    mask[1, ..., :3] = False  # left padding
    with torch.no_grad():
        for m in (mask, None, torch.zeros(4, 1, 1, 7).masked_fill(~mask, float("-inf"))):
            ours, _ = attention.decode_attention(module, q, k, v, m, scaling=0.3)
            ref, _ = sdpa_attention_forward(module, q, k, v, m, scaling=0.3)
            torch.testing.assert_close(ours, ref)


def test_inverse_cdf_sampling_follows_the_tempered_top_p_distribution():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]]).repeat(20000, 1)
    torch.manual_seed(0)
    for temperature, top_p in ((1.0, 1.0), (0.5, 1.0), (1.0, 0.8)):
        counts = torch.bincount(rollout.next_tokens(logits, False, temperature, top_p), minlength=4).float() / 20000
        want = torch.softmax(logits[0] / temperature, -1)
        if top_p < 1:  # 0.64 + 0.24 >= 0.8: the two top tokens, renormalised
            want = torch.cat([want[:2], torch.zeros(2)]) / want[:2].sum()
        torch.testing.assert_close(counts, want, atol=0.015, rtol=0)


def test_finished_rows_leave_the_batch(tiny, monkeypatch):
    """Every row stops at its own EOS; finished rows leave the batch once they are a quarter
    of it, so a step computes the unfinished rows plus fewer than a quarter finished ones."""
    import mathrl.engine.decoder as decoder

    model, tok = tiny
    rows_per_step = []
    forward = decoder.Decoder.forward
    monkeypatch.setattr(decoder.Decoder, "forward",
                        lambda self, tokens, *a: rows_per_step.append(tokens.shape[0]) or forward(self, tokens, *a))
    torch.manual_seed(0)
    batch = hf_generate(model, tok, [chat("Hi"), chat("Yo", 1)], 8, 40, temperature=3.0)
    lengths = batch.completion_mask.sum(-1).long()
    assert len(set(lengths.tolist())) > 1  # some rows did end early
    assert rows_per_step[0] == 2  # the prefill: one row per distinct prompt
    decoding = [int((lengths > t).sum()) for t in range(1, int(lengths.max()))]  # before step t
    assert len(rows_per_step[1:]) == len(decoding)
    assert all(unfinished <= rows < unfinished + rows / 4 or rows == unfinished
               for rows, unfinished in zip(rows_per_step[1:], decoding))
    assert rows_per_step[-1] < 16  # rows did leave


def test_finished_rows_leave_the_batch_on_the_transformers_path(tiny, monkeypatch):
    """Models mathrl.engine.decoder does not cover decode through transformers, with the same rule
    minus the lazy compaction: every step runs exactly the unfinished rows."""
    model, tok = tiny
    monkeypatch.setattr(rollout, "decoder_for", lambda model: None)
    rows_per_step = []
    forward = model.forward
    monkeypatch.setattr(model, "forward",
                        lambda *a, **kw: rows_per_step.append(kw["input_ids"].shape[0]) or forward(*a, **kw))
    torch.manual_seed(0)
    batch = hf_generate(model, tok, [chat("Hi"), chat("Yo", 1)], 4, 40, temperature=3.0)
    lengths = batch.completion_mask.sum(-1).long()
    assert len(set(lengths.tolist())) > 1
    assert rows_per_step[1:] == [int((lengths > t).sum()) for t in range(int(lengths.max()))]


def test_a_sharded_model_decodes_with_generate_which_keeps_ranks_in_step(tiny, monkeypatch):
    """Under FSDP every rank must step until all are done: generate() (synced_gpus) does that,
    decode() does not, so a model marked sharded takes generate() and samples the same greedy tokens."""
    model, tok = tiny
    problems = [chat("What is 2+3?"), chat("Hi", 1)]
    plain = hf_generate(model, tok, problems, 2, 10, greedy=True)
    monkeypatch.setattr(rollout, "decode", lambda *a, **kw: pytest.fail("decode() on a sharded model"))
    monkeypatch.setattr(model, "_is_fsdp_managed_module", True, raising=False)
    assert hf_generate(model, tok, problems, 2, 10, greedy=True).completions == plain.completions
