"""Continuity (Montavon et al., "Methods for interpreting and understanding deep neural networks",
Digital Signal Processing 2018), as a torchmetrics Metric that re-runs the explainer.

The input is translated along its last axis (x, the width; T for series) by t_k = -W + k dx, k = 1..K
(K = `nr_steps`, dx = (2W + 1) // K, quantus' schedule), the uncovered positions filled with the
substrate (quantus' "black": the image's minimum), the translated input explained for the same target,
and

    Continuity = max_k ||phi - E(x_k)||_1 / (||x - x_k||_2 + 1e-9)

with maps prepared as quantus does by default (abs=True, each map over its own max). Lower is better.
quantus 0.6 ignores its `perturb_func` and `perturb_baseline` (it always translates with "black");
lit-xai uses its `substrate`. quantus' default nr_steps = 28 needs W >= 14 (dx >= 1): for narrower
inputs it translates every step by -W (all baseline); lit-xai raises instead. Cost: K explainer calls
per image.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lit_xai.checks import check_positive_int
from lit_xai.metrics.robustness.base import ReexplainingMetric
from lit_xai.metrics.substrates import Substrate, check_substrate, make_substrate


def translated(inputs: Tensor, fill: Tensor, shifts: Tensor) -> Tensor:
    """`inputs` `(k, C, ..., W)` moved by `shifts[i]` positions along the last axis (positive: to the right),
    the uncovered positions taken from `fill` (same shape)."""
    width = inputs.shape[-1]
    source = torch.arange(width, device=inputs.device).unsqueeze(0) - shifts.unsqueeze(1)  # (k, W)
    inside = (source >= 0) & (source < width)
    index = source.clamp(0, width - 1).view(len(inputs), *(1,) * (inputs.ndim - 2), width).expand_as(inputs)
    moved = inputs.gather(-1, index)
    return torch.where(inside.view(len(inputs), *(1,) * (inputs.ndim - 2), width), moved, fill)


class Continuity(ReexplainingMetric):
    """Largest map change per unit of input change under translations (module docstring); lower is better.

    Args:
        nr_steps: translations per image (quantus' default 28).
        substrate: what fills the uncovered positions ("black", "zeros", "mean", a number or a tensor).
        explainer, abs (True), normalise (True), skip_changed_predictions (False), internal_batch_size: as
            `ReexplainingMetric`.
    """

    higher_is_better = False
    reduce = "max"

    def __init__(self, nr_steps: int = 28, substrate: Substrate = "black", abs: bool = True, normalise: bool = True, **kwargs: Any) -> None:
        kwargs.pop("nr_samples", None)
        super().__init__(nr_samples=check_positive_int(nr_steps, "nr_steps"), abs=abs, normalise=normalise, **kwargs)
        self.nr_steps = nr_steps
        self.substrate = check_substrate(substrate)

    def shifts(self, width: int) -> Tensor:
        """The translations t_k, k = 1..nr_steps."""
        dx = (2 * width + 1) // self.nr_steps
        if dx < 1:
            raise ValueError(
                f"nr_steps {self.nr_steps} is larger than 2 W + 1 = {2 * width + 1} for inputs of width {width}: choose nr_steps <= {2 * width + 1}"
            )
        return -width + dx * torch.arange(1, self.nr_steps + 1)

    def perturb(self, inputs: Tensor, seeds: list[int], draw: Tensor) -> Tensor:
        shifts = self.shifts(inputs.shape[-1]).to(inputs.device)[draw]
        return translated(inputs, make_substrate(inputs, self.substrate), shifts)

    def draw_values(self, x: Tensor, xs: Tensor, a: Tensor, a_s: Tensor, outputs: Tensor | None, outputs_s: Tensor | None, rows: Tensor) -> Tensor:
        return (a - a_s).abs().sum(dim=1) / ((x - xs).flatten(1).double().norm(dim=1) + 1e-9)
