"""Gradient-weighted CAMs: the plain gradient source with each weighting rule."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from lit_xai.explainers.cam.base import GradientCAM
from lit_xai.explainers.cam.weighting import (
    elementwise_gradcam_map,
    gradcam_map,
    gradcam_weighted,
    gradcampp_map,
    gradcampp_weighted,
    hirescam_map,
    layercam_map,
    xgradcam_map,
    xgradcam_weighted,
)
from lit_xai.explainers.tokens import Reshape
from lit_xai.explainers.upsample import UpsampleMode


class GradCAM(GradientCAM):
    """Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
    Localization", ICCV 2017).

        w_k^c = (1 / Z) sum_ij dy^c / dA^k_ij          (Z = number of spatial positions)
        L^c   = ReLU(sum_k w_k^c A^k)

    y^c is the raw output (logit) of the target class, A the target layer's output at the input. The map
    is computed at layer resolution, then upsampled (`upsample`). Works on Conv2d layers `(B, K, H, W)`
    and Conv1d layers `(B, K, T)`; for a one-output regressor y is the prediction itself.
    """

    def weigh(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return gradcam_map(activations, gradients)

    def weighted_activations(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return gradcam_weighted(activations, gradients)


class GradCAMPlusPlus(GradientCAM):
    """Grad-CAM++ (Chattopadhay et al., "Grad-CAM++: Generalized Gradient-based Visual Explanations for Deep
    Convolutional Networks", WACV 2018), with g = dy^c/dA (the exponential-output form of the paper):

        alpha_kij = g_kij^2 / (2 g_kij^2 + sum_ab A_kab g_kij^3 + eps),   alpha_kij = 0 where g_kij = 0
        w_k       = sum_ij alpha_kij ReLU(g_kij)
        L^c       = ReLU(sum_k w_k A^k)

    `eps` only guards the division. pytorch-grad-cam uses 1e-6, which dominates the denominator when
    gradients are small (|g| < ~1e-3); the default here is 1e-12 so the paper's ratio is kept. Pass
    `eps=1e-6` to reproduce pytorch-grad-cam.
    """

    def __init__(
        self, target_layer: str | None = None, upsample: UpsampleMode = "bilinear", eps: float = 1e-12, reshape: Optional[Reshape] = None,
        augment: bool = False, eigen_smooth: bool = False,
    ) -> None:
        super().__init__(target_layer, upsample, reshape, augment=augment, eigen_smooth=eigen_smooth)
        self.eps = eps

    def weigh(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return gradcampp_map(activations, gradients, self.eps)

    def weighted_activations(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return gradcampp_weighted(activations, gradients, self.eps)


class XGradCAM(GradientCAM):
    """XGrad-CAM (Fu et al., "Axiom-based Grad-CAM: Towards Accurate Visualization and Explanation of
    CNNs", BMVC 2020):

        w_k = sum_ij (A_kij / (sum_ab A_kab + eps)) dy^c/dA_kij,     L^c = ReLU(sum_k w_k A^k)

    `eps` = 1e-7 as in pytorch-grad-cam.
    """

    def __init__(
        self, target_layer: str | None = None, upsample: UpsampleMode = "bilinear", eps: float = 1e-7, reshape: Optional[Reshape] = None,
        augment: bool = False, eigen_smooth: bool = False,
    ) -> None:
        super().__init__(target_layer, upsample, reshape, augment=augment, eigen_smooth=eigen_smooth)
        self.eps = eps

    def weigh(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return xgradcam_map(activations, gradients, self.eps)

    def weighted_activations(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return xgradcam_weighted(activations, gradients, self.eps)


class HiResCAM(GradientCAM):
    """HiRes-CAM (Draelos & Carin, "Use HiResCAM instead of Grad-CAM for faithful explanations of
    convolutional neural networks", arXiv 2011.08891, 2020): the gradient multiplies the activations
    element-wise instead of being averaged first,

        L^c_ij = ReLU(sum_k dy^c/dA_kij * A_kij).

    For a model whose head is global average pooling + linear, it equals Grad-CAM.
    """

    def weigh(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return hirescam_map(activations, gradients)

    def weighted_activations(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return gradients * activations


class LayerCAM(GradientCAM):
    """LayerCAM (Jiang et al., "LayerCAM: Exploring Hierarchical Class Activation Maps for Localization",
    IEEE TIP 2021): positive gradients weight each position,

        L^c_ij = ReLU(sum_k ReLU(dy^c/dA_kij) * A_kij).

    Meant for shallow layers too, where it keeps fine detail.
    """

    def weigh(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return layercam_map(activations, gradients)

    def weighted_activations(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return torch.relu(gradients) * activations


class GradCAMElementWise(GradientCAM):
    """Element-wise Grad-CAM (pytorch-grad-cam's `GradCAMElementWise`): like HiRes-CAM, but each
    gradient x activation product is clipped before the channel sum,

        L^c_ij = sum_k ReLU(dy^c/dA_kij * A_kij),

    so channels that lower the score at a position cannot cancel those that raise it.
    """

    def weigh(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return elementwise_gradcam_map(activations, gradients)

    def weighted_activations(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return torch.relu(gradients * activations)
