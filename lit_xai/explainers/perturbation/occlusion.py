"""Occlusion (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014), with
captum's conventions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional, Union

import torch
from torch import Tensor, nn

from lit_xai.checks import check_positive_int
from lit_xai.chunking import check_internal_batch_size, pair_chunks
from lit_xai.explainers.attributions import InputSpaceExplainer, clean_pass, expand_batch
from lit_xai.targets import model_outputs, select_scores

Size = Union[int, Sequence[int]]


def as_sizes(value: Size, dims: int, name: str) -> tuple[int, ...]:
    values = (value,) * dims if isinstance(value, int) and not isinstance(value, bool) else tuple(value)  # type: ignore[arg-type]
    if len(values) != dims:
        raise ValueError(f"{name} needs {dims} value(s), one per spatial axis, got {value!r}")
    return tuple(check_positive_int(v, name) for v in values)


def window_masks(starts: Tensor, window: tuple[int, ...], size: tuple[int, ...]) -> Tensor:
    """Boolean masks `(n, *size)`: ones on [start, start + window) per axis (cut at the border)."""
    axes = []
    for axis, (length, w) in enumerate(zip(size, window)):
        position = torch.arange(length, device=starts.device)
        start = starts[:, axis : axis + 1]
        axes.append((position >= start) & (position < start + w))
    if len(axes) == 1:
        return axes[0]
    return axes[0][:, :, None] & axes[1][:, None, :]


class Occlusion(InputSpaceExplainer):
    """Occlusion: the drop of the target score (the raw logit) when a window of the input, all channels,
    is replaced by `baseline` (a number, or a tensor broadcastable to the inputs), averaged over the windows that cover each position (captum's `Occlusion`):

        phi_i = (1 / |W_i|) sum_{w in W_i} (y^c(x) - y^c(x with window w set to the baseline)),

    W_i the windows containing position i. Windows of shape `window` (an int for every axis, or one per
    axis, e.g. (8, 8); captum's `sliding_window_shapes=(C, *window)`) start every `stride` along each axis,
    ceil((n - window) / stride) + 1 per axis (the last one may be cut by the border), so every position is
    covered; stride <= window is required (a window longer than an axis covers that axis once). The `B x windows` occluded inputs go through the model in chunks
    of `internal_batch_size` without gradients. The map is the same for every channel: `reduce="none"`
    repeats it over the C channels (captum's layout, `(B, C, *spatial)`); "sum" gives C times the signed
    drop, "abs_sum" (default) C times its magnitude, "max_abs" the magnitude.
    """

    def __init__(
        self,
        window: Size = 8,
        stride: Size = 4,
        baseline: Union[float, Tensor] = 0.0,
        internal_batch_size: Optional[int] = None,
        reduce: str = "abs_sum",
    ) -> None:
        super().__init__(reduce)
        self.window, self.stride = window, stride
        if isinstance(baseline, bool) or not isinstance(baseline, (int, float, Tensor)):
            raise ValueError(f"baseline must be a number or a tensor broadcastable to one sample, got {type(baseline).__name__}")
        self.baseline = baseline
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    def geometry(self, size: tuple[int, ...]) -> tuple[tuple[int, ...], Tensor]:
        """The window shape and the windows' start positions `(windows, dims)` for inputs of spatial `size`."""
        window, stride = as_sizes(self.window, len(size), "window"), as_sizes(self.stride, len(size), "stride")
        window = tuple(min(w, n) for w, n in zip(window, size))  # a window longer than an axis covers all of it
        if any(s > w for s, w, n in zip(stride, window, size) if w < n):
            raise ValueError(f"stride {stride} must be <= window {window} on every axis the window does not cover, or positions stay unoccluded")
        counts = [math.ceil((n - w) / s) + 1 for n, w, s in zip(size, window, stride)]
        grids = torch.meshgrid(*[torch.arange(c) * s for c, s in zip(counts, stride)], indexing="ij")
        return window, torch.stack([g.flatten() for g in grids], dim=1)

    def attributions(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        size = tuple(inputs.shape[2:])
        window, starts = self.geometry(size)
        starts = starts.to(inputs.device)
        baseline = expand_batch(self.baseline, inputs, "baseline")
        scores, targets = clean_pass(model, inputs, targets)
        drops = inputs.new_zeros((inputs.shape[0], *size))
        with torch.no_grad():
            for sample, index in pair_chunks(inputs.shape[0], len(starts), self.internal_batch_size, inputs):
                masks = window_masks(starts[index], window, size)
                occluded = torch.where(masks.unsqueeze(1), baseline[sample], inputs[sample])
                occluded_scores = select_scores(model_outputs(model, occluded, sample), None if targets is None else targets[sample])
                drop = (scores[sample] - occluded_scores).to(drops.dtype)  # float32 sums under autocast
                drops.index_add_(0, sample, drop.view(-1, *(1,) * len(size)) * masks)
        counts = window_masks(starts, window, size).sum(dim=0).to(inputs.dtype)
        return (drops / counts).unsqueeze(1).expand(inputs.shape)
