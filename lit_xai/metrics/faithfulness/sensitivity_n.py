"""Sensitivity-n (Ancona et al., "Towards better understanding of gradient-based attribution methods for
Deep Neural Networks", ICLR 2018), as a torchmetrics Metric.

A map satisfies Sensitivity-n when removing any n positions changes the output by the sum of their
attributions. For each n in `n_values` and `nr_samples` random subsets S of n positions (all channels of
a position together; seeded per (sample, n, draw)), replaced by the substrate,

    r_n = Pearson_S( sum_{p in S} phi_p ,  f(x) - f(x with S replaced) )          per image
    SensitivityN = mean_n r_n                                                      per image

`curve()` gives the mean r_n over images per n (the paper's plot). Higher is better, in [-1, 1]; a
constant series gives 0 (1 if both are constant). This is the paper's definition. quantus 0.6 instead
removes the top-n positions of the ranking cumulatively (one subset per n) and correlates across the
images of a batch for each n, so its values depend on the batch and are not per image; lit-xai follows
the paper. Defaults: n at `steps` log-spaced sizes from 1 to `n_max_percentage` (quantus' 0.8) of the
positions, `nr_samples` 100 subsets each (the paper's 100 samples), substrate zeros (the paper's
baseline; quantus' "black"). Cost: len(n_values) x nr_samples passes per image plus one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lit_xai.checks import check_int, check_positive_int
from lit_xai.chunking import check_internal_batch_size, pair_chunks
from lit_xai.explainers.seeding import pair_generator, sample_seeds
from lit_xai.metrics.common import PerImageMean, metric_passes, original_scores
from lit_xai.metrics.randomization import pearson_correlation
from lit_xai.metrics.substrates import Substrate, check_substrate, make_substrate
from lit_xai.targets import (
    ForwardArgs,
    TargetsLike,
    model_outputs,
    target_probabilities,
)


class SensitivityN(PerImageMean):
    """Sensitivity-n (Ancona et al. 2018): mean over subset sizes n of the correlation between a random
    subset's attribution and the output change when it is removed (module docstring); higher is better.

    Args:
        n_values: subset sizes (ints); None: `steps` log-spaced sizes from 1 to n_max_percentage N.
        steps: how many sizes when n_values is None.
        n_max_percentage: the largest size as a fraction of the positions (quantus' 0.8).
        nr_samples: subsets per size (>= 2).
        substrate, seed, internal_batch_size: as FaithfulnessCorrelation.
    """

    higher_is_better = True

    def __init__(
        self,
        n_values: Sequence[int] | None = None,
        steps: int = 8,
        n_max_percentage: float = 0.8,
        nr_samples: int = 100,
        substrate: Substrate = "zeros",
        seed: int = 0,
        internal_batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if n_values is not None:
            n_values = list(n_values)
            if not n_values or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in n_values):
                raise ValueError(f"n_values must be a non-empty list of positive ints (subset sizes), got {n_values!r}")
        if isinstance(n_max_percentage, bool) or not isinstance(n_max_percentage, (int, float)) or not 0 < n_max_percentage <= 1:
            raise ValueError(f"n_max_percentage must be in (0, 1], got {n_max_percentage!r}")
        check_int(seed, "seed")
        self.n_values = n_values
        self.steps = check_positive_int(steps, "steps")
        self.n_max_percentage = float(n_max_percentage)
        self.nr_samples = check_positive_int(nr_samples, "nr_samples")
        if self.nr_samples < 2:
            raise ValueError("nr_samples must be >= 2: a correlation needs at least two subsets")
        self.substrate = check_substrate(substrate)
        self.seed = seed
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)
        self.add_state("curve_sum", torch.zeros(0, dtype=torch.float64), dist_reduce_fx="sum")

    def sizes(self, positions: int) -> list[int]:
        """The subset sizes n for inputs with `positions` positions."""
        if self.n_values is not None:
            if max(self.n_values) > positions:
                raise ValueError(f"n_values {self.n_values} has sizes larger than the inputs' {positions} positions")
            return list(self.n_values)
        top = max(1, int(self.n_max_percentage * positions))
        grid = torch.logspace(0, math.log10(top), self.steps, dtype=torch.float64).round().long().unique()
        return grid.tolist()

    def draw(self, positions: int, size: int, seed: int, size_index: int, draw: int) -> Tensor:
        """Subset `draw` of size number `size_index` (flat position indices `(size,)`, CPU) of a sample."""
        return torch.randperm(positions, generator=pair_generator(seed, draw, stream=size_index))[:size]

    def correlations(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> Tensor:
        """r_n per image and size `(B, len(sizes))` float64, without updating the state."""
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            batch, positions = inputs.shape[0], math.prod(inputs.shape[2:])
            sizes = self.sizes(positions)
            seeds = sample_seeds(inputs, self.seed)
            repeats = len(sizes) * self.nr_samples
            sums = torch.empty(batch, repeats, dtype=torch.float64, device=inputs.device)
            drops = torch.empty_like(sums)
            phi = saliency.to(inputs.device).double().flatten(1)
            substrate, flat_inputs = make_substrate(inputs, self.substrate).flatten(2), inputs.flatten(2)
            original = original_scores(model, inputs, resolved, self.internal_batch_size)
            for image, pair in pair_chunks(batch, repeats, self.internal_batch_size, inputs):
                size_index, draw = pair // self.nr_samples, pair % self.nr_samples
                replaced = torch.zeros(len(image), positions, dtype=torch.bool)
                for row, (i, k, d) in enumerate(zip(image.tolist(), size_index.tolist(), draw.tolist())):
                    replaced[row, self.draw(positions, sizes[k], seeds[i], k, d)] = True
                replaced = replaced.to(inputs.device)
                rows = (substrate.index_select(0, image), flat_inputs.index_select(0, image))
                perturbed = torch.where(replaced.unsqueeze(1), *rows).view(len(image), *inputs.shape[1:])
                outputs = model_outputs(model, perturbed, image)
                scores = target_probabilities(outputs, None if resolved is None else resolved[image]).double()
                drops[image, pair] = original.index_select(0, image) - scores
                sums[image, pair] = (phi.index_select(0, image) * replaced).sum(dim=1)
            shape = (batch * len(sizes), self.nr_samples)
            return pearson_correlation(sums.view(shape), drops.view(shape)).view(batch, len(sizes))

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        correlations = self.correlations(model, inputs, saliency, targets, forward_args)
        if self.curve_sum.numel() == 0:
            self.curve_sum = torch.zeros(correlations.shape[1], dtype=torch.float64, device=self.curve_sum.device)
        elif self.curve_sum.numel() != correlations.shape[1]:
            raise ValueError("this update's inputs have another number of positions than earlier ones (other subset sizes); reset() the metric")
        self.curve_sum += correlations.sum(dim=0).to(self.curve_sum.device)
        self.add_values(correlations.mean(dim=1))

    def curve(self) -> Tensor:
        """Mean r_n over images per size n (synchronised across processes)."""
        with self.sync_context(dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync, should_unsync=True):
            return (self.curve_sum / self.count.clamp(min=1)).float()
