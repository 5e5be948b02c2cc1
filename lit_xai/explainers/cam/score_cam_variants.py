"""SS-CAM and IS-CAM: Score-CAM whose channel scores are averaged over noisy or scaled masks.

Both follow torchcam's conventions (the reference for these methods): each channel is min-max
normalised at the layer's resolution, `(A_k - min) / (max - min + 1e-8)`, then upsampled to the input
(bilinear, or linear for series, align_corners=False) to a mask M_k; the weights are
`softmax_k(mean_n y^c(x * M_kn))` (the baseline score torchcam subtracts cancels in the softmax) and the
map `ReLU(sum_k w_k A_k)` of the raw activations.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from lit_xai.checks import check_positive_int
from lit_xai.chunking import pair_chunks
from lit_xai.explainers.cam.score_cam import ForwardWeightedCAM
from lit_xai.explainers.cam.scoring import upsampled_masks
from lit_xai.explainers.seeding import pair_generator, sample_seeds
from lit_xai.explainers.tokens import TokenView
from lit_xai.explainers.upsample import UpsampleMode
from lit_xai.targets import model_outputs, select_scores

MaskTransform = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
"""`(masks (n, *size), sample, draw, channel) -> masks`: what a draw does to a batch of masks."""


def layer_normalised(activations: Tensor, eps: float = 1e-8) -> Tensor:
    """Each channel of `(B, K, *s)` min-max normalised over its positions, at the layer's resolution."""
    flat = activations.flatten(2)
    low, high = flat.amin(dim=2, keepdim=True), flat.amax(dim=2, keepdim=True)
    return ((flat - low) / (high - low + eps)).view_as(activations)


def mean_masked_scores(
    model: nn.Module,
    inputs: Tensor,
    normalised: Tensor,
    targets: Tensor | None,
    draws: int,
    transform: MaskTransform,
    internal_batch_size: int | None,
) -> Tensor:
    """`(B, K)`: mean over `draws` of the target score of `inputs[b] * transform(M_bk)`.

    The B x draws x K masked inputs go through the model in inference mode (no autograd bookkeeping) in
    chunks (`lit_xai.chunking`); masks are built per chunk, so memory does not grow with K or draws."""
    batch, channels = normalised.shape[:2]
    size = tuple(inputs.shape[2:])
    sums = torch.zeros(batch * channels, dtype=inputs.dtype, device=inputs.device)
    with torch.inference_mode():
        for sample, pair in pair_chunks(batch, draws * channels, internal_batch_size, inputs):
            draw, channel = pair // channels, pair % channels
            masks = transform(upsampled_masks(normalised[sample, channel], size), sample, draw, channel)
            outputs = model_outputs(model, inputs[sample] * masks.unsqueeze(1), sample)
            scores = select_scores(outputs, None if targets is None else targets[sample])
            sums.index_add_(0, sample * channels + channel, scores.to(sums.dtype))
    return (sums / draws).view(batch, channels)


def mask_noise(seed: int, draw: int, channel: int, size: tuple[int, ...], std: float) -> Tensor:
    """N(0, std^2) noise `size` for one (sample, draw, channel): seeded by the sample's seed, the draw and the channel."""
    return torch.randn(size, generator=pair_generator(seed, draw, stream=channel)) * std


class SSCAM(ForwardWeightedCAM):
    """SS-CAM (Wang et al., "SS-CAM: Smoothed Score-CAM for Sharper Visual Feature Localization",
    arXiv 2006.14255, 2020), torchcam's form: noise is added to each upsampled mask,

        w = softmax_k( (1/N) sum_n y^c(x * (M_k + delta_kn)) ),   delta_kn ~ N(0, std^2) per position,
        L^c = ReLU(sum_k w_k A_k)

    with N = `samples` (35) and std 2.0 as in torchcam. The noise of (sample, draw n, channel k) is drawn
    from a generator seeded by the sample's content and `seed`, so a sample's map does not depend on its
    batch. B x N x K masked passes, without gradients, in batches of `internal_batch_size`.
    """

    def __init__(
        self,
        target_layer: str | None = None,
        upsample: UpsampleMode = "bilinear",
        internal_batch_size: int | None = None,
        samples: int = 35,
        std: float = 2.0,
        seed: int = 0,
        augment: bool = False,
    ) -> None:
        super().__init__(target_layer, upsample, internal_batch_size, augment=augment)
        self.samples = check_positive_int(samples, "samples")
        if not std >= 0:
            raise ValueError(f"std must be a float >= 0 (the noise's standard deviation on masks in [0, 1]), got {std!r}")
        self.std, self.seed = float(std), int(seed)

    def channel_weights(
        self, model: nn.Module, layer_name: str, inputs: Tensor, outputs: Tensor, activations: Tensor, targets: Tensor | None,
        view: TokenView,
    ) -> Tensor:
        seeds = sample_seeds(inputs, self.seed)

        def noisy(masks: Tensor, sample: Tensor, draw: Tensor, channel: Tensor) -> Tensor:
            noise = [mask_noise(seeds[b], n, k, tuple(masks.shape[1:]), self.std) for b, n, k in zip(sample.tolist(), draw.tolist(), channel.tolist())]
            return masks + torch.stack(noise).to(masks)

        scores = mean_masked_scores(model, inputs, layer_normalised(activations), targets, self.samples, noisy, self.internal_batch_size)
        return torch.softmax(scores, dim=1)


def integration_coefficients(samples: int) -> Tensor:
    """IS-CAM's mask scales c_n = sum_{j=1}^{n} j / N, n = 1..N (torchcam's running sum)."""
    return torch.cumsum(torch.arange(1, samples + 1, dtype=torch.float64) / samples, dim=0)


class ISCAM(ForwardWeightedCAM):
    """IS-CAM (Naidu et al., "IS-CAM: Integrated Score-CAM for axiomatic-based explanations",
    arXiv 2010.03023, 2020), torchcam's form: the masked scores are averaged over N scaled masks,

        w = softmax_k( (1/N) sum_{n=1}^{N} y^c(x * c_n M_k) ),   c_n = sum_{j=1}^{n} j / N,
        L^c = ReLU(sum_k w_k A_k)

    (the scales are torchcam's running sum, 1/N, 3/N, 6/N, ..., (N + 1)/2). N = `samples` (10, as in
    torchcam). B x N x K masked passes, without gradients, in batches of `internal_batch_size`.
    """

    def __init__(
        self,
        target_layer: str | None = None,
        upsample: UpsampleMode = "bilinear",
        internal_batch_size: int | None = None,
        samples: int = 10,
        augment: bool = False,
    ) -> None:
        super().__init__(target_layer, upsample, internal_batch_size, augment=augment)
        self.samples = check_positive_int(samples, "samples")

    def channel_weights(
        self, model: nn.Module, layer_name: str, inputs: Tensor, outputs: Tensor, activations: Tensor, targets: Tensor | None,
        view: TokenView,
    ) -> Tensor:
        scales = integration_coefficients(self.samples).to(device=inputs.device, dtype=inputs.dtype)

        def scaled(masks: Tensor, sample: Tensor, draw: Tensor, channel: Tensor) -> Tensor:
            return masks * scales[draw].view((-1,) + (1,) * (masks.ndim - 1))

        scores = mean_masked_scores(model, inputs, layer_normalised(activations), targets, self.samples, scaled, self.internal_batch_size)
        return torch.softmax(scores, dim=1)
