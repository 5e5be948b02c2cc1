"""Guided backpropagation and Guided Grad-CAM: input-space maps `(B, C, *spatial)`, reduced over channels.

Guided backpropagation changes the backward pass of every `nn.ReLU` module for the duration of one
forward pass: a temporary forward hook routes the ReLU's output through `GuidedReLUGradient`, an identity
in the forward pass whose backward pass lets only positive gradients through, and only where the ReLU
was active. Functional calls (`F.relu`, `torch.relu`, `Tensor.relu` inside `forward`) are ordinary
tensor operations, not modules: they keep their plain gradient, as in captum. Other activations
(`ReLU6`, `LeakyReLU`, ...) are not guided either.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Optional

import torch
from torch import Tensor, nn

from lit_xai.explainers.attributions import InputSpaceExplainer, check_reduce, input_gradients, reduce_channels
from lit_xai.explainers.cam.base import LayerExplainer
from lit_xai.explainers.cam.gradcam import GradCAM
from lit_xai.explainers.layers import get_layer, resolve_target_layer
from lit_xai.explainers.tokens import Reshape
from lit_xai.explainers.upsample import UpsampleMode


class GuidedReLUGradient(torch.autograd.Function):
    """Identity on a ReLU's output `y`; backward: `grad_in = ReLU(grad_out) * 1[y > 0]`.

    Since `y > 0` exactly where the ReLU's input `x > 0`, chained with the ReLU's own backward pass
    (`* 1[x > 0]`) this is the guided rule `ReLU(grad_out) * 1[x > 0]`. The forward pass returns a copy
    and keeps only a boolean mask, so later in-place operations on the ReLU's output (or an in-place
    ReLU, `ReLU(inplace=True)`) cannot invalidate what the backward pass needs.
    """

    @staticmethod
    def forward(ctx: Any, output: Tensor) -> Tensor:
        ctx.save_for_backward(output > 0)
        return output.clone()

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        (active,) = ctx.saved_tensors
        return grad_output.clamp(min=0) * active


def _guide_relu_output(module: nn.Module, args: object, output: object) -> object:
    """Forward hook of an `nn.ReLU`: its output, routed through `GuidedReLUGradient`."""
    if not isinstance(output, Tensor):
        return None
    return GuidedReLUGradient.apply(output)


@contextmanager
def guided_relus(model: nn.Module) -> Iterator[None]:
    """Inside the block, every `nn.ReLU` module of `model` (subclasses included) backpropagates the guided
    rule. The hooks only change the graphs built inside the block; they are removed on exit, also when the
    block raises."""
    handles = []
    try:
        for module in model.modules():
            if isinstance(module, nn.ReLU):
                handles.append(module.register_forward_hook(_guide_relu_output))
        yield
    finally:
        for handle in handles:
            handle.remove()


def guided_backprop_gradients(model: nn.Module, inputs: Tensor, targets: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """Guided gradient `(B, C, *spatial)` of each sample's target score w.r.t. `inputs`, and the targets used.

    One forward pass with guided ReLUs, one backward pass to a fresh leaf copy of the inputs only
    (`input_space.input_gradients`): parameter `.grad` is never touched. Samples do not interact in eval mode, so the gradient of the summed scores is the
    per-sample gradient.
    """
    with guided_relus(model):
        gradients, _, targets = input_gradients(model, inputs, targets)
    return gradients.detach(), targets


class GuidedBackprop(InputSpaceExplainer):
    """Guided backpropagation (Springenberg et al., "Striving for Simplicity: The All Convolutional Net",
    ICLR workshop 2015).

    The gradient of the target score y^c (the raw logit; a one-output regressor's prediction) with
    respect to the input, where the backward pass of every ReLU, y = ReLU(x), is replaced by

        dL/dx = ReLU(dL/dy) * 1[x > 0]

    (the plain gradient is `dL/dy * 1[x > 0]`; deconvnet would be `ReLU(dL/dy)`). The result
    `(B, C, *spatial)` is reduced over channels by `reduce`: "none" keeps `(B, C, *spatial)`, "sum",
    "abs_sum" (default) and "max_abs" give `(B, *spatial)`. Works for images `(B, C, H, W)` and time series
    `(B, C, T)`.

    Only `nn.ReLU` modules are guided; ReLUs applied functionally inside `forward` (`F.relu`,
    `torch.relu`) keep their plain gradient, as in captum. Modules reused several times in one forward
    pass (torchvision's ResNet blocks) are guided at every use, and in-place ReLUs are supported.
    """

    def attributions(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        gradients, _ = guided_backprop_gradients(model, inputs, targets)
        return gradients


class GuidedGradCAM(LayerExplainer):
    """Guided Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
    Gradient-based Localization", ICCV 2017): guided backpropagation, channel by channel, times the
    Grad-CAM map brought to input resolution,

        G^c        = guided gradient of y^c w.r.t. x            (B, C, *spatial), see `GuidedBackprop`
        L^c        = ReLU(sum_k mean_ij(dy^c/dA^k) A^k)         Grad-CAM at `target_layer`, see `GradCAM`
        M^c_{c'}   = G^c_{c'} * upsample(L^c)                  then reduced over channels c' by `reduce`

    The targets (argmax classes when None) are resolved once, from the guided pass, and used for both
    parts. `upsample` is "bilinear" (default), "nearest" (captum's default for this method) or a callable;
    "none" is refused because the product needs the map at input resolution. `reduce` as in
    `GuidedBackprop` ("none" keeps the channels).
    """

    def __init__(
        self,
        target_layer: str | None = None,
        upsample: UpsampleMode = "bilinear",
        reduce: str = "abs_sum",
        reshape: Optional[Reshape] = None,
    ) -> None:
        super().__init__(target_layer, upsample, reshape)
        if isinstance(self.upsample, str) and self.upsample == "none":
            raise ValueError(
                "GuidedGradCAM multiplies the Grad-CAM map with an input-resolution gradient, so upsample='none' "
                "is not possible; use 'bilinear', 'nearest' or a callable (maps, size) -> maps"
            )
        self.reduce = check_reduce(reduce)

    def layer_map(self, model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> Tensor:
        """The Grad-CAM map at the target layer's resolution (GradCAM's own computation)."""
        return GradCAM(layer_name, upsample="none").layer_map(model, layer_name, inputs, targets)

    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        get_layer(model, resolve_target_layer(model, self.target_layer))  # a bad layer name fails before any pass
        guided, targets = guided_backprop_gradients(model, inputs, targets)
        cam = super().explain(model, inputs.detach(), targets)  # Grad-CAM, upsampled by LayerExplainer
        size = tuple(inputs.shape[2:])
        if tuple(cam.shape) != (inputs.shape[0], *size):
            raise ValueError(
                f"the upsampled Grad-CAM map has shape {tuple(cam.shape)}, expected {(inputs.shape[0], *size)} "
                "(the inputs' batch and spatial size); check the upsample callable"
            )
        return reduce_channels(guided * cam.unsqueeze(1), self.reduce)
