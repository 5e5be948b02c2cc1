"""Shapley-CAM: Grad-CAM weights from the gradient corrected by a Hessian-vector product."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_xai.explainers.cam.base import GradientCAM
from lit_xai.explainers.cam.weighting import gradcam_map
from lit_xai.explainers.gradients import LayerGradients, forward_with_activations
from lit_xai.explainers.upsample import UpsampleMode
from lit_xai.targets import checked_indices, is_regression, resolve_targets, select_scores

SCORES = ("logit", "rest")


def target_scores(outputs: Tensor, targets: Tensor | None, score: str) -> Tensor:
    """The raw target output ("logit"), or the residual softmax target ("rest") y_c + log softmax(y)_c."""
    if score == "logit":
        return select_scores(outputs, targets)
    if is_regression(outputs):
        raise ValueError('score="rest" needs a classifier (it uses the softmax over classes); use score="logit" for a one-output model')
    return select_scores(outputs, targets) + F.log_softmax(outputs, dim=1).gather(1, checked_indices(outputs, targets)).squeeze(1)


def shapley_gradients(model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None, score: str) -> LayerGradients:
    """`A` and `g - H A / 2`, with g = dy/dA and H A the Hessian-vector product d(g . A)/dA (A held constant)."""
    inputs.requires_grad_(True)
    outputs, activations = forward_with_activations(model, layer_name, inputs)
    targets = resolve_targets(outputs, targets)
    scores = target_scores(outputs, targets, score)
    (gradients,) = torch.autograd.grad(scores.sum(), activations, create_graph=True, allow_unused=True)
    if gradients is None:
        raise ValueError(f"the model's output does not depend on target layer {layer_name!r}; choose a layer on the path to the output")
    hessian_vector = None
    if gradients.requires_grad:  # else dy/dA is constant in A (the model is linear after the layer)
        (hessian_vector,) = torch.autograd.grad(gradients, activations, grad_outputs=activations.detach(), allow_unused=True)
    corrected = gradients if hessian_vector is None else gradients - 0.5 * hessian_vector
    return LayerGradients(activations.detach(), corrected.detach(), targets)


class ShapleyCAM(GradientCAM):
    """Shapley-CAM (Cai, "CAMs as Shapley Value-based Explainers", arXiv 2501.06261, 2025): the second-order
    Taylor estimate of each channel's Shapley value gives Grad-CAM's rule with the gradient corrected by
    the Hessian-vector product,

        w_k = mean_ij (g - 1/2 H A)_kij,   g = dy^c/dA,   (H A) = d(g . A)/dA,   L^c = ReLU(sum_k w_k A_k)

    `score="logit"` (default, the family's convention and pytorch-grad-cam's default target) differentiates
    the raw output; `score="rest"` the paper's residual softmax target y_c + log softmax(y)_c
    (pytorch-grad-cam's `ClassifierOutputReST`). On a network that is piecewise linear after the layer
    (ReLU, max-pooling, linear layers) H = 0 for the logit, and Shapley-CAM equals Grad-CAM; the softmax
    of "rest" makes H non-zero.
    """

    def __init__(self, target_layer: str | None = None, upsample: UpsampleMode = "bilinear", score: str = "logit", augment: bool = False) -> None:
        super().__init__(target_layer, upsample, augment=augment)
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        self.score = score

    def layer_gradients(self, model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> LayerGradients:
        return shapley_gradients(model, layer_name, inputs, targets, self.score)

    def weigh(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return gradcam_map(activations, gradients)
