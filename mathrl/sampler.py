"""Which training problems each step draws: seeded epochs, sharded over processes, resumable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class PromptSampler:
    """Epochs over the training problems, each in a fresh seeded permutation (resumable).

    Under several processes every rank shares the permutation and takes every `world`-th
    entry from offset `rank`: shards are disjoint however many prompts each rank draws (DAPO's
    dynamic sampling draws unequal numbers), and W ranks drawing k each see exactly the k * W
    prompts that one process drawing k * W would see."""

    n: int
    seed: int
    rank: int = 0
    world: int = 1
    epoch: int = 0
    position: int = 0
    order: list[int] = field(default_factory=list)

    def next_indices(self, k: int) -> list[int]:
        out = []
        while len(out) < k:
            if not self.order or self.position >= len(self.order):
                if self.order:
                    self.epoch += 1
                g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
                self.order, self.position = torch.randperm(self.n, generator=g).tolist(), self.rank
            out.append(self.order[self.position])
            self.position += self.world
        return out

    def state_dict(self) -> dict[str, Any]:
        # rank-free position: the main process saves it and every rank resumes from its offset
        return {"epoch": self.epoch, "position": self.position - self.rank, "order": list(self.order)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.order = state["epoch"], list(state["order"])
        self.position = state["position"] + self.rank


@dataclass
class ProblemSampler:
    problems: list
    index: PromptSampler

    def next(self, k: int) -> list:
        return [self.problems[i] for i in self.index.next_indices(k)]
