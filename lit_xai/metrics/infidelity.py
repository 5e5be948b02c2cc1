"""Infidelity (Yeh et al., "On the (In)fidelity and Sensitivity of Explanations", NeurIPS 2019), as a
torchmetrics Metric.

A map phi `(B, *spatial)` claims how the target score f (softmax probability of the target class; a
one-output regressor's raw prediction) changes when the input changes. For random perturbations I
`(*spatial)`, one value per position shared by all channels, the perturbed input is

    x' = x - I * x      (multiply_by_inputs=True: I is a fraction of the input, for maps that factor in
                         the input: CAMs, gradient x input, Integrated Gradients; captum's convention)
    x' = x - I          (multiply_by_inputs=False: for gradient-like maps)

and with a_s = sum_p I_p phi_p and d_s = f(x) - f(x') over `samples` draws s,

    INFD = mean_s (beta a_s - d_s)^2,      beta = sum_s a_s d_s / sum_s a_s^2   (normalize=True)

(beta = 1 with normalize=False; beta = 0 when every a_s is 0, as captum's `safe_div`). The optimal
scaling beta makes the score blind to the map's scale (the paper's Section 3). Lower is better.

Perturbations: "gaussian", I_p ~ N(0, noise_std^2) independently per position (the paper's noisy
perturbation); "square", I = 1 on a square (a segment for series) of side `square_size` at a uniformly
drawn position inside the input and 0 elsewhere (the paper's square removal: with multiply_by_inputs it
sets the square to 0). Draws are seeded per (sample, draw) (`lit_xai.explainers.seeding`); all
images x draws go through the model in chunks (`lit_xai.chunking`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lit_xai.checks import check_int, check_positive_int
from lit_xai.chunking import check_internal_batch_size, pair_chunks
from lit_xai.explainers.seeding import pair_draws, pair_generator, sample_seeds
from lit_xai.metrics.common import PerImageMean, metric_passes, original_scores
from lit_xai.targets import ForwardArgs, TargetsLike, model_outputs, target_probabilities

PERTURBATIONS = ("gaussian", "square")


def square_indicator(spatial: tuple[int, ...], size: int, generator: torch.Generator) -> Tensor:
    """1 on a `size`-sided square (segment) at a uniformly drawn position fully inside `spatial`, else 0."""
    corner = [int(torch.randint(0, extent - size + 1, (1,), generator=generator)) for extent in spatial]
    indicator = torch.zeros(spatial)
    indicator[tuple(slice(start, start + size) for start in corner)] = 1.0
    return indicator


class Infidelity(PerImageMean):
    """Infidelity (Yeh et al. 2019): expected squared error between the map's predicted score change
    and the real one under random perturbations (module docstring); lower is better.

    `update(model, inputs, saliency, targets=None)`: inputs `(B, C, *spatial)`, saliency `(B, *spatial)`,
    targets class indices `(B,)` (default: the model's argmax on the unperturbed inputs).

    Args:
        perturbation: "gaussian" or "square".
        samples: perturbations per image.
        noise_std: standard deviation of the gaussian perturbation.
        square_size: side of the square perturbation; None: a quarter of the smallest spatial size (>= 1).
        multiply_by_inputs: x' = x - I * x (True) or x - I (False).
        normalize: scale the map optimally (beta) before comparing.
        seed: seed of the draws, per (sample, draw).
        internal_batch_size: perturbed inputs per pass (None: automatic, `lit_xai.chunking`).
    """

    higher_is_better = False

    def __init__(
        self,
        perturbation: str = "gaussian",
        samples: int = 32,
        noise_std: float = 0.1,
        square_size: int | None = None,
        multiply_by_inputs: bool = True,
        normalize: bool = True,
        seed: int = 0,
        internal_batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if perturbation not in PERTURBATIONS:
            raise ValueError(f"perturbation must be one of {PERTURBATIONS}, got {perturbation!r}")
        if isinstance(noise_std, bool) or not isinstance(noise_std, (int, float)) or noise_std <= 0:
            raise ValueError(f"noise_std must be a number > 0, got {noise_std!r}")
        check_int(seed, "seed")
        self.perturbation = perturbation
        self.samples = check_positive_int(samples, "samples")
        self.noise_std = float(noise_std)
        self.square_size = None if square_size is None else check_positive_int(square_size, "square_size")
        self.multiply_by_inputs = bool(multiply_by_inputs)
        self.normalize = bool(normalize)
        self.seed = seed
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    def draws(self, spatial: tuple[int, ...], seeds: list[int], draws: list[int]) -> Tensor:
        """Perturbations `(k, *spatial)` (float32, CPU): row i is `draw(spatial, seeds[i], draws[i])`, the
        Gaussian ones drawn in place by one reseeded generator (`pair_draws`)."""
        if self.perturbation == "gaussian":
            return pair_draws(spatial, seeds, draws, normal=True).mul_(self.noise_std)
        return torch.stack([self.draw(spatial, seed, draw) for seed, draw in zip(seeds, draws)])

    def draw(self, spatial: tuple[int, ...], seed: int, draw: int) -> Tensor:
        """Perturbation number `draw` `(*spatial)` of a sample whose seed is `seed` (float32, CPU)."""
        generator = pair_generator(seed, draw)
        if self.perturbation == "gaussian":
            return torch.randn(spatial, generator=generator) * self.noise_std
        size = self.square_size if self.square_size is not None else max(1, min(spatial) // 4)
        if size > min(spatial):
            raise ValueError(f"square_size {size} is larger than the inputs' spatial size {spatial}")
        return square_indicator(spatial, size, generator)

    def values(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike, forward_args: ForwardArgs = None) -> Tensor:
        """Per-image infidelity `(B,)` float64, without updating the state."""
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            batch, spatial = inputs.shape[0], tuple(inputs.shape[2:])
            seeds = sample_seeds(inputs, self.seed)
            predicted = torch.empty(batch, self.samples, dtype=torch.float64, device=inputs.device)
            changes = torch.empty_like(predicted)
            phi = saliency.to(inputs.device).double()
            original = original_scores(model, inputs, resolved, self.internal_batch_size)
            for image, draw in pair_chunks(batch, self.samples, self.internal_batch_size, inputs):
                pattern = self.draws(spatial, [seeds[i] for i in image.tolist()], draw.tolist())
                pattern = pattern.to(device=inputs.device, dtype=inputs.dtype).unsqueeze(1)
                shift = pattern * inputs.index_select(0, image) if self.multiply_by_inputs else pattern
                outputs = model_outputs(model, inputs.index_select(0, image) - shift, image)
                scores = target_probabilities(outputs, None if resolved is None else resolved[image]).double()
                changes[image, draw] = original.index_select(0, image) - scores
                predicted[image, draw] = (pattern.squeeze(1).double() * phi.index_select(0, image)).flatten(1).sum(dim=1)
            if self.normalize:
                energy = predicted.square().sum(dim=1)
                beta = (predicted * changes).sum(dim=1) / torch.where(energy == 0, torch.ones_like(energy), energy)
            else:
                beta = torch.ones(batch, dtype=torch.float64, device=inputs.device)
            return (beta.unsqueeze(1) * predicted - changes).square().mean(dim=1)

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        self.add_values(self.values(model, inputs, saliency, targets, forward_args))
