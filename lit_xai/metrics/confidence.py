"""Average Drop, Increase in Confidence (Chattopadhay et al., "Grad-CAM++", WACV 2018) and Average Drop
in Deletion (Jung & Oh, "Towards Better Explanations of Class Activation Mapping", ICCV 2021).

With Y the target score of x (softmax probability of the target class; a one-output regressor's raw
prediction) and M the saliency min-max normalised per image at input resolution (a constant map gives
M = 0), O the score of x * M and D the score of x * (1 - M) (in normalised input space):

    AD  = mean_i ReLU(Y_i - O_i) / Y_i      fraction in [0, 1], lower is better
    IIC = mean_i 1[O_i > Y_i]               higher is better
    ADD = mean_i (Y_i - D_i) / Y_i          higher is better

Hartley et al. ("Jitter-CAM", BMVC 2022) show that AD and IIC reward maps with many high values (a map
of 0.9 everywhere beats Grad-CAM): report them beside Deletion/Insertion, not instead.
"""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import Tensor, nn

from lit_xai.chunking import check_internal_batch_size
from lit_xai.metrics.common import PerImageMean, batched_target_scores, metric_passes
from lit_xai.targets import ForwardArgs, TargetsLike


def normalised_saliency(saliency: Tensor) -> Tensor:
    """Per-image min-max normalisation to [0, 1]; a constant map becomes 0."""
    flat = saliency.flatten(1)
    low, high = flat.min(dim=1, keepdim=True).values, flat.max(dim=1, keepdim=True).values
    span = high - low
    scaled = torch.where(span > 0, (flat - low) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(flat))
    return scaled.view_as(saliency)


class MaskedConfidenceMetric(PerImageMean):
    """Mean over images of a function of Y (score of x) and the score of x masked by M (or 1 - M)."""

    keep_salient: bool  # True: x * M; False: x * (1 - M)

    def __init__(self, internal_batch_size: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    @abc.abstractmethod
    def score(self, original: Tensor, masked: Tensor) -> Tensor:
        """Per-image value from Y and the masked score, both `(B,)` float64."""

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            mask = normalised_saliency(saliency.to(inputs.device).to(inputs.dtype)).unsqueeze(1)
            if not self.keep_salient:
                mask = 1 - mask
            both = torch.cat([inputs, inputs * mask])
            rows = torch.arange(len(inputs), device=inputs.device).repeat(2)  # each row's sample
            scores = batched_target_scores(
                model, both, None if resolved is None else resolved[rows], self.internal_batch_size, len(inputs), rows
            )
            original, masked = scores[: len(inputs)], scores[len(inputs) :]
            if bool((original <= 0).any()):
                raise ValueError("the model's score of an unmasked input is <= 0; these ratios need positive scores (probabilities)")
            self.add_values(self.score(original, masked))


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
