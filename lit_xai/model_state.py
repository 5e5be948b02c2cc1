"""Leaving a model as it was found: shared by explainers and metrics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def preserved_model_state(model: nn.Module) -> Iterator[None]:
    """Run the block with the model in eval mode; restore every module's training flag and every
    parameter's `requires_grad` flag on exit, even when the block raises.

    Eval mode makes explanations and scores those of the deployed model: Dropout does not draw from the
    global random state, BatchNorm uses (and does not update) its running statistics, and samples in a
    batch do not interact.
    """
    modes = [(module, module.training) for module in model.modules()]
    flags = [(param, param.requires_grad) for param in model.parameters()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
        for param, requires_grad in flags:
            param.requires_grad_(requires_grad)
