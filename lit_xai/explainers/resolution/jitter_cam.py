"""Jitter-CAM (Hartley et al., "Jitter-CAM: Improving the Spatial Resolution of CAM-Based Explanations",
BMVC 2021): a finer layer grid from CAMs of shifted crops of an enlarged input."""

from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_xai.chunking import check_internal_batch_size, pair_chunks
from lit_xai.explainers.cam.base import LayerExplainer
from lit_xai.explainers.cam.gradcam import GradCAM
from lit_xai.explainers.gradients import forward_with_activations
from lit_xai.explainers.layers import resolve_target_layer
from lit_xai.explainers.upsample import UpsampleMode, upsample
from lit_xai.targets import resolve_targets

RESIZES = ("nearest", "bilinear")
Grid = Union[int, tuple[int, int], None]


def grid_size(layer_size: tuple[int, int], grid: Grid, scale: float) -> tuple[int, int]:
    """`n` per axis: `grid` (an int for both axes or `(n_h, n_w)`), else `round(scale * m)`; n >= m."""
    if grid is None:
        sizes = tuple(int(round(scale * m)) for m in layer_size)
    elif isinstance(grid, int) and not isinstance(grid, bool):
        sizes = (grid, grid)
    else:
        sizes = tuple(grid)  # type: ignore[arg-type]
    if len(sizes) != 2 or any(n < m for n, m in zip(sizes, layer_size)):
        raise ValueError(
            f"the Jitter-CAM grid {sizes} must be at least the target layer's size {tuple(layer_size)} on each axis; "
            "raise grid or scale (scale >= 1)"
        )
    return sizes  # type: ignore[return-value]


def crop_offsets(input_size: int, layer_size: int, grid: int, device: torch.device) -> tuple[int, Tensor]:
    """The enlarged input's size `round(n p / m)` and the pixel offsets `round(i p / m)`, i = 0..n - m, of the
    crops along one axis (one layer cell k = p / m apart; exact integers when m divides p)."""
    cell = input_size / layer_size
    resized = int(round(input_size + (grid - layer_size) * cell))
    offsets = torch.tensor([int(round(i * cell)) for i in range(grid - layer_size + 1)], device=device)
    return resized, offsets


def cell_counts(layer_size: int, grid: int) -> Tensor:
    """How many of the n - m + 1 crops (each m cells wide, offsets 0..n - m) cover each of the n cells."""
    r = torch.arange(grid)
    return (torch.minimum(r, torch.tensor(grid - layer_size)) - torch.clamp(r - layer_size + 1, min=0) + 1).to(torch.float32)


class JitterCAM(LayerExplainer):
    """Jitter-CAM: the base CAM of every layer-cell-shifted crop of an enlarged input, averaged on a finer grid.

    With an `m_h x m_w` target layer and a `p_h x p_w` input (cell k = p / m pixels per axis), the grid is
    `n x n` with n = `grid` or round(`scale` * m) per axis. The input is resized (`resize`) by (n - m) cells
    to `round(n p / m)` pixels; each crop I_ij of the input's size at offset (i k, j k), i, j = 0..n - m, is
    explained by `base` at layer resolution, E(I_ij) of size m x m, and

        J[i:i+m, j:j+m] += E(I_ij),      C[i:i+m, j:j+m] += 1,      Jitter-CAM = J / (C + counter_start),

    then upsampled (`upsample`; "none" returns the n x n grid). The (n - m + 1)^2 crops of every sample go
    through `base` as batches of `internal_batch_size` crops (None: automatic, `lit_xai.chunking`).

    `counter_start=0.0` (default) divides by the number of crops covering each cell: the plain average of
    the paper's J / C. The authors' code (github.com/HartleyTW/Jitter-CAM) initialises its counter with
    ones, so it divides by the count plus one (cells covered by few crops, at the borders, are damped);
    `counter_start=1.0` reproduces it. The explained class is the target of the original input (its argmax
    when `targets` is None), the same for every crop.

    Args:
        base: any layer explainer (`GradCAM()` default); its `target_layer` is used and its `upsample` ignored.
        grid, scale: the grid size n (int or (n_h, n_w)), or None for round(scale * m).
        resize: how the input is enlarged, "nearest" (the authors' code) or "bilinear".
        counter_start: added to the per-cell count before dividing.
        upsample: "bilinear" (the paper), "nearest", "none" or an upsampler.
        internal_batch_size: crops per pass through `base`; None chooses it for the device.
    """

    def __init__(
        self,
        base: LayerExplainer = GradCAM(),
        grid: Grid = None,
        scale: float = 2.0,
        resize: str = "nearest",
        counter_start: float = 0.0,
        upsample: UpsampleMode = "bilinear",
        internal_batch_size: Optional[int] = None,
    ) -> None:
        if not isinstance(base, LayerExplainer):
            raise TypeError(f"base must be a layer explainer (a CAM such as GradCAM()), got {type(base).__name__}")
        super().__init__(base.target_layer, upsample)
        if grid is None and not scale >= 1.0:
            raise ValueError(f"scale must be >= 1 (the grid is round(scale * m) cells per axis), got {scale!r}")
        if resize not in RESIZES:
            raise ValueError(f"resize must be one of {RESIZES}, got {resize!r}")
        if counter_start < 0:
            raise ValueError(f"counter_start must be >= 0 (0 = plain average, 1 = the authors' code), got {counter_start!r}")
        self.base, self.grid, self.scale, self.resize, self.counter_start = base, grid, scale, resize, counter_start
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        if inputs.ndim != 4:
            raise ValueError(f"JitterCAM explains images (B, C, H, W), got inputs of shape {tuple(inputs.shape)}")
        layer_name = resolve_target_layer(model, self.base.target_layer)
        return upsample(self.layer_map(model, layer_name, inputs, targets), tuple(inputs.shape[2:]), self.upsample, model, inputs, targets)

    def layer_map(self, model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> Tensor:
        """The `(B, n_h, n_w)` grid J / (C + counter_start)."""
        with torch.no_grad():
            outputs, activations = forward_with_activations(model, layer_name, inputs)
        targets = resolve_targets(outputs, targets)
        layer = tuple(activations.shape[2:])
        grid = grid_size(layer, self.grid, self.scale)  # type: ignore[arg-type]
        (size_h, offsets_h), (size_w, offsets_w) = (
            crop_offsets(p, m, n, inputs.device) for p, m, n in zip(inputs.shape[2:], layer, grid)
        )
        mode = {"mode": "nearest"} if self.resize == "nearest" else {"mode": "bilinear", "align_corners": False}
        enlarged = F.interpolate(inputs, size=(size_h, size_w), **mode)
        jitter = jitter_sums(
            model, layer_name, self.base, enlarged, targets, tuple(inputs.shape[2:]), layer, grid, offsets_h, offsets_w,
            self.internal_batch_size,
        )
        counts = torch.outer(cell_counts(layer[0], grid[0]), cell_counts(layer[1], grid[1])).to(jitter)
        return jitter / (counts + self.counter_start)


def jitter_sums(
    model: nn.Module,
    layer_name: str,
    base: LayerExplainer,
    enlarged: Tensor,
    targets: Tensor | None,
    size: tuple[int, int],
    layer: tuple[int, int],
    grid: tuple[int, int],
    offsets_h: Tensor,
    offsets_w: Tensor,
    internal_batch_size: int | None,
) -> Tensor:
    """J `(B, n_h, n_w)`: every crop's layer map added at its cell offset; crops run as chunked batches."""
    batch, channels = enlarged.shape[:2]
    crops_w = len(offsets_w)
    per_sample = len(offsets_h) * crops_w
    jitter = enlarged.new_zeros((batch, *grid))
    pixel_rows, pixel_cols = (torch.arange(s, device=enlarged.device) for s in size)
    cell_rows, cell_cols = (torch.arange(m, device=enlarged.device) for m in layer)
    channel = torch.arange(channels, device=enlarged.device).view(1, -1, 1, 1)
    like = enlarged.new_empty((1, channels, *size))
    for sample, crop in pair_chunks(batch, per_sample, internal_batch_size, like, batch):
        i, j = crop // crops_w, crop % crops_w
        rows = (offsets_h[i].view(-1, 1) + pixel_rows).view(-1, 1, size[0], 1)
        cols = (offsets_w[j].view(-1, 1) + pixel_cols).view(-1, 1, 1, size[1])
        crops = enlarged[sample.view(-1, 1, 1, 1), channel, rows, cols]
        maps = base.layer_map(model, layer_name, crops, None if targets is None else targets[sample]).detach()
        if tuple(maps.shape[1:]) != tuple(layer):
            raise ValueError(f"the base explainer's layer map has shape {tuple(maps.shape[1:])}, expected the layer's {layer}")
        cell_r = (i.view(-1, 1) + cell_rows).view(-1, layer[0], 1)
        cell_c = (j.view(-1, 1) + cell_cols).view(-1, 1, layer[1])
        jitter.index_put_((sample.view(-1, 1, 1), cell_r, cell_c), maps.to(jitter.dtype), accumulate=True)
    return jitter
