"""FEM: channels weighted by how often they fire far above their own mean."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lit_xai.explainers.cam.base import LayerExplainer
from lit_xai.explainers.cam.eigen_cam import layer_activations
from lit_xai.explainers.cam.weighting import weighted_channel_sum
from lit_xai.explainers.upsample import UpsampleMode


class FEM(LayerExplainer):
    """FEM, the Feature Explanation Method (Fuad et al., "Features understanding in 3D CNNs for actions
    recognition in video", IPTA 2020): a channel's weight is the fraction of its positions whose
    activation exceeds the channel's mean by `k` standard deviations (the k-sigma rule),

        w_k = mean_ij [A_kij > mu_k + k sigma_k],    L = ReLU(sum_k w_k A_k)

    with mu_k, sigma_k the mean and population standard deviation of A_k over its positions (as
    pytorch-grad-cam, k = 2). Class-agnostic: one forward pass, no gradients; the target does not change
    the map (targets are only checked).
    """

    def __init__(self, target_layer: str | None = None, upsample: UpsampleMode = "bilinear", k: float = 2.0, augment: bool = False) -> None:
        super().__init__(target_layer, upsample, augment=augment)
        if isinstance(k, bool) or not isinstance(k, (int, float)):
            raise ValueError(f"k must be a number of standard deviations (a float), got {k!r}")
        self.k = float(k)

    def layer_map(self, model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> Tensor:
        activations = layer_activations(model, layer_name, inputs, targets)
        flat = activations.flatten(2)
        threshold = flat.mean(dim=2, keepdim=True) + self.k * flat.std(dim=2, correction=0, keepdim=True)
        weights = (flat > threshold).to(flat.dtype).mean(dim=2)
        return torch.relu(weighted_channel_sum(weights, activations))
