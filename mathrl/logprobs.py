"""Per-token log-probs of completion tokens under a policy, old policy or reference.

Only completion positions reach the LM head (`logits_to_keep`), so the (N, L, V) logits of
the prompt are never materialised; rows are processed in chunks of `micro_batch_size`.
Log-probs are taken at the sampling temperature: the rollout sampled from
softmax(logits / T), and the ratio and KL terms must be of that same distribution.
"""

from __future__ import annotations

import torch


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, as generate() used them."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # (N, L)


def forward_completion(model, input_ids, attention_mask, prompt_len: int, temperature: float = 1.0,
                       with_entropy: bool = False, value_head=None) -> dict[str, torch.Tensor]:
    """One chunk: log-probs (and optionally entropy, values) of completion tokens, with grad.

    Token t of the completion sits at column prompt_len + t and is predicted by the logits at
    column prompt_len + t - 1; values V(s_t) come from the hidden state at that same column.
    """
    T = input_ids.shape[1] - prompt_len
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids(attention_mask),
                logits_to_keep=T + 1, output_hidden_states=value_head is not None, use_cache=False)
    logits = out.logits[:, :-1].float() / temperature  # (n, T, V)
    targets = input_ids[:, prompt_len:]  # (n, T)
    log_z = torch.logsumexp(logits, -1)  # (n, T)
    result = {"logp": logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - log_z}  # (n, T)
    if with_entropy:
        probs = torch.softmax(logits, -1)  # (n, T, V)
        result["entropy"] = log_z - (probs * logits).sum(-1)  # (n, T)  H = log Z - E_p[logit]
    if value_head is not None:
        hidden = out.hidden_states[-1][:, prompt_len - 1:-1]  # (n, T, H)
        result["values"] = value_head(hidden.float())  # (n, T)
    return result


@torch.no_grad()
def completion_logprobs(model, batch, temperature: float = 1.0, micro_batch_size: int = 8,
                        value_head=None) -> dict[str, torch.Tensor]:
    """No-grad log-probs (and values) for a whole Batch, chunked over rows."""
    parts: dict[str, list[torch.Tensor]] = {}
    for start in range(0, batch.size, micro_batch_size):
        rows = slice(start, start + micro_batch_size)
        chunk = forward_completion(model, batch.input_ids[rows], batch.attention_mask[rows], batch.prompt_len,
                                   temperature, value_head=value_head)
        for key, value in chunk.items():
            parts.setdefault(key, []).append(value)
    return {key: torch.cat(values) * batch.completion_mask for key, values in parts.items()}  # (N, T)
