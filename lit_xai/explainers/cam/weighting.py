"""Weighting rules that turn activations `A (B, K, *s)` and gradients `G` into a CAM `(B, *s)`.

Each rule is a pure function so that every gradient source (plain, smoothed, expected) can use it.
"""

from __future__ import annotations

import torch
from torch import Tensor


def spatial_sum(tensor: Tensor) -> Tensor:
    """Sum over every spatial position: `(B, K, *s) -> (B, K)`."""
    return tensor.flatten(2).sum(dim=2)


def spatial_mean(tensor: Tensor) -> Tensor:
    """Mean over every spatial position: `(B, K, *s) -> (B, K)`."""
    return tensor.flatten(2).mean(dim=2)


def weighted_channel_sum(weights: Tensor, activations: Tensor) -> Tensor:
    """`sum_k w_k A_k`: `(B, K)` weights and `(B, K, *s)` activations -> `(B, *s)`."""
    shape = weights.shape + (1,) * (activations.ndim - 2)
    return (weights.view(shape) * activations).sum(dim=1)


def gradcam_map(activations: Tensor, gradients: Tensor) -> Tensor:
    """Grad-CAM: `ReLU(sum_k mean_ij(G_k) A_k)`."""
    return torch.relu(weighted_channel_sum(spatial_mean(gradients), activations))


def gradcampp_weights(activations: Tensor, first: Tensor, second: Tensor, third: Tensor, eps: float) -> Tensor:
    """Grad-CAM++ channel weights from the gradient's first, second and third powers (or their means):

        alpha_kij = g2_kij / (2 g2_kij + sum_ab(A_kab) g3_kij + eps),  alpha = 0 where g2 = 0
        w_k       = sum_ij alpha_kij ReLU(g1_kij)
    """
    total = spatial_sum(activations).view(activations.shape[:2] + (1,) * (activations.ndim - 2))
    alpha = second / (2 * second + total * third + eps)
    alpha = torch.where(second != 0, alpha, torch.zeros_like(alpha))
    return spatial_sum(alpha * torch.relu(first))


def gradcampp_map(activations: Tensor, gradients: Tensor, eps: float) -> Tensor:
    """Grad-CAM++: `ReLU(sum_k w_k A_k)` with `w` from `gradcampp_weights(A, g, g^2, g^3)`."""
    squared = gradients.pow(2)
    weights = gradcampp_weights(activations, gradients, squared, squared * gradients, eps)
    return torch.relu(weighted_channel_sum(weights, activations))


def xgradcam_map(activations: Tensor, gradients: Tensor, eps: float) -> Tensor:
    """XGrad-CAM: `w_k = sum_ij(G_k A_k) / (sum_ij A_k + eps)`, map `ReLU(sum_k w_k A_k)`."""
    weights = spatial_sum(gradients * activations) / (spatial_sum(activations) + eps)
    return torch.relu(weighted_channel_sum(weights, activations))


def hirescam_map(activations: Tensor, gradients: Tensor) -> Tensor:
    """HiRes-CAM: element-wise `ReLU(sum_k G_k * A_k)`."""
    return torch.relu((gradients * activations).sum(dim=1))


def layercam_map(activations: Tensor, gradients: Tensor) -> Tensor:
    """LayerCAM: `ReLU(sum_k ReLU(G_k) * A_k)` (the outer ReLU matters only where A < 0)."""
    return torch.relu((torch.relu(gradients) * activations).sum(dim=1))


def elementwise_gradcam_map(activations: Tensor, gradients: Tensor) -> Tensor:
    """Element-wise Grad-CAM: `sum_k ReLU(G_k * A_k)` (each product clipped before the channel sum)."""
    return torch.relu(gradients * activations).sum(dim=1)


# The weighted activations T (B, K, *s) of the rules whose map is ReLU(sum_k T_k): what `eigen_smooth`
# projects onto its first principal component instead of summing (pytorch-grad-cam's `get_cam_image`).


def gradcam_weighted(activations: Tensor, gradients: Tensor) -> Tensor:
    """Grad-CAM: `mean_ij(G_k) A_k`."""
    return spatial_mean(gradients).view(activations.shape[:2] + (1,) * (activations.ndim - 2)) * activations


def gradcampp_weighted(activations: Tensor, gradients: Tensor, eps: float) -> Tensor:
    """Grad-CAM++: `w_k A_k` with the Grad-CAM++ weights."""
    squared = gradients.pow(2)
    weights = gradcampp_weights(activations, gradients, squared, squared * gradients, eps)
    return weights.view(activations.shape[:2] + (1,) * (activations.ndim - 2)) * activations


def xgradcam_weighted(activations: Tensor, gradients: Tensor, eps: float) -> Tensor:
    """XGrad-CAM: `w_k A_k`, w_k = sum_ij(G_k A_k) / (sum_ij A_k + eps)."""
    weights = spatial_sum(gradients * activations) / (spatial_sum(activations) + eps)
    return weights.view(activations.shape[:2] + (1,) * (activations.ndim - 2)) * activations
