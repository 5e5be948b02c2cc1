"""Efficient MPRT (Hedstrom et al., "Sanity Checks Revisited: An Exploration to Repair the Model
Parameter Randomisation Test", XAI in Action workshop, NeurIPS 2023), as a torchmetrics Metric that re-runs
the explainer on a fully randomised copy of the model.

Instead of comparing maps layer by layer (MPRT, `ModelRandomizationSimilarity`), eMPRT measures how much
more complex the map becomes when every layer of the model is re-initialised:

    eMPRT = (H(E(f_random, x)) - H(phi)) / H(phi),      H(a) = -sum_k p_k log p_k

H the discrete entropy of the map's histogram: `n_bins` equal bins between the map's minimum and maximum
(numpy's `np.histogram`, quantus' default 100 bins when no binning rule is chosen), p the bin shares.
phi is the map given to `update` (the trained model's; quantus re-explains the trained model). A map
whose entropy is 0 (a constant map) has no relative change: that image is left out (NaN in
`last_values`, counted in `skipped`). Higher is better (an explanation that depends on the learned
weights becomes noisier when they are destroyed). Layers are re-initialised as in
`ModelRandomizationSimilarity` (`reset_parameters()` from a seed per layer name; every module with
parameters of its own); quantus draws its own random weights, so values agree only in distribution.
Cost: one deep copy of the model and one explainer call per image.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import Tensor, nn

from lit_xai.checks import check_int, check_positive_int
from lit_xai.metrics.common import SkippingMean, check_explainer, explain_rows, metric_passes
from lit_xai.metrics.randomization import has_own_parameters, layer_seed, reinitialize
from lit_xai.metrics.robustness.base import ExplainerFn
from lit_xai.targets import ForwardArgs, TargetsLike


def model_copy(model: nn.Module) -> nn.Module:
    """A deep copy of `model` (normal tensors, whatever the caller's inference mode) that shares, not
    copies, what a LightningModule refers to outside itself (its trainer)."""
    memo = {id(value): value for value in (getattr(model, "_trainer", None),) if value is not None}
    with torch.inference_mode(False), torch.no_grad():
        return copy.deepcopy(model, memo)


def histogram_entropy(maps: Tensor, bins: int) -> Tensor:
    """Discrete entropy `(B,)` float64 of each map's histogram with `bins` equal bins over [min, max]
    (numpy's binning, edge corrections included; a constant map's values share one bin: entropy 0)."""
    flat = maps.flatten(1).double()
    low, high = flat.amin(dim=1, keepdim=True), flat.amax(dim=1, keepdim=True)
    constant = high == low
    low, high = torch.where(constant, low - 0.5, low), torch.where(constant, high + 0.5, high)
    steps = torch.arange(bins + 1, dtype=torch.float64, device=flat.device)
    edges = low + (high - low) * steps / bins  # (B, bins + 1), as np.linspace
    edges[:, -1:] = high
    index = ((flat - low) * (bins / (high - low))).long().clamp(max=bins - 1)
    index = index - (flat < edges.gather(1, index)).long()
    index = index + ((flat >= edges.gather(1, index + 1)) & (index != bins - 1)).long()
    counts = torch.zeros(flat.shape[0], bins, dtype=torch.float64, device=flat.device).scatter_add_(1, index, torch.ones_like(flat))
    shares = counts / counts.sum(dim=1, keepdim=True)
    return -(shares * torch.log(torch.where(shares > 0, shares, 1.0))).sum(dim=1)


def randomised_copy(model: nn.Module, seed: int) -> nn.Module:
    """A deep copy of `model` with every module that has parameters of its own re-initialised, each seeded
    by `seed` and its name (shared by EfficientMPRT and SmoothMPRT)."""
    copied = model_copy(model)
    with torch.inference_mode(False), torch.no_grad():
        for name, module in copied.named_modules():
            if has_own_parameters(module):
                reinitialize(module, layer_seed(seed, name))
    return copied


class EfficientMPRT(SkippingMean):
    """Relative rise of the map's histogram entropy when the whole model is randomised (module
    docstring); higher is better.

    Args:
        explainer: the explainer that produced the maps; None until set (the callback sets it).
        n_bins: histogram bins (quantus' default 100).
        seed: seed of the random weights (per layer name).
    """

    higher_is_better = True

    def __init__(self, explainer: ExplainerFn | None = None, n_bins: int = 100, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_explainer(explainer)
        check_int(seed, "seed")
        self.explainer, self.n_bins, self.seed = explainer, check_positive_int(n_bins, "n_bins"), seed

    def randomised(self, model: nn.Module) -> nn.Module:
        """A deep copy of `model` with every module that has parameters of its own re-initialised."""
        return randomised_copy(model, self.seed)

    def entropies(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> tuple[Tensor, Tensor]:
        """H(phi) and H(E(f_random, x)), each `(B,)` float64."""
        if self.explainer is None:
            raise ValueError("EfficientMPRT needs the explainer that produced the maps: EfficientMPRT(explainer=...) (ExplainerCallback sets it)")
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            random_model = self.randomised(model)
            maps = explain_rows(self.explainer, random_model, inputs, resolved, None)
            del random_model
            return histogram_entropy(saliency, self.n_bins), histogram_entropy(maps.to(saliency.device), self.n_bins)

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        before, after = self.entropies(model, inputs, saliency, targets, forward_args)
        kept = before > 0
        values = torch.full_like(before, math.nan)
        values[kept] = (after[kept] - before[kept]) / before[kept]
        self.add_kept(values, kept, (
            "EfficientMPRT: every map of this batch is constant (entropy 0); the samples are left out and counted in `skipped`"
        ))
