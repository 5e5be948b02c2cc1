"""Leaving a model as it was found: shared by explainers and metrics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def preserved_model_state(model: nn.Module) -> Iterator[None]:
    """Restore training flags, `requires_grad` flags and (in training mode) buffers on exit."""
    modes = [(module, module.training) for module in model.modules()]
    flags = [(param, param.requires_grad) for param in model.parameters()]
    in_training = any(training for _, training in modes)
    buffers = [(buf, buf.detach().clone()) for buf in model.buffers()] if in_training else []
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
        for param, requires_grad in flags:
            param.requires_grad_(requires_grad)
        with torch.no_grad():
            for buf, saved in buffers:
                buf.copy_(saved)
