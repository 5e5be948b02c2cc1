"""The skeleton shared by layer methods (CAMs): a map at the target layer, then upsampling.

`LayerExplainer` resolves the target layer and upsamples; `GradientCAM` builds the layer map from a
gradient source and a weighting rule (DESIGN.md: "a CAM method = a gradient source x a weighting rule").
"""

from __future__ import annotations

import abc
from typing import Any, Optional

import torch
from torch import Tensor, nn

from lit_xai.explainers.base import Explainer
from lit_xai.explainers.attributions import clean_pass
from lit_xai.explainers.cam.projections import first_principal_projection
from lit_xai.explainers.gradients import LayerGradients, plain_gradients
from lit_xai.explainers.layers import resolve_target_layer
from lit_xai.explainers.tokens import Reshape, check_reshape, reshape_override
from lit_xai.explainers.upsample import UpsampleMode, check_upsample, upsample


AUGMENT_FACTORS = (0.9, 1.0, 1.1)  # pytorch-grad-cam's test-time brightness factors


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
        augment: test-time augmentation (pytorch-grad-cam's `aug_smooth`): the map is computed on the 6
            views {x, flip(x)} x {0.9 x, x, 1.1 x} (flip: the last axis), each view's map min-max
            normalised per sample, m' = (m - min m) / (max m - min m) (0 for a constant map; pytorch-grad-cam
            normalises twice with a 1e-7 guard, which this equals to ~1e-7 relative), mapped back (flipped
            again) and averaged, so the result lies in [0, 1]. Targets None are the argmax of the unaugmented input.
        eigen_smooth: (gradient CAMs with a weighted-activation rule) the map is ReLU of the first principal
            component projection of the weighted activations T_k (w_k A_k, or g_k A_k element-wise) instead
            of ReLU(sum_k T_k) (pytorch-grad-cam's `eigen_smooth`; sign as `EigenCAM`'s).
    """

    augment: bool = False
    eigen_smooth: bool = False

    def __init__(
        self,
        target_layer: str | None = None,
        upsample: UpsampleMode = "bilinear",
        reshape: Optional[Reshape] = None,
        *,
        augment: bool = False,
        eigen_smooth: bool = False,
    ) -> None:
        self.target_layer = target_layer
        self.upsample = check_upsample(upsample)
        self.reshape = check_reshape(reshape)
        if eigen_smooth and not self.supports_eigen_smooth():
            raise ValueError(
                f"eigen_smooth needs a map that is a channel sum of weighted activations (GradCAM, GradCAMPlusPlus, "
                f"XGradCAM, HiResCAM, LayerCAM, GradCAMElementWise); {type(self).__name__} has none"
            )
        if augment:  # set on the instance only when on, so the repr of a plain CAM stays as it was
            self.augment = True
        if eigen_smooth:
            self.eigen_smooth = True

    def supports_eigen_smooth(self) -> bool:
        return False

    def __call__(self, model: nn.Module, inputs: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        with reshape_override(self.reshape):
            return super().__call__(model, inputs, *args, **kwargs)

    @abc.abstractmethod
    def layer_map(self, model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> Tensor:
        """The map `(B, *s)` at the target layer's resolution, >= 0."""

    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        if self.augment:
            return self.augmented(model, inputs, targets)
        return self.single_view(model, inputs, targets)

    def single_view(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        layer_name = resolve_target_layer(model, self.target_layer)
        cam = self.layer_map(model, layer_name, inputs, targets)
        return upsample(cam, tuple(inputs.shape[2:]), self.upsample, model, inputs, targets)

    def augmented(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        """The mean of the views' normalised maps (see `augment`); one view at a time, each a full batch."""
        if targets is None:
            _, targets = clean_pass(model, inputs, targets)
        total = None
        for flip in (False, True):
            for factor in AUGMENT_FACTORS:
                view = inputs * factor
                cam = self.single_view(model, view.flip(-1) if flip else view, targets)
                flat = cam.flatten(1)
                low = flat.amin(1).view(-1, *(1,) * (cam.ndim - 1))
                high = flat.amax(1).view(-1, *(1,) * (cam.ndim - 1))
                span = high - low
                cam = (cam - low) / torch.where(span > 0, span, torch.ones_like(span))
                cam = cam.flip(-1) if flip else cam
                total = cam if total is None else total + cam
        return total / (2 * len(AUGMENT_FACTORS))  # type: ignore[operator]


class GradientCAM(LayerExplainer):
    """A gradient source (`layer_gradients`) times a weighting rule (`weigh`)."""

    def layer_gradients(self, model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> LayerGradients:
        """The gradient source; the plain gradient at the input unless a subclass says otherwise."""
        return plain_gradients(model, layer_name, inputs, targets)

    @abc.abstractmethod
    def weigh(self, activations: Tensor, gradients: Tensor) -> Tensor:
        """The weighting rule: `(B, K, *s)` activations and gradients -> map `(B, *s)`, >= 0."""

    def weighted_activations(self, activations: Tensor, gradients: Tensor) -> Tensor | None:
        """`T (B, K, *s)` with map = ReLU(sum_k T_k), for `eigen_smooth`; None where the rule has no such form."""
        return None

    def supports_eigen_smooth(self) -> bool:
        return type(self).weighted_activations is not GradientCAM.weighted_activations

    def layer_map(self, model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> Tensor:
        source = self.layer_gradients(model, layer_name, inputs, targets)
        if self.eigen_smooth:
            weighted = self.weighted_activations(source.activations, source.gradients)
            return torch.relu(first_principal_projection(weighted))  # type: ignore[arg-type]
        return self.weigh(source.activations, source.gradients)
