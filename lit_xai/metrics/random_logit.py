"""Random Logit (Sixt et al., "When Explanations Lie: Why Many Modified BP Attributions Fail", ICML 2020),
as a torchmetrics Metric that re-runs the explainer.

An explanation of class y should differ from an explanation of another class: with y' drawn uniformly
from the K - 1 other classes (seeded per sample), E the explainer,

    RandomLogit = SSIM( E(x, y) , E(x, y') )

SSIM of the two maps as 2-D images (`lit_xai.metrics.ssim`, scikit-image's defaults, data range of the two
maps together, as quantus' `ssim`). quantus flattens the maps to 1-D vectors before its SSIM (a 7-long
window along the raster order, across row ends); lit-xai compares them as the images they are (the
paper's SSIM of heatmaps); `similarity="pearson"` or "spearman" compare them by correlation. Lower is
better. K is quantus' `num_classes` where given, else read from the model's outputs on one sample (one
pass). Cost: one explainer call per image.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lit_xai.checks import check_int
from lit_xai.explainers.seeding import sample_seeds
from lit_xai.metrics.common import PerImageMean, check_explainer, explain_rows, metric_passes
from lit_xai.metrics.randomization import map_similarity
from lit_xai.metrics.robustness.base import ExplainerFn
from lit_xai.metrics.ssim import structural_similarity
from lit_xai.targets import ForwardArgs, Target, TargetsLike, model_outputs

SIMILARITIES = ("ssim", "pearson", "spearman")


class RandomLogit(PerImageMean):
    """Similarity of the maps of the target class and of a random other class (module docstring); lower is better.

    Args:
        explainer: the explainer that produced the maps; None until set (the callback sets it).
        similarity: "ssim" (default), "pearson" or "spearman".
        win_size: the SSIM window (odd; 7 as scikit-image).
        seed: seed of the other class, per sample.
        num_classes: K, the model's number of classes (quantus' `num_classes`); None reads it from the
            model's outputs on the first sample, one more pass per update.
    """

    higher_is_better = False

    def __init__(
        self, explainer: ExplainerFn | None = None, similarity: str = "ssim", win_size: int = 7, seed: int = 0, num_classes: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        check_explainer(explainer)
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
        if isinstance(win_size, bool) or not isinstance(win_size, int) or win_size < 3 or win_size % 2 == 0:
            raise ValueError(f"win_size must be an odd int >= 3, got {win_size!r}")
        check_int(seed, "seed")
        if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2):
            raise ValueError(f"num_classes must be None (read from the model) or an int >= 2, got {num_classes!r}")
        self.explainer, self.similarity, self.win_size, self.seed, self.num_classes = explainer, similarity, win_size, seed, num_classes

    def other_classes(self, inputs: Tensor, targets: Tensor, classes: int) -> Tensor:
        """y' `(B,)`: for each sample, one of the `classes` - 1 classes other than its target, uniformly: its
        63-bit seed (`sample_seed`, a hash of its bytes) modulo `classes` - 1."""
        picks = torch.tensor([own_seed % (classes - 1) for own_seed in sample_seeds(inputs, self.seed)], dtype=torch.long).to(targets.device)
        return picks + (picks >= targets).long()  # skip the target: the picks index the other classes in order

    def values(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> Tensor:
        """Per-image similarity `(B,)` float64, without updating the state."""
        if self.explainer is None:
            raise ValueError("RandomLogit needs the explainer that produced the maps: RandomLogit(explainer=...) (ExplainerCallback sets it)")
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            if resolved is None or isinstance(resolved, Target):
                raise ValueError("RandomLogit explains another class: it needs a classifier with class-index targets (B,)")
            classes = self.num_classes or model_outputs(model, inputs[:1], torch.zeros(1, dtype=torch.long, device=inputs.device)).shape[1]
            if classes < 2:
                raise ValueError(f"RandomLogit needs a model with at least 2 classes, got outputs with {classes}")
            highest = int(resolved.max())
            if highest >= classes:
                raise ValueError(f"targets go up to {highest}, beyond num_classes={classes}: pass the model's number of classes")
            other = explain_rows(self.explainer, model, inputs, self.other_classes(inputs, resolved, classes), None)
            original = saliency.to(other.device)
            if self.similarity != "ssim":
                return map_similarity(original, other, self.similarity)
            lowest, highest = torch.stack([original, other], dim=1).flatten(1).double().aminmax(dim=1)
            data_range = highest - lowest
            return structural_similarity(original, other, data_range, self.win_size)

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        self.add_values(self.values(model, inputs, saliency, targets, forward_args))
