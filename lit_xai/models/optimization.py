"""The optimizer and learning-rate schedule that lit-xai's LightningModules build from their hyper-parameters."""

from __future__ import annotations

from typing import Any, Literal

import lightning.pytorch as pl
import torch

OptimizerName = Literal["adam", "adamw", "sgd"]
SchedulerName = Literal["none", "onecycle", "cosine"]


def check_optimization(optimizer: str, scheduler: str) -> None:
    """A ValueError for an optimizer or scheduler name that `build_optimization` does not know."""
    if optimizer not in ("adam", "adamw", "sgd"):
        raise ValueError(f"optimizer must be 'adam', 'adamw' or 'sgd', got {optimizer!r}")
    if scheduler not in ("none", "onecycle", "cosine"):
        raise ValueError(f"scheduler must be 'none', 'onecycle' or 'cosine', got {scheduler!r}")


def build_optimization(
    module: pl.LightningModule,
    optimizer: OptimizerName,
    lr: float,
    weight_decay: float,
    momentum: float,
    scheduler: SchedulerName,
    pct_start: float,
) -> Any:
    """What `configure_optimizers` returns: Adam, AdamW or SGD (Nesterov when `momentum` > 0) over the
    module's parameters, alone or with a per-batch one-cycle (Smith & Topin 2017: lr/25 -> `lr` over
    `pct_start` of the run, then down to lr/1e4) or cosine (to 0) schedule over the trainer's steps."""
    params = module.parameters()
    if optimizer == "sgd":
        built: torch.optim.Optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay)
    elif optimizer == "adamw":
        built = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    else:
        built = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if scheduler == "none":
        return built
    total_steps = max(int(module.trainer.estimated_stepping_batches), 1)
    if scheduler == "onecycle":
        schedule: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.OneCycleLR(
            built, max_lr=lr, total_steps=total_steps, pct_start=pct_start
        )
    else:
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(built, T_max=total_steps)
    return {"optimizer": built, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
