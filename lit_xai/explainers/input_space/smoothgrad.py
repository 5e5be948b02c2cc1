"""SmoothGrad, SmoothGrad-Squared and VarGrad: statistics of the input gradient under Gaussian noise."""

from __future__ import annotations

import abc
from typing import Optional, Union

import torch
from torch import Tensor, nn

from lit_xai.checks import check_positive_int
from lit_xai.chunking import check_internal_batch_size
from lit_xai.explainers.attributions import InputSpaceExplainer, chunked_gradients, clean_pass
from lit_xai.explainers.input_space.noise_scale import check_mode, input_range, optimal_noise_scale, perturbed
from lit_xai.explainers.seeding import sample_seeds

NoiseStd = Union[float, str]


def check_noise_std(noise_std: NoiseStd, mode: str) -> NoiseStd:
    """A number >= 0 (<= 1 for the convex combination), or "auto" (convex only)."""
    if isinstance(noise_std, str):
        if noise_std != "auto":
            raise ValueError(f"noise_std must be a number or 'auto', got {noise_std!r}")
        if mode != "convex":
            raise ValueError(
                "noise_std='auto' is the convex scale at which the predictive entropy plateaus (optimal_noise_scale); "
                "use it with mode='convex', or give the additive noise_std as a number"
            )
        return noise_std
    if isinstance(noise_std, bool) or not isinstance(noise_std, (int, float)) or noise_std < 0:
        raise ValueError(f"noise_std must be a number >= 0 or 'auto', got {noise_std!r}")
    if mode == "convex" and noise_std > 1:
        raise ValueError(f"the convex combination (1 - s) x + s e needs noise_std s in [0, 1], got {noise_std!r}")
    return float(noise_std)


class NoisyGradients(InputSpaceExplainer):
    """Base of the SmoothGrad family: the first two moments of g = d y^c / d x~ over noisy copies x~ of x.

        additive (default)   x~ = x + sigma e,   sigma = noise_std * (max x - min x)  (SmoothGrad's convention)
        convex               x~ = (1 - s) x + s e,   s = noise_std                   (the spectral paper's)

    with e ~ N(0, I), `samples` draws per sample seeded per sample (`seed`), the `B * samples` noisy
    inputs going through the model in chunks of `internal_batch_size`. The gradient is taken with respect to
    the noisy input, for the target of the clean input (its argmax when targets are None). With
    `noise_std="auto"` (convex only) s is `optimal_noise_scale(model, x)` for each sample. Subclasses
    choose the statistic; `reduce` then acts over channels.
    """

    def __init__(
        self,
        noise_std: NoiseStd = 0.15,
        samples: int = 32,
        mode: str = "additive",
        seed: int = 0,
        internal_batch_size: Optional[int] = None,
        reduce: str = "abs_sum",
    ) -> None:
        super().__init__(reduce)
        self.mode = check_mode(mode)
        self.noise_std = check_noise_std(noise_std, self.mode)
        self.samples = check_positive_int(samples, "samples")
        self.seed = seed
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    def scales(self, model: nn.Module, inputs: Tensor) -> Tensor:
        """The noise scale of each sample `(B,)`: sigma (additive) or s (convex)."""
        if self.noise_std == "auto":
            return optimal_noise_scale(model, inputs, seed=self.seed, internal_batch_size=self.internal_batch_size).to(inputs.dtype)  # type: ignore[union-attr]
        if self.mode == "additive":
            return self.noise_std * input_range(inputs)  # type: ignore[operator]
        return inputs.new_full((inputs.shape[0],), self.noise_std)  # type: ignore[arg-type]

    def moments(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> tuple[Tensor, Tensor]:
        """`(mean_d g_d, mean_d g_d^2)`, each `(B, C, *spatial)`."""
        if targets is None:
            _, targets = clean_pass(model, inputs, targets)
        scale = self.scales(model, inputs)
        seeds = sample_seeds(inputs, self.seed)
        first, second = torch.zeros_like(inputs), torch.zeros_like(inputs)

        def noisy(sample: Tensor, draw: Tensor) -> Tensor:
            return perturbed(inputs, sample, draw, scale[sample], self.mode, seeds)

        for sample, _, _, gradients in chunked_gradients(model, inputs, targets, self.samples, noisy, self.internal_batch_size):
            first.index_add_(0, sample, gradients)
            second.index_add_(0, sample, gradients * gradients)
        return first / self.samples, second / self.samples

    @abc.abstractmethod
    def statistic(self, mean: Tensor, mean_square: Tensor) -> Tensor:
        """The attribution from the two moments."""

    def attributions(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        return self.statistic(*self.moments(model, inputs, targets))


class SmoothGrad(NoisyGradients):
    """SmoothGrad (Smilkov et al., "SmoothGrad: removing noise by adding noise", ICML workshop 2017):
    phi = E_e[d y^c / d x~],  x~ = x + sigma e (or the convex combination); see `NoisyGradients`."""

    def statistic(self, mean: Tensor, mean_square: Tensor) -> Tensor:
        return mean


class SmoothGradSquared(NoisyGradients):
    """SmoothGrad-Squared (Hooker et al., "A Benchmark for Interpretability Methods in Deep Neural Networks",
    NeurIPS 2019): phi = E_e[(d y^c / d x~)^2]; the statistic the spectral paper recommends (its SG2)."""

    def statistic(self, mean: Tensor, mean_square: Tensor) -> Tensor:
        return mean_square


class VarGrad(NoisyGradients):
    """VarGrad (Adebayo et al., "Local Explanation Methods for Deep Neural Networks Lack Sensitivity to
    Parameter Values", ICLR workshop 2018): phi = Var_e[d y^c / d x~] = E[g^2] - E[g]^2 (the population
    variance over the draws, as captum's NoiseTunnel; clamped at 0 against round-off)."""

    def statistic(self, mean: Tensor, mean_square: Tensor) -> Tensor:
        return (mean_square - mean * mean).clamp_min(0)
