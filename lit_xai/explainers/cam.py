"""The CAM skeleton: a gradient source, a weighting rule, then upsampling to input resolution."""

from __future__ import annotations

import abc

from torch import Tensor, nn

from lit_xai.explainers.base import Explainer
from lit_xai.explainers.gradients import LayerGradients, plain_gradients
from lit_xai.explainers.layers import resolve_target_layer
from lit_xai.explainers.upsample import UpsampleMode, check_upsample, upsample


class LayerCAMExplainer(Explainer):
    """Base of gradient CAM methods.

    Args:
        target_layer: dotted path for `model.get_submodule` ("layer4", "features.29"); `None` uses the
            model's `default_target_layer` attribute, else its last Conv1d/Conv2d layer.
        upsample: "bilinear" (default; linear for time series), "nearest", "none" (map at layer
            resolution) or a callable `(maps, size) -> maps`.
    """

    def __init__(self, target_layer: str | None = None, upsample: UpsampleMode = "bilinear") -> None:
        self.target_layer = target_layer
        self.upsample = check_upsample(upsample)

    def layer_gradients(self, model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> LayerGradients:
        """The gradient source; the plain gradient at the input unless a subclass says otherwise."""
        return plain_gradients(model, layer_name, inputs, targets)

    @abc.abstractmethod
    def weigh(self, activations: Tensor, gradients: Tensor) -> Tensor:
        """The weighting rule: `(B, K, *s)` activations and gradients -> map `(B, *s)`, >= 0."""

    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        layer_name = resolve_target_layer(model, self.target_layer)
        source = self.layer_gradients(model, layer_name, inputs, targets)
        cam = self.weigh(source.activations, source.gradients)
        return upsample(cam, tuple(inputs.shape[2:]), self.upsample)
