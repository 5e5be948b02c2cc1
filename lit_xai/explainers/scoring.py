"""Score-based weights: the target score of the input masked by each of a layer's normalised channels.

Used by Score-CAM and Poly-CAM. The masked forward passes run under `torch.no_grad()` (no activations
kept) in chunks of (sample, channel) pairs (`lit_xai.chunking`); masks are built per chunk, so memory
does not grow with the number of channels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_xai.chunking import pair_chunks
from lit_xai.targets import model_outputs, select_scores

MASK_EPS = 1e-8


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


def masked_target_scores(
    model: nn.Module,
    inputs: Tensor,
    activations: Tensor,
    targets: Tensor | None,
    internal_batch_size: int | None,
    inverse: bool = False,
    score: Callable[[Tensor, Tensor | None], Tensor] = select_scores,
) -> Tensor:
    """`(B, K)`: target score of `inputs[b] * M_bk` for every sample b and channel k, with
    `M_bk = normalised_masks(activations[b, k])`, or `1 - M_bk` when `inverse`.

    `score(outputs, targets)` reads the score (default: the raw target output)."""
    batch, channels = activations.shape[:2]
    size = tuple(inputs.shape[2:])
    scores = torch.empty(batch, channels, dtype=inputs.dtype, device=inputs.device)
    with torch.no_grad():
        for sample, channel in pair_chunks(batch, channels, internal_batch_size, inputs):
            masks = normalised_masks(activations[sample, channel], size).unsqueeze(1)
            outputs = model_outputs(model, inputs[sample] * (1 - masks if inverse else masks))
            scores[sample, channel] = score(outputs, None if targets is None else targets[sample]).to(scores.dtype)
    return scores
