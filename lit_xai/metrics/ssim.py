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


def structural_similarity(first: Tensor, second: Tensor, data_range: Tensor, win_size: int = 7) -> Tensor:
    """SSIM `(B,)` float64 of maps `(B, H, W)` or `(B, T)`; `data_range` `(B,)`. A zero data range (both
    maps the same constant) gives 1."""
    spatial = first.shape[1:]
    if min(spatial) < win_size:
        raise ValueError(f"maps of shape {tuple(spatial)} are smaller than the SSIM window {win_size}: pass a smaller odd win_size")
    pool = F.avg_pool1d if len(spatial) == 1 else F.avg_pool2d
    a, b = first.double().unsqueeze(1), second.double().unsqueeze(1)
    # the five window means in one pooling call, one channel each
    mu_a, mu_b, mean_aa, mean_bb, mean_ab = pool(torch.cat([a, b, a * a, b * b, a * b], dim=1), win_size, stride=1).split(1, dim=1)
    n = win_size ** len(spatial)
    cov_norm = n / (n - 1)
    var_a = cov_norm * (mean_aa - mu_a * mu_a)
    var_b = cov_norm * (mean_bb - mu_b * mu_b)
    cov = cov_norm * (mean_ab - mu_a * mu_b)
    shape = (-1,) + (1,) * (len(spatial) + 1)
    c1 = ((0.01 * data_range.double()) ** 2).view(shape)
    c2 = ((0.03 * data_range.double()) ** 2).view(shape)
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    value = ssim.flatten(1).mean(dim=1)
    return torch.where(data_range.to(value.device) > 0, value, 1.0)
