"""Grad-CAM."""

from __future__ import annotations

from torch import Tensor

from lit_xai.explainers.cam import GradientCAM
from lit_xai.explainers.weighting import gradcam_map


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
