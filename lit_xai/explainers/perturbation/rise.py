"""RISE: randomized input sampling (Petsiuk et al., "RISE: Randomized Input Sampling for Explanation of
Black-box Models", BMVC 2018)."""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_xai.checks import check_positive_int
from lit_xai.chunking import check_internal_batch_size, pair_chunks
from lit_xai.explainers.attributions import InputSpaceExplainer, clean_pass
from lit_xai.explainers.seeding import sample_seeds
from lit_xai.targets import model_outputs, target_probabilities


def rise_masks(grids: Tensor, shifts: Tensor, size: tuple[int, ...], cell_size: tuple[int, ...]) -> Tensor:
    """Masks `(n, *size)` from binary grids `(n, *cells)` and shifts `(n, dims)`: each grid is upsampled
    (bilinear; linear for series; align_corners=False) to `(cells + 1) * cell_size` and cropped to `size`
    at its shift (Petsiuk et al.'s random shifts)."""
    cells = grids.shape[1:]
    up = tuple((c + 1) * s for c, s in zip(cells, cell_size))
    mode = "linear" if len(size) == 1 else "bilinear"
    upsampled = F.interpolate(grids.unsqueeze(1), size=up, mode=mode, align_corners=False).squeeze(1)
    rows = torch.arange(len(grids), device=grids.device)
    if len(size) == 1:
        index = shifts[:, 0:1] + torch.arange(size[0], device=grids.device)
        return upsampled[rows[:, None], index]
    index_h = shifts[:, 0:1] + torch.arange(size[0], device=grids.device)
    index_w = shifts[:, 1:2] + torch.arange(size[1], device=grids.device)
    return upsampled[rows[:, None, None], index_h[:, :, None], index_w[:, None, :]]


class RISE(InputSpaceExplainer):
    """RISE (Petsiuk et al. 2018): the expected score of the input masked by random smooth masks,

        S^c = (1 / (N p)) sum_{i=1..N} y^c(x * M_i) M_i

    Each mask M_i: a `cell` x `cell` grid (`cell` cells for a series) of Bernoulli(p) ones, upsampled
    bilinearly to `(cell + 1) * ceil(H / cell)` and cropped to the input at a random shift in
    `[0, ceil(H / cell))` per axis. The masks of a sample depend only on `seed` and the sample; they are
    built and scored chunk by chunk (`internal_batch_size` masked inputs per forward pass, no gradients).
    The score y^c is the softmax probability of the target, as in the paper (a one-output regressor's raw
    prediction), so the map is >= 0 for classifiers. The map is the same for every channel; with
    `reduce="none"` it is repeated over the C channels (`(B, C, *spatial)`), "sum"/"abs_sum" give C times
    it, "max_abs" (default) the map itself.
    """

    def __init__(
        self,
        masks: int = 4000,
        cell: int = 7,
        p: float = 0.5,
        seed: int = 0,
        internal_batch_size: Optional[int] = None,
        reduce: str = "max_abs",
    ) -> None:
        super().__init__(reduce)
        self.masks = check_positive_int(masks, "masks")
        self.cell = check_positive_int(cell, "cell")
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 1:
            raise ValueError(f"p (the probability that a cell is kept) must lie in (0, 1], got {p!r}")
        self.p, self.seed = float(p), seed
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    def attributions(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        size = tuple(inputs.shape[2:])
        if any(self.cell > n for n in size):
            raise ValueError(f"cell={self.cell} is larger than the input's spatial size {size}; choose cell <= {min(size)}")
        if targets is None:
            _, targets = clean_pass(model, inputs, targets)
        cell_size = tuple(math.ceil(n / self.cell) for n in size)
        cells = (self.cell,) * len(size)
        grids, shifts = [], []
        for own_seed in sample_seeds(inputs, self.seed):  # a few bytes per mask: drawn up front, one generator per sample
            generator = torch.Generator().manual_seed(own_seed)
            grids.append(torch.rand((self.masks, *cells), generator=generator) < self.p)
            shifts.append(torch.stack([torch.randint(s, (self.masks,), generator=generator) for s in cell_size], dim=1))
        grid, shift = torch.stack(grids).to(inputs.device), torch.stack(shifts).to(inputs.device)
        saliency = inputs.new_zeros((inputs.shape[0], *size))
        with torch.no_grad():
            for sample, index in pair_chunks(inputs.shape[0], self.masks, self.internal_batch_size, inputs):
                masks = rise_masks(grid[sample, index].to(inputs.dtype), shift[sample, index], size, cell_size)
                outputs = model_outputs(model, inputs[sample] * masks.unsqueeze(1), sample)
                scores = target_probabilities(outputs, None if targets is None else targets[sample])
                saliency.index_add_(0, sample, scores.view(-1, *(1,) * len(size)) * masks)
        saliency = saliency / (self.masks * self.p)
        return saliency.unsqueeze(1).expand(inputs.shape)
