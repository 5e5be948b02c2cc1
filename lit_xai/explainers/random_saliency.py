"""A model-free random baseline."""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor, nn

from lit_xai.explainers.base import Explainer


def sample_seed(sample: Tensor, seed: int) -> int:
    """A 63-bit seed from `seed` and the sample's bytes: equal samples get equal seeds."""
    digest = hashlib.blake2b(sample.detach().cpu().contiguous().numpy().tobytes(), digest_size=8).digest()
    return (int.from_bytes(digest, "little") ^ seed) & ((1 << 63) - 1)


class RandomSaliency(Explainer):
    """Random saliency: every position gets an independent U(0, 1) value.

    The chance level of faithfulness metrics (any method should beat it). A sample's map depends only on
    `seed` and the sample's content, never on its batch or process, so results are the same on one
    process or many, and the global random state is never consumed.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        spatial = tuple(inputs.shape[2:])
        maps = [torch.rand(spatial, generator=torch.Generator().manual_seed(sample_seed(x, self.seed))) for x in inputs]
        return torch.stack(maps).to(inputs.device)
