"""A model-free centre-bias baseline."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lit_xai.explainers.base import Explainer


class CenterSaliency(Explainer):
    """Centre bias: an isotropic Gaussian (relative to the input's size) centred on the input.

        map_ij = exp(-((i - c_H)^2 / (2 (sigma H)^2) + (j - c_W)^2 / (2 (sigma W)^2))),  c_N = (N - 1) / 2,

    i.e. pixel centres, so the map is symmetric and equals 1 at the centre pixel when the size is odd;
    values lie in (0, 1]. Time series `(B, C, T)`: `map_t = exp(-(t - c_T)^2 / (2 (sigma T)^2))`.

    Photographs are framed with their subject near the middle, so a fixed central blob already predicts
    human fixations well (Judd et al., "Learning to Predict Where Humans Look", ICCV 2009; Borji & Itti,
    "State-of-the-art in Visual Attention Modeling", TPAMI 2013) and often overlaps the object that drives
    a classifier. A method's faithfulness is only informative when it beats this input- and model-independent
    prior. The map depends on the input's shape only: the model, targets and input values are ignored.
    """

    def __init__(self, sigma: float = 0.25) -> None:
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not math.isfinite(sigma) or sigma <= 0:
            raise ValueError(f"sigma must be a finite number > 0 (the Gaussian's std as a fraction of each side), got {sigma!r}")
        self.sigma = float(sigma)

    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        spatial = tuple(inputs.shape[2:])
        exponent = torch.zeros((), dtype=torch.float64, device=inputs.device)
        for axis, size in enumerate(spatial):
            coordinate = torch.arange(size, dtype=torch.float64, device=inputs.device) - (size - 1) / 2
            term = coordinate.square() / (2 * (self.sigma * size) ** 2)
            exponent = exponent + term.reshape([size if a == axis else 1 for a in range(len(spatial))])
        centre = torch.exp(-exponent).to(torch.float32)
        return centre.expand(inputs.shape[0], *spatial).contiguous()
