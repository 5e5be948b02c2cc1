"""Pixel-Flipping (Bach et al., "On Pixel-Wise Explanations for Non-Linear Classifier Decisions by
Layer-Wise Relevance Propagation", PLoS ONE 2015) and Selectivity (Montavon et al., "Methods for
interpreting and understanding deep neural networks", Digital Signal Processing 2018), as torchmetrics
Metrics.

Pixel-Flipping removes positions (replaced by the substrate, quantus' default "black": the image's
minimum) `features_in_step` at a time in descending order of attribution, cumulatively; step s = 1..S
(S = ceil(N / features_in_step)) has removed the top min(s f, N) positions and scores p_s (the target's
score of the perturbed input). Selectivity does the same with square `patch_size` x `patch_size` patches
(segments along T for series; the map zero-padded to whole patches, centred, as quantus does) ranked by the sum of
their attribution, one patch a step, S = number of patches. Per image

    AUC = sum_{s=1}^{S-1} (p_s + p_{s+1}) / 2          (trapezoid rule, unit spacing: quantus' np.trapz)

Lower is better (a faithful map makes the score fall fast). `curve()` gives the mean curve of images of
one size. quantus returns the curves themselves by default (`return_auc_per_sample=False`): the per-image
AUC is its `return_auc_per_sample=True` (Pixel-Flipping) and `get_auc_score` (Selectivity).
"""

from __future__ import annotations

import math
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from lit_xai.checks import check_positive_int
from lit_xai.metrics.common import metric_passes
from lit_xai.metrics.faithfulness.steps import (
    FeatureStepMetric,
    position_ranks,
    prepared_map,
    stepped_scores,
)
from lit_xai.metrics.substrates import make_substrate
from lit_xai.targets import ForwardArgs, TargetsLike


def unit_spacing_auc(curves: Tensor) -> Tensor:
    """Trapezoid area of `(B, S)` curves with unit spacing (0 for S = 1)."""
    return (curves[:, :-1] + curves[:, 1:]).sum(dim=1) / 2


def patch_ranks(values: Tensor, patch: int) -> tuple[Tensor, int]:
    """Rank `(B, N)` of each position's patch (0 = the patch with the largest attribution sum, stable) and
    the number of patches, for maps `(B, H, W)` or `(B, T)` zero-padded to whole patches, the padding split
    between both ends (floor before, ceil after: quantus' `get_padding_size`)."""
    spatial = values.shape[1:]
    before = [(math.ceil(size / patch) * patch - size) // 2 for size in spatial]
    after = [math.ceil(size / patch) * patch - size - low for size, low in zip(spatial, before)]
    pad: list[int] = []
    for low, high in zip(reversed(before), reversed(after)):
        pad += [low, high]
    padded = F.pad(values, pad)
    sizes = padded.shape[1:]
    if values.ndim == 2:
        sums = padded.view(values.shape[0], -1, patch).sum(dim=2)
    else:
        sums = padded.view(values.shape[0], sizes[0] // patch, patch, sizes[1] // patch, patch).sum(dim=(2, 4))
    ranks = position_ranks(sums.flatten(1), descending=True).view(sums.shape)
    for axis in range(1, ranks.ndim):
        ranks = ranks.repeat_interleave(patch, dim=axis)
    ranks = ranks[(slice(None), *(slice(low, low + size) for low, size in zip(before, spatial)))]
    return ranks.reshape(values.shape[0], -1), sums[0].numel()


class CumulativeRemoval(FeatureStepMetric):
    """Shared by Pixel-Flipping and Selectivity: the cumulative removal curve and its AUC (module docstring)."""

    higher_is_better = False

    def ranks(self, saliency: Tensor) -> tuple[Tensor, int]:
        """Rank of each position's unit `(B, N)` and the number of steps."""
        ranks = position_ranks(prepared_map(saliency, self.abs), descending=True)
        return ranks // self.features_in_step, self.steps_for(ranks.shape[1])

    def curves(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> Tensor:
        """Per-image curves `(B, S)` float64 (score after each step), without updating the state."""
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            units, steps = self.ranks(saliency)
            substrate = make_substrate(inputs, self.substrate)
            return stepped_scores(model, inputs, substrate, units, resolved, steps, self.internal_batch_size, cumulative=True)

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        curves = self.curves(model, inputs, saliency, targets, forward_args)
        self.add_values(unit_spacing_auc(curves))
        self.last_curves = curves


class PixelFlipping(CumulativeRemoval):
    """Pixel-Flipping (Bach et al. 2015): area under the score curve while the most relevant positions are
    removed first, `features_in_step` at a time (module docstring); lower is better.

    `update(model, inputs, saliency, targets=None, forward_args=None)`; `last_curves` holds the latest
    batch's curves `(B, S)`. Arguments as `FeatureStepMetric` (quantus defaults: features_in_step 1,
    abs False, baseline "black"). Cost: ceil(N / features_in_step) passes per image.
    """


class Selectivity(CumulativeRemoval):
    """Selectivity (Montavon et al. 2018): area under the score curve while `patch_size` x `patch_size`
    patches are removed in descending order of their attribution sum (module docstring); lower is better.

    Args:
        patch_size: side of the square patches (quantus' default 8); along T for series.
        abs, substrate, internal_batch_size: as `FeatureStepMetric` (quantus defaults: abs False, "black").
    Cost: one pass per patch per image.
    """

    def __init__(self, patch_size: int = 8, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.patch_size = check_positive_int(patch_size, "patch_size")

    def ranks(self, saliency: Tensor) -> tuple[Tensor, int]:
        values = prepared_map(saliency, self.abs).view(saliency.shape)
        return patch_ranks(values, self.patch_size)
