"""CAMs from the principal components of a layer's activations: Eigen-CAM, EigenGrad-CAM, KPCA-CAM."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lit_xai.explainers.cam.base import GradientCAM, LayerExplainer
from lit_xai.explainers.cam.projections import KERNELS, first_principal_projection, kernel_principal_projection
from lit_xai.explainers.gradients import forward_with_activations
from lit_xai.explainers.upsample import UpsampleMode
from lit_xai.targets import resolve_targets


def layer_activations(model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> Tensor:
    """The target layer's output at the inputs, from one forward pass without gradients (targets are
    range-checked although class-agnostic methods do not use them)."""
    with torch.no_grad():
        outputs, activations = forward_with_activations(model, layer_name, inputs)
        resolve_targets(outputs, targets)
    return activations


class EigenCAM(LayerExplainer):
    """Eigen-CAM (Muhammad & Yeasin, "Eigen-CAM: Class Activation Map using Principal Components",
    IJCNN 2020): the layer's positions, as N points in R^K centred over the positions (X, N x K), are
    projected onto their first principal direction v (first right singular vector of X):

        L = ReLU(X v)   reshaped to the layer's spatial shape

    Class-agnostic: no gradients, and the target does not change the map (targets are only checked).
    The sign of v is arbitrary in an SVD; here v is oriented so that sum_k v_k >= 0, i.e. the map
    correlates positively with the channels' total activation (pytorch-grad-cam keeps LAPACK's sign, so
    its map is sometimes the negative one; its centring is the same).
    """

    def layer_map(self, model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> Tensor:
        return torch.relu(first_principal_projection(layer_activations(model, layer_name, inputs, targets)))


class EigenGradCAM(GradientCAM):
    """EigenGrad-CAM (pytorch-grad-cam; Eigen-CAM of the gradient-weighted activations): the first
    principal component, as in `EigenCAM`, of the element-wise product of the gradient and the activations,

        L^c = ReLU(X v),   X = centred positions of (dy^c/dA * A),   v oriented so that sum_k v_k >= 0.

    Class-discriminative through the gradient of the target's raw score.
    """

    def weigh(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return torch.relu(first_principal_projection(gradients * activations))


class KPCA_CAM(LayerExplainer):  # noqa: N801 - the name pytorch-grad-cam and the paper use
    """KPCA-CAM (Karmani et al., "KPCA-CAM: Visual Explainability of Deep Computer Vision Models using
    Kernel PCA", MMSP 2024): Eigen-CAM with kernel PCA in place of PCA. With X the centred positions,
    the kernel matrix K_ij = k(x_i, x_j) is double-centred and its top eigenpair (lambda, u) gives

        L = ReLU(u sqrt(lambda))   (scikit-learn's KernelPCA(n_components=1).fit_transform)

    with u's largest-magnitude entry positive (scikit-learn's sign rule). Kernels as scikit-learn's:
    "sigmoid" tanh(gamma <x, y> + coef0) (the default, as in pytorch-grad-cam), "rbf"
    exp(-gamma |x - y|^2), "poly" (gamma <x, y> + coef0)^degree, "linear", "cosine"; gamma None = 1 / K.
    Class-agnostic (no gradients). The eigendecomposition is exact (float64), on N x N matrices, N = the
    layer's number of positions.
    """

    def __init__(
        self,
        target_layer: str | None = None,
        upsample: UpsampleMode = "bilinear",
        kernel: str = "sigmoid",
        gamma: float | None = None,
        degree: int = 3,
        coef0: float = 1.0,
        augment: bool = False,
    ) -> None:
        super().__init__(target_layer, upsample, augment=augment)
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        if gamma is not None and not gamma > 0:
            raise ValueError(f"gamma must be a positive float or None (1 / number of channels), got {gamma!r}")
        self.kernel, self.gamma, self.degree, self.coef0 = kernel, gamma, degree, coef0

    def layer_map(self, model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> Tensor:
        activations = layer_activations(model, layer_name, inputs, targets)
        return torch.relu(kernel_principal_projection(activations, self.kernel, self.gamma, self.degree, self.coef0))
