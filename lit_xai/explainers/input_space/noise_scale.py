"""Gaussian perturbations of the inputs and the perturbation scale at which the predictive entropy plateaus.

Two ways to combine an input x with standard normal noise e (one stream per sample and draw, seeded per
sample, `lit_xai.explainers.seeding`):

    additive   x~ = x + s * (max x - min x) * e      SmoothGrad's convention: s relative to the input's range
    convex     x~ = (1 - s) x + s e                 the spectral paper's (Mehrpanah et al. 2024, appendix E.2),
                                                    in normalised input space; s in [0, 1]

`optimal_noise_scale` implements section 4.1 / appendix E.1 of Mehrpanah et al., "On Spectral Properties of
Gradient-based Explanation Methods" (ECCV 2024): a grid search over convex scales s that monitors the
predictive entropy H(s) of the noise-averaged prediction and picks the scale at which it plateaus.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

import torch
from torch import Tensor, nn

from lit_xai.checks import check_positive_int
from lit_xai.chunking import check_internal_batch_size
from lit_xai.explainers.attributions import chunked_scores
from lit_xai.explainers.base import check_inputs
from lit_xai.explainers.path_baselines import pair_normal
from lit_xai.explainers.seeding import sample_seeds
from lit_xai.model_state import preserved_model_state
from lit_xai.targets import is_regression

MODES = ("additive", "convex")
NOISE_STREAM = 5
AUTO_SCALES = tuple(round(0.05 * k, 2) for k in range(1, 21))  # 0.05, 0.10, ..., 1.00
AUTO_SAMPLES = 8


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return mode


def check_scales(scales: Sequence[float] | Tensor, name: str = "scales", upper: float | None = 1.0) -> Tensor:
    """A non-empty, strictly increasing sequence of scales in (0, upper] as a float64 tensor."""
    values = torch.as_tensor(scales, dtype=torch.float64).flatten() if not isinstance(scales, str) else None
    if values is None or values.numel() == 0:
        raise ValueError(f"{name} must be a non-empty sequence of numbers, got {scales!r}")
    if bool((values <= 0).any()) or (upper is not None and bool((values > upper).any())) or bool((values.diff() <= 0).any()):
        bound = f"(0, {upper}]" if upper is not None else "(0, inf)"
        raise ValueError(f"{name} must be strictly increasing and lie in {bound}, got {values.tolist()}")
    return values


def perturbed(inputs: Tensor, sample: Tensor, draw: Tensor, scale: Tensor, mode: str, seeds: list[int]) -> Tensor:
    """Noisy copies of `inputs[sample]` with noise number `draw` and scale `scale` (one per row). Rows that
    share a (sample, draw) pair share their noise, drawn once (several scales, one draw: SpectralLens)."""
    keys, inverse = torch.unique(sample * (int(draw.max()) + 1) + draw, return_inverse=True)
    first = torch.zeros_like(keys).scatter_(0, inverse, torch.arange(len(sample), device=sample.device))
    noise = pair_normal(inputs, sample[first], draw[first], seeds, stream=NOISE_STREAM)[inverse]
    s = scale.to(inputs.dtype).view(-1, *(1,) * (inputs.ndim - 1))
    x = inputs[sample]
    if mode == "additive":
        return x + s * noise
    return (1 - s) * x + s * noise


def input_range(inputs: Tensor) -> Tensor:
    """`max - min` of each sample `(B,)` (SmoothGrad's unit of noise)."""
    flat = inputs.flatten(1)
    return flat.amax(dim=1) - flat.amin(dim=1)


def plateau_index(entropy: Tensor, tolerance: float) -> Tensor:
    """Per curve `(..., K)`: the first grid index at which the entropy is within `tolerance` of its range
    below its maximum, `H_k >= H_min + (1 - tolerance) (H_max - H_min)` (where the rise levels off)."""
    low, high = entropy.amin(dim=-1, keepdim=True), entropy.amax(dim=-1, keepdim=True)
    reached = entropy >= low + (1 - tolerance) * (high - low)
    return reached.to(torch.int8).argmax(dim=-1)


def optimal_noise_scale(
    model: nn.Module,
    inputs: Tensor,
    scales: Optional[Sequence[float]] = None,
    samples: int = AUTO_SAMPLES,
    per: str = "image",
    tolerance: float = 0.05,
    seed: int = 0,
    internal_batch_size: Optional[int] = None,
    return_entropy: bool = False,
) -> Union[Tensor, tuple[Tensor, Tensor]]:
    """The convex perturbation scale s at which the predictive entropy under noise plateaus (Mehrpanah et
    al. 2024, section 4.1, appendix E.1 and Fig. 6).

    For every scale s_k of the grid `scales` (default 0.05, 0.10, ..., 1.0):

        p(s_k) = mean_{d=1..samples} softmax(f((1 - s_k) x + s_k e_d)),    H(s_k) = -sum_c p_c log p_c

    and the chosen scale is the first s_k with `H(s_k) >= H_min + (1 - tolerance) (H_max - H_min)` over the
    grid. `per="image"` does this per sample (a tensor `(B,)`); `per="dataset"` on the entropy averaged
    over the samples (a 0-dim tensor). With `return_entropy`, also the entropies `(B, K)`. The model runs
    in eval mode without gradients and is left as found; the `B * K * samples` noisy inputs go through it
    in chunks of `internal_batch_size`. Classifiers only (the entropy of a one-output regressor is undefined).
    """
    check_inputs(inputs)
    grid = check_scales(AUTO_SCALES if scales is None else scales)
    check_positive_int(samples, "samples")
    if per not in ("image", "dataset"):
        raise ValueError(f"per must be 'image' or 'dataset', got {per!r}")
    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must lie in [0, 1), got {tolerance!r}")
    internal_batch_size = check_internal_batch_size(internal_batch_size)
    batch, count = inputs.shape[0], grid.numel()
    inputs = inputs.detach()
    seeds = sample_seeds(inputs, seed)
    scale_grid = grid.to(inputs.device)
    sums: Tensor | None = None

    def noisy(sample: Tensor, repeat: Tensor) -> Tensor:
        return perturbed(inputs, sample, repeat % samples, scale_grid[repeat // samples], "convex", seeds)

    def probabilities(outputs: Tensor, sample: Tensor) -> Tensor:
        if is_regression(outputs):
            raise ValueError("optimal_noise_scale needs a classifier: the predictive entropy of a one-output model is undefined")
        return torch.softmax(outputs.double(), dim=1)

    with preserved_model_state(model):
        for sample, repeat, probs in chunked_scores(model, inputs, count * samples, noisy, probabilities, internal_batch_size):
            if sums is None:
                sums = probs.new_zeros(batch * count, probs.shape[1])
            sums.index_add_(0, sample * count + repeat // samples, probs)
    mean = sums.view(batch, count, -1) / samples  # type: ignore[union-attr]
    entropy = -(mean * mean.clamp_min(1e-300).log()).sum(dim=2)
    curve = entropy if per == "image" else entropy.mean(dim=0)
    chosen = grid.to(inputs.device)[plateau_index(curve, tolerance)].to(torch.float32)
    return (chosen, entropy.to(torch.float32)) if return_entropy else chosen
