"""The skeleton shared by layer methods (CAMs): a map at the target layer, then upsampling.

`LayerExplainer` resolves the target layer and upsamples; `GradientCAM` builds the layer map from a
gradient source and a weighting rule (DESIGN.md: "a CAM method = a gradient source x a weighting rule").
"""

from __future__ import annotations

import abc
from typing import Any, Optional

from torch import Tensor, nn

from lit_xai.explainers.base import Explainer
from lit_xai.explainers.gradients import LayerGradients, plain_gradients
from lit_xai.explainers.layers import resolve_target_layer
from lit_xai.explainers.tokens import Reshape, check_reshape, reshape_override
from lit_xai.explainers.upsample import UpsampleMode, check_upsample, upsample


class LayerExplainer(Explainer):
    """Base of methods that explain through one layer's activations.

    Args:
        target_layer: dotted path for `model.get_submodule` ("layer4", "features.29"); `None` uses the
            model's `default_target_layer` attribute, else its last Conv1d/Conv2d layer.
        upsample: "bilinear" (default; linear for time series), "nearest", "none" (map at layer
            resolution), a callable `(maps, size) -> maps`, or a `ModelUpsampler` (called with the model,
            inputs and targets too, e.g. `MassPreservingUpsampler`).
        reshape: None (a transformer layer's tokens are rearranged to `(B, D, h, w)` by their shape:
            `lit_xai.explainers.tokens`) or a callable `output -> (B, D, h, w)` that overrides the guess.
    """

    def __init__(self, target_layer: str | None = None, upsample: UpsampleMode = "bilinear", reshape: Optional[Reshape] = None) -> None:
        self.target_layer = target_layer
        self.upsample = check_upsample(upsample)
        self.reshape = check_reshape(reshape)

    def __call__(self, model: nn.Module, inputs: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        with reshape_override(self.reshape):
            return super().__call__(model, inputs, *args, **kwargs)

    @abc.abstractmethod
    def layer_map(self, model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> Tensor:
        """The map `(B, *s)` at the target layer's resolution, >= 0."""

    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        layer_name = resolve_target_layer(model, self.target_layer)
        cam = self.layer_map(model, layer_name, inputs, targets)
        return upsample(cam, tuple(inputs.shape[2:]), self.upsample, model, inputs, targets)


class GradientCAM(LayerExplainer):
    """A gradient source (`layer_gradients`) times a weighting rule (`weigh`)."""

    def layer_gradients(self, model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> LayerGradients:
        """The gradient source; the plain gradient at the input unless a subclass says otherwise."""
        return plain_gradients(model, layer_name, inputs, targets)

    @abc.abstractmethod
    def weigh(self, activations: Tensor, gradients: Tensor) -> Tensor:
        """The weighting rule: `(B, K, *s)` activations and gradients -> map `(B, *s)`, >= 0."""

    def layer_map(self, model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> Tensor:
        source = self.layer_gradients(model, layer_name, inputs, targets)
        return self.weigh(source.activations, source.gradients)
