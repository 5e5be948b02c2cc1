"""Expected Grad-CAM, Expected Grad-CAM++ and Guided Expected Grad-CAM (Buono & Akesson, "Towards gradient
faithfulness and beyond", Halmstad University 2023, sections 4.3-4.5; Buono et al., "Expected Grad-CAM:
Towards gradient faithfulness")."""

from __future__ import annotations

from typing import Any, Optional, Union

import torch
from torch import Tensor, nn

from lit_xai.checks import check_positive_int
from lit_xai.chunking import check_internal_batch_size
from lit_xai.explainers.attributions import check_reduce, reduce_channels
from lit_xai.explainers.cam.base import LayerExplainer
from lit_xai.explainers.cam.weighting import gradcam_map, gradcampp_map
from lit_xai.explainers.expected_gradients import (
    ALPHAS,
    BankActivationCache,
    ConvergenceDiagnostics,
    ExpectedGradientsResult,
    expected_gradients,
)
from lit_xai.explainers.layers import resolve_target_layer
from lit_xai.explainers.path_baselines import BaselineSource, as_baseline_source
from lit_xai.explainers.tokens import Reshape
from lit_xai.explainers.upsample import UpsampleMode, upsample

Baselines = Union[BaselineSource, Tensor, None]


class ExpectedGradCAM(LayerExplainer):
    """Expected Grad-CAM: Grad-CAM whose gradients are expected gradients along paths from baselines drawn
    from a distribution D (e.g. the training data) to the input.

        G_kij = E_{x'~D, a}[(A(x) - A(x'))_kij * dy^c/dA_kij (x' + a (x - x'))]
        w_k   = mean_ij G_kij,        L^c = ReLU(sum_k w_k A_k(x))

    estimated with M draws (`draws`) per group; with K groups (`batches`, the thesis' "mini-batching")
    each group's map is computed from its own M draws and the K maps are averaged.

    Args:
        baselines: a tensor `(N, *input_shape)` to draw from uniformly (N = 1: a fixed baseline), a
            BaselineSource (`DataBaselines`, `ZeroBaseline`, `GaussianBaselines`), or None (zeros; the
            ExplainerCallback fills it with a bank from the datamodule's training data).
        draws: M, draws per group.   batches: K, independent groups whose maps are averaged.
        alphas: "uniform" (a ~ U(0, 1) per draw) or "linear" (a_s = s / M, s = 1..M).
        noise_std: std of Gaussian noise added to each drawn baseline (local smoothing); 0 = none.
        internal_batch_size: path points per forward pass (None: automatic, `lit_xai.chunking`).   seed: draws are seeded per sample.
        tolerance: a sample stops after the first group count at which its convergence delta is
            <= tolerance (only with batches > 1); the other samples go on.
        return_diagnostics: return `(maps, ConvergenceDiagnostics)` instead of maps.
    """

    def __init__(
        self,
        target_layer: Optional[str] = None,
        upsample: UpsampleMode = "bilinear",
        baselines: Baselines = None,
        draws: int = 50,
        batches: int = 1,
        alphas: str = "uniform",
        noise_std: float = 0.0,
        internal_batch_size: Optional[int] = None,
        seed: int = 0,
        tolerance: Optional[float] = None,
        return_diagnostics: bool = False,
        reshape: Optional[Reshape] = None,
        augment: bool = False,
    ) -> None:
        super().__init__(target_layer, upsample, reshape, augment=augment)
        check_positive_int(draws, "draws")
        check_positive_int(batches, "batches")
        if alphas not in ALPHAS:
            raise ValueError(f"alphas must be one of {ALPHAS}, got {alphas!r}")
        if noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std!r}")
        self.baselines = baselines
        self.draws, self.batches, self.alphas, self.noise_std, self.seed = draws, batches, alphas, noise_std, seed
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)
        self.tolerance = tolerance
        self.return_diagnostics = return_diagnostics
        self.diagnostics: ConvergenceDiagnostics | None = None
        self._cache = BankActivationCache()

    def __call__(self, model: nn.Module, inputs: Tensor, *args: Any, **kwargs: Any):  # type: ignore[override]
        maps = super().__call__(model, inputs, *args, **kwargs)
        return (maps, self.diagnostics) if self.return_diagnostics else maps

    def rule(self, activations: Tensor, gradients: Tensor) -> Tensor:
        """The weighting rule applied to each group's expected gradients."""
        return gradcam_map(activations, gradients)

    def expected(self, model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None, input_terms: bool) -> ExpectedGradientsResult:
        result = expected_gradients(
            model, layer_name, inputs, targets, as_baseline_source(self.baselines), self.draws, self.batches, self.alphas,
            self.noise_std, self.seed, self.internal_batch_size, input_terms=input_terms, cache=self._cache,
            tolerance=self.tolerance,
        )
        self.diagnostics = result.diagnostics
        return result

    def group_maps(self, result: ExpectedGradientsResult) -> Tensor:
        """Mean over the groups each sample used of the rule's map for each group: `(B, *s)`."""
        groups = result.layer_terms.shape[1]
        maps = torch.stack([self.rule(result.activations, result.layer_terms[:, g]) for g in range(groups)], dim=1)
        used = torch.arange(groups, device=maps.device) < result.groups_used.unsqueeze(1)
        used = used.view(*used.shape, *(1,) * (maps.ndim - 2))
        return (maps * used).sum(dim=1) / result.groups_used.view(-1, *(1,) * (maps.ndim - 2))

    def layer_map(self, model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> Tensor:
        return self.group_maps(self.expected(model, layer_name, inputs, targets, input_terms=False))


class ExpectedGradCAMPlusPlus(ExpectedGradCAM):
    """Expected Grad-CAM++: the expected-gradient source of ExpectedGradCAM with the Grad-CAM++ rule,

        alpha_kij = G_kij^2 / (2 G_kij^2 + sum_ab A_kab G_kij^3 + eps),  w_k = sum_ij alpha_kij ReLU(G_kij),
        L^c = ReLU(sum_k w_k A_k(x)),

    G the expected gradients of ExpectedGradCAM (thesis section 4.4, the TorchCAM-style formulation).
    Takes ExpectedGradCAM's arguments plus `eps` (default 1e-12).
    """

    def __init__(self, *args: object, eps: float = 1e-12, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.eps = eps

    def rule(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return gradcampp_map(activations, gradients, self.eps)


class GuidedExpectedGradCAM(ExpectedGradCAM):
    """Guided Expected Grad-CAM (thesis section 4.5, eq. 61): the Expected Grad-CAM map, upsampled to the
    input, times the input-space expected gradients computed from the same draws,

        H^c = up(L^c_EGC) * phi^EG,   phi^EG_i = E_{x', a}[(x_i - x'_i) dy^c/dx_i (x' + a (x - x'))],

    then channels reduced with `reduce` ("none" keeps `(B, C, *spatial)`; default "abs_sum").
    """

    def __init__(self, *args: object, reduce: str = "abs_sum", **kwargs: object) -> None:
        if kwargs.get("augment"):
            raise ValueError("GuidedExpectedGradCAM has no augment option (its input-space map is not a CAM); use ExpectedGradCAM(augment=True)")
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if self.upsample == "none":
            raise ValueError("GuidedExpectedGradCAM multiplies the map with input-space attributions: upsample cannot be 'none'")
        self.reduce = check_reduce(reduce)

    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        layer_name = resolve_target_layer(model, self.target_layer)
        result = self.expected(model, layer_name, inputs, targets, input_terms=True)
        size = tuple(inputs.shape[2:])
        cam = upsample(self.group_maps(result), size, self.upsample, model, inputs, targets)
        return reduce_channels(cam.unsqueeze(1) * result.input_terms, self.reduce)
