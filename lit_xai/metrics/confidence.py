"""Average Drop, Increase in Confidence (Chattopadhay et al., "Grad-CAM++", WACV 2018) and Average Drop
in Deletion (Jung & Oh, "Towards Better Explanations of Class Activation Mapping", ICCV 2021).

With Y the target score of x (softmax probability of the target class; a one-output regressor's raw
prediction) and M the saliency min-max normalised per image at input resolution (a constant map gives
M = 0), O the score of x * M and D the score of x * (1 - M) (in normalised input space):

    AD  = mean_i ReLU(Y_i - O_i) / Y_i      fraction in [0, 1], lower is better
    IIC = mean_i 1[O_i > Y_i]               higher is better
    ADD = mean_i (Y_i - D_i) / Y_i          higher is better

The ratios are defined for Y > 0 only. A probability always is; a regressor's prediction (a remaining
useful life at or past failure) may not be. Each sample whose Y <= `min_score` (default 0) is left out:
it adds nothing to the mean, its per-image value in `last_values` (and the callback's `xai_scores.csv`)
is NaN, and it is counted in the `skipped` state (summed across processes; `skipped_samples()`). One
such sample never discards the rest of its batch. A batch in which every sample is left out warns,
naming the metric; `compute()` is NaN while no sample has been kept. For a regressor O and D may be
negative, so AD can exceed 1 and ADD can lie outside [0, 1]; both blow up as Y approaches 0, which is
what `min_score` (e.g. 1 cycle of RUL) guards against.

Hartley et al. ("Jitter-CAM", BMVC 2022) show that AD and IIC reward maps with many high values (a map
of 0.9 everywhere beats Grad-CAM): report them beside Deletion/Insertion, not instead.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import torch
from torch import Tensor, nn

from lit_xai.chunking import check_internal_batch_size
from lit_xai.metrics.common import SkippingMean, batched_target_scores, metric_passes, original_scores
from lit_xai.targets import ForwardArgs, TargetsLike


def normalised_saliency(saliency: Tensor) -> Tensor:
    """Per-image min-max normalisation to [0, 1]; a constant map becomes 0."""
    flat = saliency.flatten(1)
    low, high = flat.min(dim=1, keepdim=True).values, flat.max(dim=1, keepdim=True).values
    span = high - low
    scaled = torch.where(span > 0, (flat - low) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(flat))
    return scaled.view_as(saliency)


class MaskedConfidenceMetric(SkippingMean):
    """Mean over images of a function of Y (score of x) and the score of x masked by M (or 1 - M).

    Args:
        internal_batch_size: inputs per model pass (`None`: sized for the device, `lit_xai.chunking`).
        min_score: samples whose unmasked score Y is <= this are left out of the mean and counted in
            `skipped` (their value in `last_values` is NaN). 0 (the default) keeps exactly the samples
            the ratio is defined for; a regressor may raise it (e.g. 1 cycle of RUL) so that
            predictions near 0 do not dominate the mean.
    """

    keep_salient: bool  # True: x * M; False: x * (1 - M)

    def __init__(self, internal_batch_size: int | None = None, min_score: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)
        if isinstance(min_score, bool) or not isinstance(min_score, (int, float)) or not math.isfinite(min_score) or min_score < 0:
            raise ValueError(f"min_score must be a finite number >= 0 (samples with a score <= min_score are left out), got {min_score!r}")
        self.min_score = float(min_score)

    @abc.abstractmethod
    def score(self, original: Tensor, masked: Tensor) -> Tensor:
        """Per-image value from Y and the masked score, both `(B,)` float64, Y > 0."""

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            mask = normalised_saliency(saliency.to(inputs.device).to(inputs.dtype)).unsqueeze(1)
            if not self.keep_salient:
                mask = 1 - mask
            original = original_scores(model, inputs, resolved, self.internal_batch_size)  # no pass after targets=None
            masked = batched_target_scores(model, inputs * mask, resolved, self.internal_batch_size)
            kept = original > self.min_score
            values = torch.full_like(original, math.nan)
            values[kept] = self.score(original[kept], masked[kept])
            self.add_kept(values, kept, (
                f"{type(self).__name__}: every sample of this batch has a target score <= {self.min_score:g} (the ratio "
                f"divides by it; e.g. a RUL predicted at or past failure); the {len(original)} samples are left out and "
                "counted in `skipped`, and the value is NaN until a sample is kept"
            ))


class AverageDrop(MaskedConfidenceMetric):
    """Average Drop: mean ReLU(Y - O) / Y, O the score of x * M; lower is better."""

    higher_is_better = False
    keep_salient = True

    def score(self, original: Tensor, masked: Tensor) -> Tensor:
        return torch.relu(original - masked) / original


class IncreaseInConfidence(MaskedConfidenceMetric):
    """Increase in Confidence: share of images with O > Y, O the score of x * M; higher is better."""

    higher_is_better = True
    keep_salient = True

    def score(self, original: Tensor, masked: Tensor) -> Tensor:
        return (masked > original).double()


class AverageDropInDeletion(MaskedConfidenceMetric):
    """Average Drop in Deletion (ADD): mean (Y - D) / Y, D the score of x * (1 - M); higher is better."""

    higher_is_better = True
    keep_salient = False

    def score(self, original: Tensor, masked: Tensor) -> Tensor:
        return (original - masked) / original
