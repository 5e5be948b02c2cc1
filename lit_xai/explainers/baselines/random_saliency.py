"""A model-free random baseline."""

from __future__ import annotations

from torch import Tensor, nn

from lit_xai.explainers.base import Explainer
from lit_xai.explainers.seeding import per_sample_uniform


class RandomSaliency(Explainer):
    """Random saliency: every position gets an independent U(0, 1) value.

    The chance level of faithfulness metrics (any method should beat it). A sample's map depends only on
    `seed` and the sample's content, never on its batch or process, so results are the same on one
    process or many, and the global random state is never consumed.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        return per_sample_uniform(inputs, tuple(inputs.shape[2:]), self.seed)
