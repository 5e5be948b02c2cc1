"""Smooth MPRT (Hedstrom et al., "Sanity Checks Revisited: An Exploration to Repair the Model Parameter
Randomisation Test", XAI in Action workshop, NeurIPS 2023), as a torchmetrics Metric that re-runs the
explainer.

MPRT compares a map of the trained model with a map of a randomised model; noise in the maps makes them
look dissimilar whatever the method. sMPRT denoises both maps first, averaging the explanations of
`nr_samples` noisy copies of the input (SmoothGrad-style):

    E~(f, x) = mean_s E(f, x + n_s),   n_s ~ N(0, sigma^2) per element,  sigma = noise_magnitude (max x - min x)
    SmoothMPRT = Spearman( |E~(f, x)| , |E~(f_random, x)| )

with the same noise draws for both models (seeded per (sample, draw)), |.| and ranks as quantus (abs=True;
normalisation does not change ranks), f_random a copy of the model with every layer re-initialised as in
`ModelRandomizationSimilarity` / `EfficientMPRT`. This is quantus' `return_last_correlation=True` (the
fully randomised model) per image; quantus' default returns the correlation after each layer of its
cascade, which `ModelRandomizationSimilarity` gives with a smoothed explainer. Lower is better. The given
map is not used: both maps are smoothed. Cost: 2 x nr_samples explainer calls per image.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lit_xai.checks import check_int, check_positive_int
from lit_xai.chunking import check_internal_batch_size, pair_chunks
from lit_xai.explainers.seeding import pair_draws, sample_seeds
from lit_xai.metrics.common import PerImageMean, check_explainer, explain_rows, metric_passes
from lit_xai.metrics.efficient_mprt import randomised_copy
from lit_xai.metrics.randomization import spearman_correlation
from lit_xai.metrics.robustness.base import ExplainerFn, check_number
from lit_xai.targets import ForwardArgs, TargetsLike


class SmoothMPRT(PerImageMean):
    """Spearman correlation of the denoised maps of the trained and of the fully randomised model (module
    docstring); lower is better.

    Args:
        explainer: the explainer that produced the maps; None until set (the callback sets it).
        nr_samples: noisy copies per image (quantus' default 50).
        noise_magnitude: sigma as a fraction of the input's range (quantus' default 0.1).
        seed: seed of the noise (per sample and draw) and of the random weights (per layer name).
        internal_batch_size: noisy inputs per explainer call (None: automatic, `lit_xai.chunking`).
    """

    higher_is_better = False

    def __init__(
        self,
        explainer: ExplainerFn | None = None,
        nr_samples: int = 50,
        noise_magnitude: float = 0.1,
        seed: int = 0,
        internal_batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_explainer(explainer)
        check_int(seed, "seed")
        self.explainer, self.seed = explainer, seed
        self.nr_samples = check_positive_int(nr_samples, "nr_samples")
        self.noise_magnitude = check_number(noise_magnitude, "noise_magnitude")
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    def smoothed(self, model: nn.Module, inputs: Tensor, targets: Any) -> Tensor:
        """E~(model, x) `(B, N)` float64: the mean map over the seeded noisy copies."""
        batch = inputs.shape[0]
        seeds = sample_seeds(inputs, self.seed)
        sigma = self.noise_magnitude * (inputs.flatten(1).amax(dim=1) - inputs.flatten(1).amin(dim=1))
        total: Tensor | None = None
        for image, draw in pair_chunks(batch, self.nr_samples, self.internal_batch_size, inputs):
            noise = pair_draws(tuple(inputs.shape[1:]), [seeds[i] for i in image.tolist()], draw.tolist(), normal=True)
            noisy = inputs[image] + noise.to(inputs.device, inputs.dtype) * sigma[image].view(-1, *(1,) * (inputs.ndim - 1))
            maps = explain_rows(self.explainer, model, noisy, None if targets is None else targets[image], image).flatten(1).double()
            if total is None:
                total = torch.zeros(batch, maps.shape[1], dtype=torch.float64, device=maps.device)
            total.index_add_(0, image.to(maps.device), maps)
        assert total is not None
        return total / self.nr_samples

    def values(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> Tensor:
        """Per-image correlation `(B,)` float64, without updating the state."""
        if self.explainer is None:
            raise ValueError("SmoothMPRT needs the explainer that produced the maps: SmoothMPRT(explainer=...) (ExplainerCallback sets it)")
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            trained = self.smoothed(model, inputs, resolved)
            random_model = randomised_copy(model, self.seed)
            randomised = self.smoothed(random_model, inputs, resolved)
            del random_model
            return spearman_correlation(trained.abs(), randomised.abs()).to(inputs.device)

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        self.add_values(self.values(model, inputs, saliency, targets, forward_args))
