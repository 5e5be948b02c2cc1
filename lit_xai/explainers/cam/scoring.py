"""Score-based weights: the target score of the input masked by each of a layer's normalised channels.

Used by Score-CAM and Poly-CAM. Two ways to turn a channel into a mask: Score-CAM's `normalised_masks`
(upsample, then exact min-max) and Poly-CAM's `percentile_masks` (robust percentile scaling at layer
resolution, then upsample). The masked forward passes run under `torch.no_grad()` (no activations
kept) in chunks of (sample, channel) pairs (`lit_xai.chunking`); masks are built per chunk, so memory
does not grow with the number of channels.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_xai.chunking import pair_chunks
from lit_xai.targets import model_outputs, select_scores

MASK_EPS = 1e-8
PERCENTILE_OUTLIERS = 0.1
"""Percent of each channel's values treated as outliers at each end by `percentile_masks` (Poly-CAM's code)."""
PERCENTILE_FLOOR = 1e-12
"""Floor of the upper percentile that `percentile_masks` divides by (Poly-CAM's code)."""

MaskBuilder = Callable[[Tensor, tuple[int, ...]], Tensor]
"""Channels `(N, *s)` and the input size -> masks `(N, *size)` in [0, 1]."""


def normalised_masks(activations: Tensor, size: tuple[int, ...]) -> Tensor:
    """Channels `(N, *s)` upsampled to `size` (bilinear / linear, align_corners=True, as
    `torch.nn.UpsamplingBilinear2d`) and min-max normalised each: `(a - min) / (max - min + 1e-8)`.

    A channel that is constant at layer resolution gets the mask 0 (interpolation round-off would
    otherwise turn a constant non-zero channel into noise stretched to [0, 1])."""
    mode = "linear" if len(size) == 1 else "bilinear"
    masks = F.interpolate(activations.unsqueeze(1), size=size, mode=mode, align_corners=True).squeeze(1)
    flat = masks.flatten(1)
    low, high = flat.min(dim=1).values, flat.max(dim=1).values
    shape = (-1,) + (1,) * len(size)
    masks = (masks - low.view(shape)) / (high - low + MASK_EPS).view(shape)
    layer = activations.flatten(1)
    constant = layer.amax(dim=1) == layer.amin(dim=1)
    return masks.masked_fill(constant.view(shape), 0.0)


def quantiles(values: Tensor, level: float) -> Tensor:
    """`(N,)`: the `level` quantile of each row of `(N, n)` values, interpolating linearly between the
    order statistics at `level * (n - 1)` (numpy.percentile's default; `torch.quantile`'s too, which
    refuses inputs of more than 2^24 elements, so the rule is written out here)."""
    ordered = values.sort(dim=1).values
    position = level * (values.shape[1] - 1)
    below = math.floor(position)
    above = min(below + 1, values.shape[1] - 1)
    return torch.lerp(ordered[:, below], ordered[:, above], position - below)


def percentile_masks(activations: Tensor, size: tuple[int, ...]) -> Tensor:
    """Poly-CAM's masks: each channel `(N, *s)` scaled at layer resolution by its 0.1st and 99.9th
    percentiles, clipped to [0, 1], then upsampled to `size` (bilinear / linear, align_corners=False):

        M = up(clip((a - p_0.1) / max(p_99.9, 1e-12), 0, 1))

    The percentiles are taken over the channel's positions with linear interpolation between order
    statistics (`quantiles`: numpy.percentile's default "linear" method, as the authors use). The offset is
    subtracted but the divisor is p_99.9 itself, not p_99.9 - p_0.1: this is the authors' `normalize`
    (github.com/aenglebert/polycam, `polycam/core.py`), kept as published. For non-negative (post-ReLU)
    channels p_0.1 is usually 0 and the two agree. A constant channel gets the mask 0; a channel whose
    p_99.9 is <= 0 (possible before a ReLU) is divided by 1e-12, so it becomes 1 wherever a > p_0.1.
    """
    low, high = (quantiles(activations.flatten(1), level) for level in (PERCENTILE_OUTLIERS / 100, 1 - PERCENTILE_OUTLIERS / 100))
    shape = (-1,) + (1,) * (activations.ndim - 1)
    masks = ((activations - low.view(shape)) / high.clamp_min(PERCENTILE_FLOOR).view(shape)).clamp(0.0, 1.0)
    return upsampled_masks(masks, tuple(size))


def upsampled_masks(channels: Tensor, size: tuple[int, ...]) -> Tensor:
    """`(n, *s)` masks -> `(n, *size)`, bilinear / linear with align_corners=False (unchanged at that size)."""
    if tuple(channels.shape[1:]) == tuple(size):
        return channels
    mode = "linear" if len(size) == 1 else "bilinear"
    return F.interpolate(channels.unsqueeze(1), size=size, mode=mode, align_corners=False).squeeze(1)


def masked_target_scores(
    model: nn.Module,
    inputs: Tensor,
    activations: Tensor,
    targets: Tensor | None,
    internal_batch_size: int | None,
    inverse: bool = False,
    score: Callable[[Tensor, Tensor | None], Tensor] = select_scores,
    masks: MaskBuilder = normalised_masks,
) -> Tensor:
    """`(B, K)`: target score of `inputs[b] * M_bk` for every sample b and channel k, with
    `M_bk = masks(activations[b, k])` (default `normalised_masks`), or `1 - M_bk` when `inverse`.

    `score(outputs, targets)` reads the score (default: the raw target output)."""
    batch, channels = activations.shape[:2]
    size = tuple(inputs.shape[2:])
    scores = torch.empty(batch, channels, dtype=inputs.dtype, device=inputs.device)
    with torch.no_grad():
        for sample, channel in pair_chunks(batch, channels, internal_batch_size, inputs):
            kept = masks(activations[sample, channel], size).unsqueeze(1)
            outputs = model_outputs(model, inputs[sample] * (1 - kept if inverse else kept), sample)
            scores[sample, channel] = score(outputs, None if targets is None else targets[sample]).to(scores.dtype)
    return scores
