"""Projections of a layer's positions onto their first (kernel) principal component, for Eigen-CAM,
EigenGrad-CAM and KPCA-CAM.

A layer's output `(B, K, *s)` is read per sample as N = prod(s) points (the positions) in R^K, centred
over the positions. The projection is a map `(B, *s)`.
"""

from __future__ import annotations

import torch
from torch import Tensor

KERNELS = ("sigmoid", "rbf", "poly", "linear", "cosine")


def centred_positions(maps: Tensor) -> Tensor:
    """`(B, K, *s) -> (B, N, K)`: each sample's positions as rows, minus their mean over positions."""
    points = maps.flatten(2).transpose(1, 2)
    return points - points.mean(dim=1, keepdim=True)


def first_principal_projection(maps: Tensor) -> Tensor:
    """Projection of the centred positions onto their first principal direction v (the first right
    singular vector of the centred `(N, K)` matrix X), `P = X v`, as a map `(B, *s)`.

    The sign of a singular vector is arbitrary (pytorch-grad-cam keeps whatever LAPACK returns). Here v
    is oriented so that its loadings sum to a non-negative number: then `sum_ij P_ij S_ij = lambda_1 sum_k v_k
    >= 0` with S = X 1 the centred channel sum, i.e. the map is high where the channels are, together,
    more active than average. Computed in float64 (a batched SVD, no per-sample loop).
    """
    points = centred_positions(maps.double())
    _, _, vh = torch.linalg.svd(points, full_matrices=False)
    direction = vh[:, 0, :]
    sign = torch.where(direction.sum(dim=1) < 0, -1.0, 1.0).to(direction.dtype)
    projection = points @ (direction * sign.unsqueeze(1)).unsqueeze(2)
    return projection.squeeze(2).view(maps.shape[:1] + maps.shape[2:]).to(maps.dtype)


def kernel_matrix(points: Tensor, kernel: str, gamma: float | None, degree: int, coef0: float) -> Tensor:
    """scikit-learn's pairwise kernels on `(B, N, K)` points -> `(B, N, N)`; gamma None = 1 / K."""
    gamma = 1.0 / points.shape[2] if gamma is None else gamma
    if kernel == "rbf":
        return torch.exp(-gamma * torch.cdist(points, points).pow(2))
    if kernel == "cosine":
        unit = points / points.norm(dim=2, keepdim=True).clamp_min(torch.finfo(points.dtype).tiny)
        return unit @ unit.transpose(1, 2)
    products = points @ points.transpose(1, 2)
    if kernel == "linear":
        return products
    if kernel == "poly":
        return (gamma * products + coef0).pow(degree)
    return torch.tanh(gamma * products + coef0)


def kernel_principal_projection(maps: Tensor, kernel: str, gamma: float | None, degree: int, coef0: float) -> Tensor:
    """First kernel principal component of the centred positions, as scikit-learn's
    `KernelPCA(n_components=1).fit_transform` computes it: the kernel matrix is double-centred,
    `Kc = K - 1_N K - K 1_N + 1_N K 1_N`, its top eigenpair (lambda, u) gives `P = u sqrt(max(lambda, 0))`,
    and u's sign makes its largest-magnitude entry positive. A map `(B, *s)`, computed in float64.
    """
    points = centred_positions(maps.double())
    gram = kernel_matrix(points, kernel, gamma, degree, coef0)
    gram = gram - gram.mean(dim=1, keepdim=True) - gram.mean(dim=2, keepdim=True) + gram.mean(dim=(1, 2), keepdim=True)
    values, vectors = torch.linalg.eigh(gram)
    top, vector = values[:, -1].clamp_min(0.0), vectors[:, :, -1]
    largest = vector.gather(1, vector.abs().argmax(dim=1, keepdim=True))
    vector = vector * torch.where(largest < 0, -1.0, 1.0).to(vector.dtype)
    projection = vector * top.sqrt().unsqueeze(1)
    return projection.view(maps.shape[:1] + maps.shape[2:]).to(maps.dtype)
