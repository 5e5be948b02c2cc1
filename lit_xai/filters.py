"""Small signal-processing kernels shared by explainers and metrics."""

from __future__ import annotations

import torch
from torch import Tensor


def gaussian_kernel(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Sampled, normalised 1-D Gaussian: `g_i = exp(-(i - c)^2 / (2 sigma^2)) / sum`, c the centre."""
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2  # float64 on the CPU (MPS has none)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    return (kernel / kernel.sum()).to(device=device, dtype=dtype)
