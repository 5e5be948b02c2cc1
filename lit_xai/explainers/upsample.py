"""Bringing layer-resolution maps to input resolution."""

from __future__ import annotations

from collections.abc import Callable
from typing import Union

import torch.nn.functional as F
from torch import Tensor

Upsampler = Callable[[Tensor, tuple[int, ...]], Tensor]
"""An object mapping maps `(B, *s)` and a target size to maps `(B, *size)` (e.g. a mass-preserving upsampler)."""

UpsampleMode = Union[str, Upsampler]
MODES = ("bilinear", "nearest", "none")


def check_upsample(mode: UpsampleMode) -> UpsampleMode:
    if callable(mode) or mode in MODES:
        return mode
    raise ValueError(f"upsample must be one of {MODES} or a callable (maps, size) -> maps, got {mode!r}")


def upsample(maps: Tensor, size: tuple[int, ...], mode: UpsampleMode = "bilinear") -> Tensor:
    """Resize `(B, *s)` maps to `(B, *size)`.

    "bilinear" is linear interpolation along each spatial axis (bilinear for images, linear for time
    series) with `align_corners=False`; "nearest" repeats values; "none" returns the maps unchanged.
    """
    if callable(mode):
        return mode(maps, tuple(size))
    if mode == "none" or tuple(maps.shape[1:]) == tuple(size):
        return maps
    if len(size) not in (1, 2):
        raise ValueError(f"upsample handles 1-D or 2-D maps, got spatial size {tuple(size)}")
    if mode == "nearest":
        return F.interpolate(maps.unsqueeze(1), size=tuple(size), mode="nearest").squeeze(1)
    linear = "linear" if len(size) == 1 else "bilinear"
    return F.interpolate(maps.unsqueeze(1), size=tuple(size), mode=linear, align_corners=False).squeeze(1)
