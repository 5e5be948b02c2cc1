"""Weighting rules that turn activations `A (B, K, *s)` and gradients `G` into a CAM `(B, *s)`."""

from __future__ import annotations

import torch
from torch import Tensor


def spatial_mean(tensor: Tensor) -> Tensor:
    """Mean over every spatial position: `(B, K, *s) -> (B, K)`."""
    return tensor.flatten(2).mean(dim=2)


def weighted_channel_sum(weights: Tensor, activations: Tensor) -> Tensor:
    """`sum_k w_k A_k`: `(B, K)` weights and `(B, K, *s)` activations -> `(B, *s)`."""
    shape = weights.shape + (1,) * (activations.ndim - 2)
    return (weights.view(shape) * activations).sum(dim=1)


def gradcam_map(activations: Tensor, gradients: Tensor) -> Tensor:
    """Grad-CAM rule: `ReLU(sum_k mean_ij(G_k) * A_k)`."""
    return torch.relu(weighted_channel_sum(spatial_mean(gradients), activations))
