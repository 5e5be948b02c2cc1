"""Argument checks shared by explainers and metrics."""

from __future__ import annotations

import math

import torch


def check_positive_int(value: object, name: str) -> int:
    """A hyper-parameter that counts something (steps, draws, samples, internal_batch_size) must be an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def check_int(value: object, name: str) -> int:
    """An int setting such as a seed (any sign; not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    return value


def all_finite(*values: torch.Tensor) -> bool:
    """No NaN or inf in any of `values`. Their sum is finite exactly when every value is (a NaN or an inf makes it
    NaN or inf), unless finite values overflow it; only then is each value checked. One reduction per tensor, no
    mask, one synchronisation for all of them (floating tensors on one device)."""
    if all(tensor.is_floating_point() for tensor in values) and len({tensor.device for tensor in values}) == 1:
        total = values[0].detach().sum()
        for tensor in values[1:]:
            total = total + tensor.detach().sum()
        if math.isfinite(float(total)):
            return True
    return all(bool(torch.isfinite(tensor).all()) for tensor in values)
