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


def all_finite(values: torch.Tensor) -> bool:
    """No NaN or inf in `values`. Their sum is finite exactly when every value is (a NaN or an inf makes it NaN
    or inf), unless finite values overflow it; only then is each value checked. One reduction, no mask."""
    if values.is_floating_point() and math.isfinite(float(values.detach().sum())):
        return True
    return bool(torch.isfinite(values).all())
