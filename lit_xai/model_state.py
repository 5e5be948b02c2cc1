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
    modes, flags = [], []
    for module in model.modules():  # one walk of the module tree (this runs on every explainer call)
        modes.append((module, module.training))
        flags.extend((param, param.requires_grad) for param in module._parameters.values() if param is not None)
    if any(training for _, training in modes):
        model.eval()
    try:
        yield
    finally:  # only flags that changed are written back (a call on a large model stays cheap)
        for module, training in modes:
            if module.training != training:
                module.training = training
        for param, requires_grad in flags:
            if param.requires_grad != requires_grad:
                param.requires_grad_(requires_grad)
