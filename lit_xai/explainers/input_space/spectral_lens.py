"""SpectralLens and ArgLens (Mehrpanah et al., "On Spectral Properties of Gradient-based Explanation
Methods", ECCV 2024, section 4.2): SmoothGrad-Squared over a grid of perturbation scales.

A gradient explainer under Gaussian perturbation of scale s is a band-pass filter on the classifier's
spectrum (section 3.3.2), so SmoothGrad-Squared at one scale shows one frequency band. SpectralLens (SL2)
aggregates the bands with an explanation prior; ArgLens (AL) gives, per position, the scale at which
SmoothGrad-Squared peaks (a low AL: the attribution comes from high-frequency, noise-sensitive parts of
the decision boundary).

Perturbation: the paper's convex combination x~ = (1 - s) x + s e, e ~ N(0, I) (appendix E.2;
`lit_xai.explainers.input_space.noise_scale`), gradients taken with respect to x~. The same noise draws e_1..e_N serve
every scale (common random numbers): the curves over s are smooth in s, so their maxima (ArgLens) do not
jump between grid points with the Monte-Carlo noise, and SmoothGradSquared(mode="convex", noise_std=s,
samples=N, seed) equals the per-scale term exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Optional, Union

import torch
from torch import Tensor, nn

from lit_xai.checks import check_positive_int
from lit_xai.chunking import check_internal_batch_size, pair_chunks
from lit_xai.explainers.attributions import InputSpaceExplainer, check_reduce, clean_pass, input_gradients, reduce_channels
from lit_xai.explainers.base import Explainer
from lit_xai.explainers.input_space.noise_scale import check_scales, optimal_noise_scale, perturbed
from lit_xai.explainers.seeding import sample_seeds

DEFAULT_SCALES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
PRIORS = ("uniform", "beta")
KERNEL_NORM_POWER = 2.5


def check_cutoff(noise_std: Union[float, str]) -> Union[float, str]:
    if noise_std == "auto":
        return noise_std
    if isinstance(noise_std, bool) or not isinstance(noise_std, (int, float)) or not 0 < noise_std <= 1:
        raise ValueError(f"noise_std (the largest convex scale) must be a number in (0, 1] or 'auto', got {noise_std!r}")
    return float(noise_std)


class ScaleGrid:
    """What SpectralLens and ArgLens share: the grid of scales and SmoothGrad-Squared's terms on it.

    Scales: s_k = c * u_k, with u = `scales` (fractions in (0, 1]) and the cutoff c = `noise_std` (a
    number in (0, 1], default 0.5, the largest scale of the authors' grid) or "auto" (per sample, the
    scale at which the predictive entropy plateaus, `optimal_noise_scale`; appendix E.1 expresses the
    scales relative to that cutoff).
    """

    def __init__(self, scales: Sequence[float], samples: int, noise_std: Union[float, str], seed: int, internal_batch_size: Optional[int]) -> None:
        self.scales = tuple(float(u) for u in check_scales(scales))
        self.samples = check_positive_int(samples, "samples")
        self.noise_std = check_cutoff(noise_std)
        self.seed = seed
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    def grid(self, model: nn.Module, inputs: Tensor) -> Tensor:
        """`(B, K)` absolute scales s_{b,k} = c_b u_k."""
        fractions = torch.tensor(self.scales, dtype=inputs.dtype, device=inputs.device)
        if self.noise_std == "auto":
            cutoff = optimal_noise_scale(model, inputs, seed=self.seed, internal_batch_size=self.internal_batch_size).to(inputs.dtype)
        else:
            cutoff = inputs.new_full((inputs.shape[0],), self.noise_std)  # type: ignore[arg-type]
        return cutoff.unsqueeze(1) * fractions

    def squared_gradients(self, model: nn.Module, inputs: Tensor, targets: Tensor | None, grid: Tensor) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """Chunks of `(sample, scale index k, g^2)` over the `B x K x samples` noisy inputs, where
        g = d y^c / d x~ at x~ = (1 - s_{b,k}) x_b + s_{b,k} e_{b,d}."""
        if targets is None:
            _, targets = clean_pass(model, inputs, targets)
        seeds = sample_seeds(inputs, self.seed)
        count = len(self.scales)
        for sample, repeat in pair_chunks(inputs.shape[0], count * self.samples, self.internal_batch_size, inputs):
            scale_index, draw = repeat // self.samples, repeat % self.samples
            noisy = perturbed(inputs, sample, draw, grid[sample, scale_index], "convex", seeds)
            gradients, _, _ = input_gradients(model, noisy, None if targets is None else targets[sample], sample)
            yield sample, scale_index, gradients * gradients


class ScaleGridMixin:
    """The `ScaleGrid` of the explainer's current hyper-parameters."""

    scales: tuple[float, ...]
    samples: int
    noise_std: Union[float, str]
    seed: int
    internal_batch_size: Optional[int]

    @property
    def _grid(self) -> ScaleGrid:
        return ScaleGrid(self.scales, self.samples, self.noise_std, self.seed, self.internal_batch_size)


class SpectralLens(ScaleGridMixin, InputSpaceExplainer):
    """SpectralLens SL2 (Mehrpanah et al. 2024, Definition 3): the prior-weighted aggregate of
    SmoothGrad-Squared over the perturbation scales s_k (see `ScaleGrid`),

        SL2(x) = sum_k  pi(u_k) * s_k^(5/2) * SG2(x; s_k),     SG2(x; s) = E_e[(d y^c / d x~)^2]

    Weighting of each scale (from the authors' code, branch `berzelius`, `source/data_manager.py`:
    `unif_mul_freq`, `beta_mul_freq`): every term is multiplied by s^(5/2). That factor is the inverse L2 norm
    of the Gaussian band-pass kernel w^2 exp(-s^2 w^2) (int w^4 exp(-2 s^2 w^2) dw is proportional to
    s^-5, section 4.1, eq. 7-8): each scale's SG2 enters as its cosine similarity with the classifier's
    spectrum, not its raw size, so small scales (whose SG2 is large because the gradient amplifies high
    frequencies) do not swamp the aggregate. pi is the explanation prior over the relative scales u_k:
    "uniform" (1; the paper's choice), "beta" (the Beta(2, 2) density 6 u (1 - u), the authors'
    alternative) or a sequence of K weights. The terms are summed over the grid, unnormalised, as in the
    authors' code.

    Args:
        scales: the grid u_k in (0, 1], strictly increasing (default 0.1, 0.2, ..., 1.0).
        prior: "uniform" | "beta" | K weights.
        samples: noise draws per scale (shared by every scale).
        noise_std: the cutoff c (s_k = c u_k), in (0, 1], default 0.5; or "auto" (`optimal_noise_scale`).
        reduce: over channels, applied to the aggregate ("abs_sum" default; SG2 >= 0, so "sum" is the same).
    """

    def __init__(
        self,
        scales: Sequence[float] = DEFAULT_SCALES,
        prior: Union[str, Sequence[float]] = "uniform",
        samples: int = 16,
        noise_std: Union[float, str] = 0.5,
        seed: int = 0,
        internal_batch_size: Optional[int] = None,
        reduce: str = "abs_sum",
    ) -> None:
        super().__init__(reduce)
        grid = ScaleGrid(scales, samples, noise_std, seed, internal_batch_size)  # checks the arguments
        self.scales, self.samples, self.noise_std, self.seed = grid.scales, samples, noise_std, seed
        self.internal_batch_size = internal_batch_size
        self.prior = prior if isinstance(prior, str) else tuple(float(w) for w in prior)
        self.prior_weights()  # a bad prior fails here

    def prior_weights(self) -> Tensor:
        """pi(u_k), float64 `(K,)`."""
        fractions = torch.tensor(self._grid.scales, dtype=torch.float64)
        if isinstance(self.prior, str):
            if self.prior not in PRIORS:
                raise ValueError(f"prior must be one of {PRIORS} or a sequence of {len(fractions)} weights, got {self.prior!r}")
            return torch.ones_like(fractions) if self.prior == "uniform" else 6 * fractions * (1 - fractions)
        weights = torch.tensor(self.prior, dtype=torch.float64)
        if weights.shape != fractions.shape or bool((weights < 0).any()) or not bool(torch.isfinite(weights).all()):
            raise ValueError(f"a prior given as weights needs {len(fractions)} finite weights >= 0 (one per scale), got {list(self.prior)}")
        return weights

    def attributions(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        grid = self._grid.grid(model, inputs)
        weights = self.prior_weights().to(device=inputs.device, dtype=inputs.dtype) * grid**KERNEL_NORM_POWER / self._grid.samples
        total = torch.zeros_like(inputs)
        view = (-1,) + (1,) * (inputs.ndim - 1)
        for sample, k, squares in self._grid.squared_gradients(model, inputs, targets, grid):
            total.index_add_(0, sample, squares * weights[sample, k].view(view))
        return total


class ArgLens(ScaleGridMixin, Explainer):
    """ArgLens AL (Mehrpanah et al. 2024, Definition 4): per position, the perturbation scale at which
    SmoothGrad-Squared peaks,

        AL(x)_i = argmax_{s_k} reduce(SG2(x; s_k))_i        (the absolute scale s_k = c u_k, see `ScaleGrid`)

    with the convex Gaussian perturbation and shared noise draws of `SpectralLens`. As in the authors' code
    (`argmax_freq`) the raw SG2 is compared across scales (no s^(5/2) weight) after the channels are
    reduced (default "abs_sum", the authors' channel sum); ties go to the smallest scale. `reduce="none"`
    gives a scale per channel `(B, C, *spatial)`. A low AL marks attributions from high-frequency parts of
    the decision boundary (sensitive to noise), a high AL robust, low-frequency ones. Takes
    SpectralLens' `scales`, `samples`, `noise_std`, `seed`, `internal_batch_size`.
    """

    def __init__(
        self,
        scales: Sequence[float] = DEFAULT_SCALES,
        samples: int = 16,
        noise_std: Union[float, str] = 0.5,
        seed: int = 0,
        internal_batch_size: Optional[int] = None,
        reduce: str = "abs_sum",
    ) -> None:
        grid = ScaleGrid(scales, samples, noise_std, seed, internal_batch_size)  # checks the arguments
        self.scales, self.samples, self.noise_std, self.seed = grid.scales, samples, noise_std, seed
        self.internal_batch_size = internal_batch_size
        self.reduce = check_reduce(reduce)

    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        grid = self._grid.grid(model, inputs)
        count = len(self._grid.scales)
        sums = inputs.new_zeros((inputs.shape[0] * count, *inputs.shape[1:]))
        for sample, k, squares in self._grid.squared_gradients(model, inputs, targets, grid):
            sums.index_add_(0, sample * count + k, squares)
        per_scale = reduce_channels(sums, self.reduce)
        per_scale = per_scale.view(inputs.shape[0], count, *per_scale.shape[1:])
        best = per_scale.argmax(dim=1)
        return grid.gather(1, best.flatten(1)).view(best.shape)
