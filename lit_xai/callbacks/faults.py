"""What an explain round does when something goes wrong: a diverged model, a failed explainer.

* A model whose outputs on the probe (or a test batch) hold NaN or inf has diverged: nothing an explainer
  or metric computes from it means anything, so the round is skipped on every rank (the flag is reduced
  across ranks, so every rank skips alike and the collectives still match), `xai/diverged` is logged,
  one warning says so, and training goes on.
* An explainer that failed on any rank, or on any batch of the round, has partial numbers (the batches
  or ranks where it ran): they are computed (every rank joins the same collectives) but not reported;
  its row holds NaN, only `xai/<name>/failed` is logged, and the per-image scores leave it out.
"""

from __future__ import annotations

import math

import lightning.pytorch as pl
import torch
from torch import Tensor

DIVERGED_KEY = "xai/diverged"


def outputs_diverged(outputs: object) -> bool:
    """Whether a model's outputs (a tensor, or a tuple / mapping holding tensors) have a NaN or inf."""
    if isinstance(outputs, Tensor):
        return outputs.is_floating_point() and not bool(torch.isfinite(outputs.detach()).all())
    if isinstance(outputs, dict):
        return any(outputs_diverged(value) for value in outputs.values())
    if isinstance(outputs, (list, tuple)):
        return any(outputs_diverged(value) for value in outputs)
    logits = getattr(outputs, "logits", None)
    return outputs_diverged(logits) if logits is not None else False


def anywhere(trainer: pl.Trainer, flag: bool, device: torch.device) -> bool:
    """`flag` or-reduced over the ranks (a collective: every rank must call it)."""
    if trainer.world_size <= 1:
        return flag
    return bool(trainer.strategy.reduce(torch.tensor(float(flag), device=device), reduce_op="max") > 0)


def diverged_message(stage: str, epoch: int) -> str:
    where = f"at validation epoch {epoch}" if stage == "validate" else "in test"
    return (
        f"ExplainerCallback: the model's outputs hold NaN or inf {where} (the model diverged); the explainers and "
        f"metrics are skipped this round and {DIVERGED_KEY} = 1 is logged. Training goes on: lower the learning rate, "
        "clip gradients or check the data to make the model finite again"
    )


def unreported(row: dict[str, float]) -> dict[str, float]:
    """A failed explainer's row: every column NaN (its partial numbers are not results)."""
    return dict.fromkeys(row, math.nan)
