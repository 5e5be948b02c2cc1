"""Faithfulness Correlation (Bhatt et al., "Evaluating and Aggregating Feature-based Model Explanations",
IJCAI 2020), as a torchmetrics Metric.

For `samples` random subsets S_s of |S| positions (all channels of a position together), drawn without
replacement, the input's values on S_s are replaced by the substrate (default zeros, the normalised input
space's mean), and

    FC = Pearson_s( sum_{p in S_s} phi_p ,  f(x) - f(x with S_s replaced) )

per image, f the target score (softmax probability of the target class; a one-output regressor's raw
prediction). A faithful map predicts which subsets matter: higher is better, in [-1, 1]. A constant
series of saliency sums or of score drops has no correlation: 0 (1 if both are constant).

quantus' `FaithfulnessCorrelation` draws subsets of input elements (channels separately) and uses the
logits unless `softmax=True`; with subsets that take every channel of a position it gives the same
numbers. Subsets are seeded per (sample, draw) (`lit_xai.explainers.seeding`); all images x subsets go
through the model in chunks (`lit_xai.chunking`).
"""

from __future__ import annotations

import math
from typing import Any, Union

import torch
from torch import Tensor, nn

from lit_xai.checks import check_int, check_positive_int
from lit_xai.chunking import check_internal_batch_size, pair_chunks
from lit_xai.explainers.seeding import pair_generator, sample_seeds
from lit_xai.metrics.common import PerImageMean, metric_passes, original_scores
from lit_xai.metrics.randomization import pearson_correlation
from lit_xai.metrics.substrates import Substrate, check_substrate, make_substrate
from lit_xai.targets import ForwardArgs, TargetsLike, model_outputs, target_probabilities


class FaithfulnessCorrelation(PerImageMean):
    """Pearson correlation between a random subset's saliency sum and the score drop when the subset is
    replaced (module docstring); higher is better.

    `update(model, inputs, saliency, targets=None)`: inputs `(B, C, *spatial)`, saliency `(B, *spatial)`,
    targets class indices `(B,)` (default: the model's argmax on the unperturbed inputs).

    Args:
        subset: positions per subset, an int, or a float in (0, 1): that fraction of the positions
            (rounded, at least 1).
        samples: subsets per image (quantus' `nr_runs`).
        substrate: what replaces the subset: "zeros", "blur", "mean", a number or a tensor (as Deletion).
        seed: seed of the subsets, per (sample, draw).
        internal_batch_size: perturbed inputs per pass (None: automatic, `lit_xai.chunking`).
    """

    higher_is_better = True

    def __init__(
        self,
        subset: Union[int, float] = 0.1,
        samples: int = 100,
        substrate: Substrate = "zeros",
        seed: int = 0,
        internal_batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(subset, bool) or not (
            isinstance(subset, int) and subset >= 1 or isinstance(subset, float) and 0 < subset < 1
        ):
            raise ValueError(f"subset must be a positive int (positions) or a float in (0, 1) (a fraction of them), got {subset!r}")
        check_int(seed, "seed")
        self.subset = subset
        self.samples = check_positive_int(samples, "samples")
        if self.samples < 2:
            raise ValueError("samples must be >= 2: a correlation needs at least two subsets")
        self.substrate = check_substrate(substrate)
        self.seed = seed
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    def subset_size(self, positions: int) -> int:
        """Positions per subset for inputs with `positions` positions."""
        size = self.subset if isinstance(self.subset, int) else max(1, round(self.subset * positions))
        if size > positions:
            raise ValueError(f"subset {size} is larger than the inputs' {positions} positions")
        return size

    def draw(self, positions: int, seed: int, draw: int) -> Tensor:
        """Subset number `draw` (flat position indices, `(subset_size,)`, CPU) of a sample whose seed is `seed`."""
        return torch.randperm(positions, generator=pair_generator(seed, draw))[: self.subset_size(positions)]

    def series(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike, forward_args: ForwardArgs = None) -> tuple[Tensor, Tensor]:
        """Saliency sums and score drops `(B, samples)` float64, without updating the state."""
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            batch, positions = inputs.shape[0], math.prod(inputs.shape[2:])
            seeds = sample_seeds(inputs, self.seed)
            sums = torch.empty(batch, self.samples, dtype=torch.float64, device=inputs.device)
            drops = torch.empty_like(sums)
            phi = saliency.to(inputs.device).double().flatten(1)
            substrate = make_substrate(inputs, self.substrate).flatten(2)
            flat_inputs = inputs.flatten(2)
            original = original_scores(model, inputs, resolved, self.internal_batch_size)
            for image, draw in pair_chunks(batch, self.samples, self.internal_batch_size, inputs):
                chosen = torch.stack([self.draw(positions, seeds[i], s) for i, s in zip(image.tolist(), draw.tolist())])
                chosen = chosen.to(inputs.device)
                replaced = torch.zeros(len(image), positions, dtype=torch.bool, device=inputs.device)
                replaced.scatter_(1, chosen, True)
                rows = (substrate.index_select(0, image), flat_inputs.index_select(0, image))
                perturbed = torch.where(replaced.unsqueeze(1), *rows).view(len(image), *inputs.shape[1:])
                outputs = model_outputs(model, perturbed, image)
                scores = target_probabilities(outputs, None if resolved is None else resolved[image]).double()
                drops[image, draw] = original.index_select(0, image) - scores
                sums[image, draw] = phi.index_select(0, image).gather(1, chosen).sum(dim=1)
            return sums, drops

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        sums, drops = self.series(model, inputs, saliency, targets, forward_args)
        self.add_values(pearson_correlation(sums, drops))
