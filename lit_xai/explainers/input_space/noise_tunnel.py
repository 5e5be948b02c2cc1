"""NoiseTunnel: any lit-xai explainer averaged over Gaussian-noised copies of the input (captum's `NoiseTunnel`)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from lit_xai.checks import check_positive_int
from lit_xai.chunking import check_internal_batch_size, pair_chunks
from lit_xai.explainers.attributions import clean_pass
from lit_xai.explainers.base import Explainer
from lit_xai.explainers.input_space.noise_scale import input_range
from lit_xai.explainers.path_baselines import pair_normal
from lit_xai.explainers.seeding import sample_seeds
from lit_xai.targets import Target, current_call, to_channels_first, to_user_layout

MODES = ("smoothgrad", "smoothgrad_sq", "vargrad")


class NoiseTunnel(Explainer):
    """NoiseTunnel (captum's `NoiseTunnel`; Smilkov et al., "SmoothGrad: removing noise by adding noise",
    2017; Adebayo et al., "Local Explanation Methods for Deep Neural Networks Lack Sensitivity to Parameter
    Values", 2018, for VarGrad) around any lit-xai explainer E:

        smoothgrad      (1 / S) sum_s E(x + sigma e_s)
        smoothgrad_sq   (1 / S) sum_s E(x + sigma e_s)^2
        vargrad         (1 / S) sum_s E(x + sigma e_s)^2 - ((1 / S) sum_s E(x + sigma e_s))^2

    e_s ~ N(0, I) drawn per sample (`seed`), sigma = noise_std * (max x - min x) per sample (SmoothGrad's
    convention, as lit-xai's SmoothGrad family; captum's `stdevs` is sigma itself). Every noisy copy is
    explained for the clean input's target (its argmax when targets are None). E's own `reduce` applies to
    each copy before the statistic (captum's order). The B x S noisy copies go to E in chunks of
    `internal_batch_size`, with the call's forward_args, layout, output and score.
    """

    def __init__(
        self,
        explainer: Explainer,
        samples: int = 8,
        noise_std: float = 0.15,
        mode: str = "smoothgrad",
        seed: int = 0,
        internal_batch_size: Optional[int] = None,
    ) -> None:
        if not isinstance(explainer, Explainer):
            raise ValueError(f"explainer must be a lit_xai Explainer (e.g. Saliency(), DeepLift()), got {type(explainer).__name__}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if isinstance(noise_std, bool) or not isinstance(noise_std, (int, float)) or noise_std < 0:
            raise ValueError(f"noise_std must be a number >= 0 (a fraction of each input's range), got {noise_std!r}")
        self.explainer, self.samples, self.noise_std, self.mode = explainer, check_positive_int(samples, "samples"), float(noise_std), mode
        self.seed = seed
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    def noise(self, inputs: Tensor, sample: Tensor, draw: Tensor, seeds: Optional[list[int]] = None) -> Tensor:
        """sigma_b * e for the (sample, draw) pairs, inputs channel-first (as the explainer sees them)."""
        seeds = sample_seeds(inputs, self.seed) if seeds is None else seeds
        sigma = self.noise_std * input_range(inputs[sample])
        return sigma.view(-1, *(1,) * (inputs.ndim - 1)) * pair_normal(inputs, sample, draw, seeds, stream=7)

    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | Target | None) -> Tensor:
        if targets is None:
            _, targets = clean_pass(model, inputs, targets)
        call = current_call()
        seeds = sample_seeds(inputs, self.seed)
        total = total_sq = None
        for sample, draw in pair_chunks(inputs.shape[0], self.samples, self.internal_batch_size, inputs):
            noisy = inputs[sample] + self.noise(inputs, sample, draw, seeds)
            args = call.args_for(noisy.shape[0], sample)
            maps = self.explainer(
                model, to_user_layout(noisy, call.channel_dim), None if targets is None else targets[sample], args or None,
                channel_dim=call.channel_dim, output=call.output, score=call.score,
            )
            if maps.ndim == inputs.ndim:
                maps = to_channels_first(maps, call.channel_dim)
            if total is None:
                total = maps.new_zeros((inputs.shape[0], *maps.shape[1:]))
                total_sq = torch.zeros_like(total)
            total.index_add_(0, sample, maps)
            total_sq.index_add_(0, sample, maps * maps)  # type: ignore[union-attr]
        mean, mean_sq = total / self.samples, total_sq / self.samples  # type: ignore[operator]
        if self.mode == "smoothgrad":
            return mean
        if self.mode == "smoothgrad_sq":
            return mean_sq
        return mean_sq - mean * mean
