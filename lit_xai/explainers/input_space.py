"""Input-space attributions `(B, C, *spatial)` and how their channels are reduced for metrics."""

from __future__ import annotations

from torch import Tensor

REDUCTIONS = ("none", "sum", "abs_sum", "max_abs")


def check_reduce(reduce: str) -> str:
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    return reduce


def reduce_channels(attributions: Tensor, reduce: str) -> Tensor:
    """"none": `(B, C, *s)` unchanged; "sum": sum over C; "abs_sum": sum of |.|; "max_abs": max of |.|."""
    if reduce == "none":
        return attributions
    if reduce == "sum":
        return attributions.sum(dim=1)
    if reduce == "abs_sum":
        return attributions.abs().sum(dim=1)
    return attributions.abs().amax(dim=1)
