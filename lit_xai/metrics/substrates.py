"""What perturbed pixels are replaced with ("substrates") in Insertion / Deletion."""

from __future__ import annotations

from typing import Union

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_xai.filters import gaussian_kernel

Substrate = Union[str, float, Tensor]
SUBSTRATES = ("zeros", "blur", "mean", "black", "white")


def gaussian_blur(inputs: Tensor, size: int = 11, sigma: float = 5.0) -> Tensor:
    """Separable Gaussian blur of `(B, C, H, W)` or `(B, C, T)` per channel, zero padding (as RISE)."""
    channels, spatial_dims = inputs.shape[1], inputs.ndim - 2
    kernel = gaussian_kernel(size, sigma, inputs.dtype, inputs.device)
    conv = F.conv1d if spatial_dims == 1 else F.conv2d
    out = inputs
    for axis in range(spatial_dims):
        shape = [1, 1] + [size if a == axis else 1 for a in range(spatial_dims)]
        weight = kernel.reshape(shape).expand(channels, *shape[1:])
        padding = tuple(size // 2 if a == axis else 0 for a in range(spatial_dims))
        out = conv(out, weight, padding=padding, groups=channels)
    return out


def check_substrate(substrate: Substrate) -> Substrate:
    if isinstance(substrate, (Tensor, int, float)) and not isinstance(substrate, bool) or substrate in SUBSTRATES:
        return substrate
    raise ValueError(f"substrate must be one of {SUBSTRATES}, a number or a tensor broadcastable to the inputs, got {substrate!r}")


def make_substrate(inputs: Tensor, substrate: Substrate) -> Tensor:
    """The substrate for `inputs`, same shape: zeros, the Gaussian blur (11x11, sigma 5), per-image
    channel means, "black" / "white" (each image's minimum / maximum over all its elements, quantus'
    baselines of those names), a constant, or a given tensor broadcast to the inputs."""
    if isinstance(substrate, Tensor):
        try:
            return substrate.to(inputs).expand_as(inputs)
        except RuntimeError:
            raise ValueError(
                f"substrate of shape {tuple(substrate.shape)} cannot be broadcast to the inputs {tuple(inputs.shape)}"
            ) from None
    if isinstance(substrate, (int, float)):
        return torch.full_like(inputs, float(substrate))
    if substrate == "zeros":
        return torch.zeros_like(inputs)
    if substrate == "blur":
        return gaussian_blur(inputs)
    if substrate in ("black", "white"):
        flat = inputs.flatten(1)
        extreme = flat.amin(dim=1) if substrate == "black" else flat.amax(dim=1)
        return extreme.view(-1, *(1,) * (inputs.ndim - 1)).expand_as(inputs)
    return inputs.mean(dim=tuple(range(2, inputs.ndim)), keepdim=True).expand_as(inputs)


def shared_substrate_row(inputs: Tensor, substrate: Substrate) -> Tensor | None:
    """The substrate's one row `(1, C, *spatial)` when it is the same for every image of `inputs` (zeros, a
    number, a tensor without a batch axis or with a batch axis of 1), else None (per-image substrates)."""
    if isinstance(substrate, Tensor):
        if substrate.ndim == inputs.ndim and substrate.shape[0] != 1:
            return None
        return make_substrate(inputs[:1], substrate)
    if isinstance(substrate, (int, float)) or substrate == "zeros":
        return make_substrate(inputs[:1], substrate)
    return None

