"""Structural similarity of maps (Wang et al., "Image Quality Assessment: From Error Visibility to
Structural Similarity", IEEE TIP 2004), batched in torch, as scikit-image's `structural_similarity`
computes it by default: a `win_size` uniform window (7), K1 = 0.01, K2 = 0.03, sample covariances
(N / (N - 1), N = win_size^d), the data range given, and the mean over the positions whose window fits
inside the map (scikit-image crops (win_size - 1) / 2 at each border):

    SSIM = mean_p ((2 mu_a mu_b + C1)(2 s_ab + C2)) / ((mu_a^2 + mu_b^2 + C1)(s_a^2 + s_b^2 + C2)),
    C1 = (K1 R)^2, C2 = (K2 R)^2, R the data range.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def box_means(values: Tensor, win_size: int, dims: int) -> Tensor:
    """The mean of every `win_size`-long window (a square one over 2 dims) that fits inside the last `dims`
    axes, as differences of cumulative sums: a few passes over the values whatever the window (float64 keeps
    the differences' rounding near 1e-16 of the sums)."""
    for axis in range(1, dims + 1):
        sums = F.pad(values.cumsum(-axis), [0, 0] * (axis - 1) + [1, 0])
        windows = sums.shape[-axis] - win_size
        values = sums.narrow(-axis, win_size, windows) - sums.narrow(-axis, 0, windows)
    return values / win_size**dims


def structural_similarity(first: Tensor, second: Tensor, data_range: Tensor, win_size: int = 7) -> Tensor:
    """SSIM `(B,)` float64 of maps `(B, H, W)` or `(B, T)`; `data_range` `(B,)`. A zero data range (both
    maps the same constant) gives 1."""
    spatial = first.shape[1:]
    if min(spatial) < win_size:
        raise ValueError(f"maps of shape {tuple(spatial)} are smaller than the SSIM window {win_size}: pass a smaller odd win_size")
    a, b = first.double(), second.double()
    # the five window means at once: mu_a, mu_b, E[a^2] + E[b^2] (only their sum is used), E[ab]
    means = box_means(torch.stack([a, b, a * a + b * b, a * b], dim=1), win_size, len(spatial))
    mu_a, mu_b, mean_squares, mean_ab = means.unbind(1)
    n = win_size ** len(spatial)
    cov_norm = n / (n - 1)
    mu_ab, mu_squares = mu_a * mu_b, mu_a * mu_a + mu_b * mu_b
    range_squared = data_range.double().square().view((-1,) + (1,) * len(spatial))
    c1, c2 = 0.01**2 * range_squared, 0.03**2 * range_squared
    # (2 mu_a mu_b + C1)(2 cov + C2) / ((mu_a^2 + mu_b^2 + C1)(var_a + var_b + C2)), cov and var with N / (N - 1)
    numerator = (2 * mu_ab + c1) * torch.add(c2, mean_ab - mu_ab, alpha=2 * cov_norm)
    denominator = (mu_squares + c1) * torch.add(c2, mean_squares - mu_squares, alpha=cov_norm)
    value = (numerator / denominator).flatten(1).mean(dim=1)
    return torch.where(data_range.to(value.device) > 0, value, 1.0)
