"""How concentrated a map is: Sparseness (Chalasani et al., "Concise Explanations of Neural Networks using
Adversarial Training", ICML 2020) and Complexity (Bhatt et al., "Evaluating and Aggregating Feature-based
Model Explanations", IJCAI 2020), as torchmetrics Metrics.

Both read the map only. With a = |phi| / max |phi| per image (an all-zero map stays zero) flattened to
n values,

    Sparseness = sum_i (2i - n - 1) a'_(i) / (n sum_i a'_i),  a' = a + 1e-7 sorted ascending (Gini index)
    Complexity = -sum_i q_i log(q_i + 1e-12),  q = a / sum a   (entropy of the normalised absolute map)

with quantus' epsilons. Sparseness is in [0, 1), higher = more concentrated (one non-zero value gives
(n - 1) / n); Complexity is in [0, log n], lower = more concentrated. An all-zero map counts as uniform:
Sparseness 0, Complexity log n. quantus normalises by the maximum over the whole batch, which makes the
epsilons' effect depend on the batch; here each image is normalised alone.
"""

from __future__ import annotations

import abc
import math

import torch
from torch import Tensor, nn

from lit_xai.metrics.common import PerImageMean, metric_layout
from lit_xai.targets import ForwardArgs, TargetsLike

GINI_EPSILON = 1e-7
ENTROPY_EPSILON = 1e-12


def max_normalised_abs(saliency: Tensor) -> Tensor:
    """|phi| / max |phi| per image, `(B, n)` float64; an all-zero map stays zero."""
    flat = saliency.flatten(1).double().abs()
    peak = flat.max(dim=1, keepdim=True).values
    return flat / torch.where(peak > 0, peak, torch.ones_like(peak))


def gini_index(saliency: Tensor) -> Tensor:
    """Sparseness of each map `(B, *spatial)`, `(B,)` float64 (module docstring)."""
    values = (max_normalised_abs(saliency) + GINI_EPSILON).sort(dim=1).values
    n = values.shape[1]
    weights = 2 * torch.arange(1, n + 1, dtype=torch.float64, device=values.device) - n - 1
    return (weights * values).sum(dim=1) / (n * values.sum(dim=1))


def map_entropy(saliency: Tensor) -> Tensor:
    """Complexity of each map `(B, *spatial)`, `(B,)` float64 (module docstring)."""
    values = max_normalised_abs(saliency)
    total = values.sum(dim=1, keepdim=True)
    shares = values / torch.where(total > 0, total, torch.ones_like(total))
    entropy = -(shares * torch.log(shares + ENTROPY_EPSILON)).sum(dim=1)
    return torch.where(total.squeeze(1) > 0, entropy, torch.full_like(entropy, math.log(values.shape[1])))


class MapStatistic(PerImageMean):
    """A per-image statistic of the map alone. `update(model, inputs, saliency, targets=None)` takes the
    faithfulness metrics' arguments (so the callback runs it like them); only the shapes of `inputs`
    are read, never the model."""

    @abc.abstractmethod
    def statistic(self, saliency: Tensor) -> Tensor:
        """Per-image value `(B,)` float64."""

    def update(self, model: nn.Module | None, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        metric_layout(self, inputs, saliency)
        self.add_values(self.statistic(saliency))


class Sparseness(MapStatistic):
    """Gini index of the absolute map (Chalasani et al. 2020); higher = sparser."""

    higher_is_better = True

    def statistic(self, saliency: Tensor) -> Tensor:
        return gini_index(saliency)


class Complexity(MapStatistic):
    """Entropy of the normalised absolute map (Bhatt et al. 2020); lower = simpler."""

    higher_is_better = False

    def statistic(self, saliency: Tensor) -> Tensor:
        return map_entropy(saliency)


class EffectiveComplexity(MapStatistic):
    """Effective Complexity (Nguyen and Martinez, "On quantitative aspects of model interpretability",
    arXiv:2007.07584, 2020): the number of positions whose attribution matters,

        EC = #{ p : |phi_p| / max |phi| > eps }

    (quantus' defaults abs=True, normalise=True, eps 1e-5; quantus divides by the batch's maximum, lit-xai
    by each image's, so an image's count never depends on the rest of its batch; an all-zero map counts
    0). Lower is better. Reads the map only.
    """

    higher_is_better = False

    def __init__(self, eps: float = 1e-5, **kwargs: object) -> None:
        super().__init__(**kwargs)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps < 0:
            raise ValueError(f"eps must be a number >= 0, got {eps!r}")
        self.eps = float(eps)

    def statistic(self, saliency: Tensor) -> Tensor:
        return (max_normalised_abs(saliency) > self.eps).sum(dim=1).double()
