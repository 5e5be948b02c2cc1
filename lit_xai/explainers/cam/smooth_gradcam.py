"""Smooth Grad-CAM++: the Grad-CAM++ rule on gradients averaged over noisy copies of the input."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from lit_xai.checks import check_positive_int
from lit_xai.chunking import check_internal_batch_size, pair_chunks
from lit_xai.explainers.cam.base import LayerExplainer
from lit_xai.explainers.cam.weighting import gradcampp_weights, weighted_channel_sum
from lit_xai.explainers.gradients import forward_with_activations, gradients_of_scores
from lit_xai.explainers.seeding import per_sample_normal
from lit_xai.explainers.tokens import Reshape
from lit_xai.explainers.upsample import UpsampleMode
from lit_xai.targets import resolve_targets, select_scores


class SmoothGradCAMPlusPlus(LayerExplainer):
    """Smooth Grad-CAM++ (Omeiza et al., "Smooth Grad-CAM++: An Enhanced Inference Level Visualization
    Technique for Deep Convolutional Neural Network Models", arXiv 1908.01224, 2019).

    With g_s = dy^c/dA evaluated at x + e_s, e_s ~ N(0, sigma^2), s = 1..n (SmoothGrad's noise,
    sigma = noise_level * (max(x) - min(x)) per sample):

        D1 = mean_s g_s,   D2 = mean_s g_s^2,   D3 = mean_s g_s^3
        alpha_kij = D2_kij / (2 D2_kij + sum_ab A_kab(x) D3_kij + eps),   alpha = 0 where D2 = 0
        w_k = sum_ij alpha_kij ReLU(D1_kij),    L^c = ReLU(sum_k w_k A_k(x))

    A(x) and the targets come from the clean input. With `noise_level=0` it equals Grad-CAM++. The noise
    of a sample depends only on `seed` and the sample (same map on one process or many); the n x B noisy
    passes run in chunks of `internal_batch_size` (None: automatic, `lit_xai.chunking`).
    """

    def __init__(
        self,
        target_layer: str | None = None,
        upsample: UpsampleMode = "bilinear",
        samples: int = 8,
        noise_level: float = 0.15,
        eps: float = 1e-12,
        seed: int = 0,
        internal_batch_size: int | None = None,
        reshape: Optional[Reshape] = None,
        augment: bool = False,
    ) -> None:
        super().__init__(target_layer, upsample, reshape, augment=augment)
        check_positive_int(samples, "samples")
        if noise_level < 0:
            raise ValueError(f"noise_level must be >= 0, got {noise_level!r}")
        self.samples, self.noise_level, self.eps, self.seed = samples, noise_level, eps, seed
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    def layer_map(self, model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> Tensor:
        with torch.no_grad():
            outputs, activations = forward_with_activations(model, layer_name, inputs)
        activations = activations.to(inputs.dtype)  # float32 moments also under autocast
        targets = resolve_targets(outputs, targets)
        spread = (inputs.flatten(1).amax(1) - inputs.flatten(1).amin(1)) * self.noise_level
        noise = per_sample_normal(inputs, self.samples, self.seed) * spread.view(-1, *(1,) * inputs.ndim)
        moments = [torch.zeros_like(activations) for _ in range(3)]
        for sample, draw in pair_chunks(inputs.shape[0], self.samples, self.internal_batch_size, inputs):
            noisy = inputs[sample] + noise[sample, draw]
            noisy_outputs, noisy_activations = forward_with_activations(model, layer_name, noisy, samples=sample)
            scores = select_scores(noisy_outputs, None if targets is None else targets[sample])
            gradients = gradients_of_scores(scores, noisy_activations, layer_name)
            for power, moment in enumerate(moments, start=1):
                moment.index_add_(0, sample, gradients.to(inputs.dtype).pow(power))
        first, second, third = (moment / self.samples for moment in moments)
        weights = gradcampp_weights(activations, first, second, third, self.eps)
        return torch.relu(weighted_channel_sum(weights, activations))
