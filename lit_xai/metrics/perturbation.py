"""Insertion and Deletion (Petsiuk et al., "RISE: Randomized Input Sampling for Explanation of Black-box
Models", BMVC 2018), as torchmetrics Metrics.

Positions (pixels, or time steps) are ranked by saliency, all channels of a position together, most
salient first (ties keep index order). With N positions and `steps` steps, step s = 0..steps changes the
k_s = floor(s N / steps) top-ranked positions; the target score p_s (softmax probability of the target
class; a one-output regressor's raw prediction) is read at every step, and

    AUC = sum_{s=1}^{steps} (p_{s-1} + p_s) / (2 steps)          (trapezoid rule on x in [0, 1]).

Deletion replaces the changed positions of the input with the substrate (default zeros, i.e. the
normalised input space's mean); lower is better. Insertion starts from the substrate (default a Gaussian
blur of the input, 11x11, sigma 5) and puts the input's values back; higher is better.

All images x steps go through the model as batches of `internal_batch_size`, one ranking per image.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import Metric

from lit_xai.metrics.substrates import Substrate, check_substrate, make_substrate
from lit_xai.model_state import preserved_model_state
from lit_xai.targets import check_targets, model_outputs, resolve_targets, target_probabilities


def check_metric_inputs(inputs: Tensor, saliency: Tensor) -> None:
    if not isinstance(inputs, Tensor) or inputs.ndim not in (3, 4):
        raise ValueError(f"inputs must be a tensor (B, C, H, W) or (B, C, T), got shape {tuple(getattr(inputs, 'shape', ()))}")
    expected = (inputs.shape[0], *inputs.shape[2:])
    if not isinstance(saliency, Tensor) or tuple(saliency.shape) != expected:
        got = tuple(saliency.shape) if isinstance(saliency, Tensor) else type(saliency).__name__
        hint = " (reduce the channels first, e.g. saliency.abs().sum(1))" if got == tuple(inputs.shape) else ""
        raise ValueError(f"saliency must have shape (B, *spatial) = {expected} to match the inputs, got {got}{hint}")
    if not bool(torch.isfinite(saliency).all()):
        raise ValueError("saliency contains NaN or inf; check the explainer's output")


def rank_positions(saliency: Tensor) -> Tensor:
    """Rank of each position, 0 = most salient, `(B, N)`; ties broken by position index."""
    order = saliency.flatten(1).argsort(dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    return ranks


def perturbation_curves(
    model: nn.Module,
    inputs: Tensor,
    saliency: Tensor,
    targets: Tensor | None,
    substrate: Tensor,
    steps: int,
    insertion: bool,
    internal_batch_size: int,
) -> Tensor:
    """Target scores `(B, steps + 1)` along the insertion (or deletion) path of each image."""
    batch, spatial = inputs.shape[0], inputs.shape[2:]
    ranks = rank_positions(saliency)
    counts = torch.arange(steps + 1, device=inputs.device) * ranks.shape[1] // steps
    scores = torch.empty(batch * (steps + 1), dtype=torch.float64, device=inputs.device)
    for start in range(0, scores.numel(), internal_batch_size):
        pairs = torch.arange(start, min(start + internal_batch_size, scores.numel()), device=inputs.device)
        image, step = pairs // (steps + 1), pairs % (steps + 1)
        changed = (ranks[image] < counts[step].unsqueeze(1)).view(len(pairs), 1, *spatial)
        kept, replaced = (inputs[image], substrate[image]) if insertion else (substrate[image], inputs[image])
        outputs = model_outputs(model, torch.where(changed, kept, replaced))
        scores[pairs] = target_probabilities(outputs, None if targets is None else targets[image]).double()
    return scores.view(batch, steps + 1)


def trapezoid_auc(curves: Tensor) -> Tensor:
    """Area under `(B, steps + 1)` curves sampled at x = s / steps."""
    steps = curves.shape[1] - 1
    return (curves[:, :-1] + curves[:, 1:]).sum(dim=1) / (2 * steps)


class PerturbationCurveMetric(Metric):
    """Mean AUC of a perturbation curve over every image seen (shared by Insertion and Deletion).

    `update(model, inputs, saliency, targets=None)`: inputs `(B, C, *spatial)`, saliency `(B, *spatial)`,
    targets class indices `(B,)` (default: the model's argmax on the unperturbed inputs).
    `compute()` returns the mean AUC; `curve()` the mean curve `(steps + 1,)` for plots.
    """

    is_differentiable = False
    full_state_update = False
    insertion: bool
    default_substrate: Substrate

    def __init__(
        self,
        steps: int = 100,
        substrate: Substrate | None = None,
        internal_batch_size: int = 256,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive int, got {steps!r}")
        if not isinstance(internal_batch_size, int) or internal_batch_size < 1:
            raise ValueError(f"internal_batch_size must be a positive int, got {internal_batch_size!r}")
        self.steps = steps
        self.substrate = check_substrate(self.default_substrate if substrate is None else substrate)
        self.internal_batch_size = internal_batch_size
        self.add_state("auc_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("curve_sum", torch.zeros(steps + 1, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: Tensor | None = None) -> None:
        check_metric_inputs(inputs, saliency)
        targets = check_targets(targets, inputs.shape[0], inputs.device)
        with torch.no_grad(), preserved_model_state(model):
            if targets is None:
                targets = resolve_targets(model_outputs(model, inputs), None)
            substrate = make_substrate(inputs, self.substrate)
            curves = perturbation_curves(
                model, inputs, saliency.to(inputs.device), targets, substrate, self.steps, self.insertion, self.internal_batch_size
            )
        self.auc_sum += trapezoid_auc(curves).sum().to(self.auc_sum.device)
        self.curve_sum += curves.sum(dim=0).to(self.curve_sum.device)
        self.count += curves.shape[0]

    def compute(self) -> Tensor:
        return (self.auc_sum / self.count).float() if self.count > 0 else torch.tensor(math.nan)

    def curve(self) -> Tensor:
        """Mean curve over all images seen (synchronised across processes), `(steps + 1,)`."""
        with self.sync_context(dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync, should_unsync=True):
            return (self.curve_sum / self.count.clamp(min=1)).float()


class Insertion(PerturbationCurveMetric):
    """Insertion AUC: put the most salient positions back onto a blurred input first; higher is better."""

    higher_is_better = True
    insertion = True
    default_substrate = "blur"


class Deletion(PerturbationCurveMetric):
    """Deletion AUC: replace the most salient positions with zeros first; lower is better."""

    higher_is_better = False
    insertion = False
    default_substrate = "zeros"
