"""Sufficiency and Consistency (Dasgupta et al., "Framework for Evaluating Faithfulness of Local
Explanations", ICML 2022), as torchmetrics Metrics. Both compare each image with the other images of its
batch: an explanation is faithful when images explained alike are predicted alike.

Sufficiency: with a = |phi| / max |phi| per image (quantus' abs=True, normalise=True; quantus divides by
the batch's maximum) and d the standardised Euclidean distance over the batch (scipy's
`cdist(a, a, "seuclidean")`, quantus' `distance_func`) divided by the batch's largest distance (quantus
normalises the distance matrix by its maximum), the images j != i with d(a_i, a_j) <= `threshold`
(quantus 0.6) are i's neighbours, and

    Sufficiency_i = #{neighbours j predicted as i} / #{neighbours}        (0 without neighbours, as quantus)

A position whose value is the same in every map of the batch (variance 0) adds nothing to the distance
(scipy divides 0 by 0 and returns NaN, which counts as "not close").

Consistency: each map is discretised into a label, the n = `top_n` positions of largest |phi| and the
signs of their attributions (the paper's top-k discretisation), and

    Consistency_i = #{j != i: same label, predicted as i} / (#{j != i: same label} + 1e-9)

quantus' default `top_n_sign` takes the signs of the first five elements of the map in raster order,
after `abs=True` (all signs positive), so every map gets the same label; lit-xai ranks positions by
|phi| and keeps the signs.

Both are higher is better. The predicted class is the argmax of the model's outputs. Per-image values
depend on the other images of the batch, and under DDP on the process that holds it: compare explainers
on the same batches. Targets are not read (None or any: the same values). Cost: one pass per image.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lit_xai.metrics.common import PerImageMean, metric_passes
from lit_xai.metrics.faithfulness.steps import prepared_map
from lit_xai.metrics.robustness.base import check_number, predicted_class
from lit_xai.targets import ForwardArgs, TargetsLike, model_outputs

DISTANCES = ("seuclidean", "euclidean")
TINY = torch.finfo(torch.float64).tiny  # all distances 0 (one image, or equal maps): divided by this they stay 0


def standardised_distances(values: Tensor) -> Tensor:
    """Pairwise `(B, B)` standardised Euclidean distances of `(B, N)` rows, up to one factor shared by every
    pair: each column divided by the square root of its sum of squared deviations over the rows. scipy's
    `cdist(a, a, "seuclidean")` divides by its variance (ddof 1) over the two stacked copies of the rows,
    2 / (2 B - 1) times that sum, so its distances are sqrt((2 B - 1) / 2) times these; the factor divides
    out when the distances are divided by their largest. Columns of variance 0 are left out."""
    centred = values - values.mean(dim=0)  # two-pass, as numpy's variance
    weights = centred.square().sum(dim=0).rsqrt_().nan_to_num_(posinf=0.0)  # 0 for a column of variance 0
    scaled = centred.mul_(weights)
    return torch.cdist(scaled, scaled, compute_mode="donot_use_mm_for_euclid_dist")  # the differences, not |a|^2 + |b|^2 - 2ab


def top_positions(values: Tensor, k: int) -> Tensor:
    """`(B, k)`: each row's positions of the k largest values, largest first, ties in index order (a stable
    descending argsort's first k). `topk` when no two of the k + 1 largest are equal, else the argsort."""
    if k < values.shape[1]:
        largest, positions = values.topk(k + 1, dim=1)
        if not bool((largest[:, 1:] == largest[:, :-1]).any()):
            return positions[:, :k]
    return values.argsort(dim=1, descending=True, stable=True)[:, :k]


class BatchRelativeMetric(PerImageMean):
    """Shared: the predicted classes of the batch and the per-image value from the pairs i != j."""

    higher_is_better = True

    def predictions(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike, forward_args: ForwardArgs) -> tuple[Tensor, Tensor]:
        with metric_passes(self, model, inputs, saliency, targets, forward_args, resolve=False) as (model, inputs, saliency, _):  # targets unused
            return predicted_class(model_outputs(model, inputs)).to(saliency.device), saliency

    @staticmethod
    def agreement(related: Tensor, classes: Tensor, epsilon: float) -> Tensor:
        """Per row: the share of its related others (`related` `(B, B)` bool, the diagonal ignored and set to
        False in place) predicted as itself; with `epsilon` 0, 0 for a row with no related others."""
        related.fill_diagonal_(False)
        count = related.sum(dim=1, dtype=torch.float64)
        hits = (related & (classes.unsqueeze(1) == classes)).sum(dim=1, dtype=torch.float64)
        return hits.div_(count.add_(epsilon) if epsilon > 0 else count.clamp_(min=1.0))  # no related others: 0 / 1


class Sufficiency(BatchRelativeMetric):
    """Sufficiency (Dasgupta et al. 2022): the share of an image's close neighbours in explanation space
    that the model predicts as it (module docstring); higher is better.

    Args:
        threshold: the largest distance of a neighbour (quantus' 0.6).
        distance: "seuclidean" (quantus' default) or "euclidean".
        abs: |phi| (quantus' default True).
    """

    def __init__(self, threshold: float = 0.6, distance: str = "seuclidean", abs: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
        self.threshold, self.distance, self.abs = check_number(threshold, "threshold"), distance, bool(abs)

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        classes, saliency = self.predictions(model, inputs, saliency, targets, forward_args)
        values = prepared_map(saliency, self.abs, normalise=True)
        distances = standardised_distances(values) if self.distance == "seuclidean" else torch.cdist(values, values)
        distances = distances.div_(distances.amax().clamp_(min=TINY))  # quantus divides by the batch's largest distance
        self.add_values(self.agreement(distances <= self.threshold, classes, 0.0))


class Consistency(BatchRelativeMetric):
    """Consistency (Dasgupta et al. 2022): the share of the images explained alike (same top positions and
    signs) that the model predicts alike (module docstring); higher is better.

    Args:
        top_n: positions in the discretised explanation (quantus' n = 5).
    """

    def __init__(self, top_n: int = 5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
            raise ValueError(f"top_n must be a positive int, got {top_n!r}")
        self.top_n = top_n

    def labels(self, saliency: Tensor) -> Tensor:
        """`(B, 2 top_n)` long: each map's top positions by |phi| (stable) and their signs."""
        flat = saliency.flatten(1)
        if self.top_n > flat.shape[1]:
            raise ValueError(f"top_n {self.top_n} is larger than the map's {flat.shape[1]} positions")
        top = top_positions(flat.abs(), self.top_n)
        return torch.cat([top, flat.gather(1, top).sign().long()], dim=1)

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        classes, saliency = self.predictions(model, inputs, saliency, targets, forward_args)
        labels = self.labels(saliency)
        alike = (labels.unsqueeze(1) == labels).all(dim=-1)
        self.add_values(self.agreement(alike, classes, 1e-9))
