"""Bringing layer-resolution maps to input resolution."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Optional, Union

import torch.nn.functional as F
from torch import Tensor, nn

Upsampler = Callable[[Tensor, tuple[int, ...]], Tensor]
"""An object mapping maps `(B, *s)` and a target size to maps `(B, *size)` (e.g. a mass-preserving upsampler)."""


class ModelUpsampler(abc.ABC):
    """An upsampler that also reads the model on the explained inputs (e.g. `MassPreservingUpsampler`, whose
    potential comes from the model's activations or gradients).

    Layer explainers call it as `upsampler(maps, size, model=model, inputs=inputs, targets=targets)` with the
    model, the (cloned) inputs and the targets of the explanation, inside their gradient-enabled block.
    """

    @abc.abstractmethod
    def __call__(
        self, maps: Tensor, size: tuple[int, ...], model: Optional[nn.Module] = None, inputs: Optional[Tensor] = None,
        targets: Optional[Tensor] = None,
    ) -> Tensor:
        """Maps `(B, *s)` -> `(B, *size)`."""

UpsampleMode = Union[str, ModelUpsampler, Upsampler]
MODES = ("bilinear", "nearest", "none")


def check_upsample(mode: UpsampleMode) -> UpsampleMode:
    if callable(mode) or mode in MODES:
        return mode
    raise ValueError(f"upsample must be one of {MODES} or a callable (maps, size) -> maps, got {mode!r}")


def upsample(
    maps: Tensor,
    size: tuple[int, ...],
    mode: UpsampleMode = "bilinear",
    model: Optional[nn.Module] = None,
    inputs: Optional[Tensor] = None,
    targets: Optional[Tensor] = None,
) -> Tensor:
    """Resize `(B, *s)` maps to `(B, *size)`.

    "bilinear" is linear interpolation along each spatial axis (bilinear for images, linear for time
    series) with `align_corners=False`; "nearest" repeats values; "none" returns the maps unchanged.
    A `ModelUpsampler` also gets `model`, `inputs` and `targets`; any other callable gets `(maps, size)`.
    """
    if isinstance(mode, ModelUpsampler):
        if model is None or inputs is None:
            raise ValueError(f"{type(mode).__name__} reads the model on the inputs: pass model= and inputs= to upsample")
        return mode(maps, tuple(size), model=model, inputs=inputs, targets=targets)
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
