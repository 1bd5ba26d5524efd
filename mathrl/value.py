"""PPO value head on the shared policy trunk.

mathrl's critic is a linear head on the policy's last hidden state, as TRL's
`AutoModelForCausalLMWithValueHead`, not a separate critic model as in InstructGPT or verl.
Why: on CPU (and on one GPU) a second full model doubles the weights, optimizer state and
activations, and one forward pass gives both the logits and the values. The price is that the
value loss also moves the trunk the policy uses; the trainer weights it with vf_coef.

Alignment: like the logits, `values[:, j]` is computed from the hidden state at position j,
i.e. it is V(s) for the state *before* the token at position j + 1. With prompt length P, the
values of the T completion tokens are `values[:, P - 1 : P + T - 1]`, the same slice as the
logits that score them.
"""

from __future__ import annotations

import torch
from torch import nn


class ValueHead(nn.Module):
    """Linear(hidden, 1) read off each position's hidden state."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1)
        # Zero init: every value starts at 0, so the first GAE advantages are plain
        # returns and the critic's early random errors cannot push the policy around.
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        # The trunk may run in bf16; the head keeps its own (fp32) dtype for a precise value.
        h = hidden_states.to(self.linear.weight.dtype)  # (N, L, H)
        return self.linear(h).squeeze(-1)  # (N, L)


def _hidden_size(model: nn.Module) -> int:
    config = model.config
    # Multimodal configs keep the language model's sizes in a nested text config.
    if hasattr(config, "get_text_config"):
        config = config.get_text_config()
    return config.hidden_size


class PolicyWithValue(nn.Module):
    """A Hugging Face causal LM and a `ValueHead` sharing its trunk.

    `model` stays reachable (for `generate`, `save_pretrained`, LoRA adapters); the trainer
    checkpoints this module's state dict, which holds both.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.value_head = ValueHead(_hidden_size(model))

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        # hidden_states[-1] is the trunk's final (normed) output, the input of the LM head.
        values = self.value_head(out.hidden_states[-1])  # (N, L)
        return out.logits, values  # (N, L, V), (N, L)
