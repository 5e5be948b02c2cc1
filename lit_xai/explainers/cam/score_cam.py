"""Score-CAM and Ablation-CAM: gradient-free CAMs whose channel weights come from extra forward passes."""

from __future__ import annotations

import abc
from typing import Optional

import torch
from torch import Tensor, nn

from lit_xai.chunking import check_internal_batch_size, pair_chunks
from lit_xai.explainers.cam.base import LayerExplainer
from lit_xai.explainers.cam.scoring import masked_target_scores
from lit_xai.explainers.cam.weighting import weighted_channel_sum
from lit_xai.explainers.gradients import forward_with_views
from lit_xai.explainers.layers import replaced_output
from lit_xai.explainers.tokens import Reshape, TokenView
from lit_xai.explainers.upsample import UpsampleMode
from lit_xai.targets import model_outputs, resolve_targets, select_scores


class ForwardWeightedCAM(LayerExplainer):
    """Base of CAMs whose channel weights come from extra forward passes without gradients:
    `L^c = ReLU(sum_k w_k A_k)` with `w` from `channel_weights`; those passes are batched by
    `internal_batch_size` (None: automatic, `lit_xai.chunking`) and keep no activations."""

    def __init__(
        self,
        target_layer: str | None = None,
        upsample: UpsampleMode = "bilinear",
        internal_batch_size: int | None = None,
        reshape: Optional[Reshape] = None,
        augment: bool = False,
    ) -> None:
        super().__init__(target_layer, upsample, reshape, augment=augment)
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    @abc.abstractmethod
    def channel_weights(
        self, model: nn.Module, layer_name: str, inputs: Tensor, outputs: Tensor, activations: Tensor, targets: Tensor | None,
        view: TokenView,
    ) -> Tensor:
        """`(B, K)` weights, given the unperturbed outputs and activations and how the layer's output maps to
        them (`view`), called without gradients."""

    def layer_map(self, model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> Tensor:
        with torch.no_grad():
            outputs, (activations,), (view,) = forward_with_views(model, [layer_name], inputs)
            activations = activations.to(inputs.dtype)  # float32 weighting also under autocast
            targets = resolve_targets(outputs, targets)
            weights = self.channel_weights(model, layer_name, inputs, outputs, activations, targets, view)
        return torch.relu(weighted_channel_sum(weights, activations))


class ScoreCAM(ForwardWeightedCAM):
    """Score-CAM (Wang et al., "Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural
    Networks", CVPR Workshops 2020).

        M_k = (up(A_k) - min) / (max - min + 1e-8)         (bilinear, align_corners=True, to input size)
        s_k = y^c(x * M_k)                                  (raw target logit of the masked input)
        w   = softmax_k(s),    L^c = ReLU(sum_k w_k A_k)

    The paper's baseline subtraction y^c(x_b) cancels in the softmax. As in pytorch-grad-cam the score is
    the logit and the softmax runs over channels. All B x K masked inputs go through the model without
    gradients in batches of `internal_batch_size`.
    """

    def channel_weights(
        self, model: nn.Module, layer_name: str, inputs: Tensor, outputs: Tensor, activations: Tensor, targets: Tensor | None,
        view: TokenView,
    ) -> Tensor:
        return torch.softmax(masked_target_scores(model, inputs, activations, targets, self.internal_batch_size), dim=1)


def ablated_scores(
    model: nn.Module,
    layer_name: str,
    inputs: Tensor,
    activations: Tensor,
    targets: Tensor | None,
    internal_batch_size: int | None,
    view: TokenView,
) -> Tensor:
    """`(B, K)`: target score of each sample with channel k of the layer's output set to zero.

    `activations` are the layer's output seen as `(B, K, *s)`; for transformer tokens (`view`) channel k
    is zeroed at the patch tokens and the class token is kept as it was (`view.to_output`)."""
    batch, channels = activations.shape[:2]
    scores = torch.empty(batch, channels, dtype=activations.dtype, device=activations.device)
    for sample, channel in pair_chunks(batch, channels, internal_batch_size, inputs):
        ablated = activations[sample].clone()
        ablated[torch.arange(len(sample), device=inputs.device), channel] = 0
        with replaced_output(model, layer_name, view.to_output(ablated, view.output[sample])):
            outputs = model_outputs(model, inputs[sample], sample)
        scores[sample, channel] = select_scores(outputs, None if targets is None else targets[sample]).to(scores.dtype)
    return scores


class AblationCAM(ForwardWeightedCAM):
    """Ablation-CAM (Desai & Ramaswamy, "Ablation-CAM: Visual Explanations for Deep Convolutional Network
    via Gradient-free Localization", WACV 2020).

        w_k = (y^c - y^c_k) / y^c,    L^c = ReLU(sum_k w_k A_k)

    y^c_k is the raw target score when channel k of the target layer's output is set to zero. (The
    paper ablates by zeroing; pytorch-grad-cam does the same when the layer's minimum activation is 0,
    as after a ReLU, and uses min - 1e7 otherwise.) On transformer tokens (`lit_xai.explainers.tokens`)
    channel k is zeroed at the patch tokens and the class token is kept; pytorch-grad-cam's
    `AblationLayerVit` writes min - 1e7 into every token, the class token included. The B x K ablated
    passes run without gradients in batches of `internal_batch_size`; the target layer is swapped for its
    ablated activations (so it is not recomputed), the layers before it are.
    """

    def channel_weights(
        self, model: nn.Module, layer_name: str, inputs: Tensor, outputs: Tensor, activations: Tensor, targets: Tensor | None,
        view: TokenView,
    ) -> Tensor:
        base = select_scores(outputs, targets).to(inputs.dtype).unsqueeze(1)
        return (base - ablated_scores(model, layer_name, inputs, activations, targets, self.internal_batch_size, view)) / base
