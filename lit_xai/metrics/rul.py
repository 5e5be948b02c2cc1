"""Remaining-useful-life scoring: the PHM08 challenge score (Saxena et al., "Damage propagation modeling for
aircraft engine run-to-failure simulation", PHM 2008)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric


class NASAScore(Metric):
    """The PHM08 / NASA scoring function, summed over engines (samples):

        s = sum_i s_i,  d_i = predicted_i - true_i,
        s_i = exp(-d_i / 13) - 1  if d_i < 0 (early prediction),
              exp(d_i / 10) - 1   otherwise (late prediction, penalised more).

    Lower is better; 0 for perfect predictions. Sums are kept in float64 and synchronised across processes
    by torchmetrics (`dist_reduce_fx="sum"`), so several processes give what one gives.

    Args:
        early: the time constant of early predictions (13 in PHM08).
        late: the time constant of late predictions (10 in PHM08).
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, early: float = 13.0, late: float = 10.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if early <= 0 or late <= 0:
            raise ValueError(f"early and late must be > 0, got {early} and {late}")
        self.early, self.late = early, late
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        """`preds` and `target` of the same number of elements (predicted and true RUL)."""
        if preds.numel() != target.numel():
            raise ValueError(f"preds and target must have the same number of elements, got {tuple(preds.shape)} and {tuple(target.shape)}")
        difference = preds.detach().reshape(-1).double() - target.detach().reshape(-1).double()
        scores = torch.where(difference < 0, torch.exp(-difference / self.early), torch.exp(difference / self.late)) - 1
        # states are replaced, never changed in place: under CPU `ddp_spawn` the module's tensors reach every
        # worker in one shared memory block, and an in-place sum would add every process's scores to all of them
        self.total = self.total + scores.sum()
        self.count = self.count + difference.numel()

    def compute(self) -> Tensor:
        return self.total.clone()
