"""Monotonicity (Arya et al., "One Explanation Does Not Fit All: A Toolkit and Taxonomy of AI
Explainability Techniques", arXiv:1909.03012, 2019) and Monotonicity Correlation (Nguyen and Martinez,
"On quantitative aspects of model interpretability", arXiv:2007.07584, 2020), as torchmetrics Metrics.

Monotonicity starts from the baseline (quantus' default "black": the image's minimum everywhere) and puts
the input's own values back `features_in_step` positions at a time in ascending order of |phi|
(quantus' default abs=True), cumulatively; step s = 1..S has put back the min(s f, N) least relevant
positions and scores p_s. Per image

    Monotonicity = 1[ p_1 <= p_2 <= ... <= p_S ]

Higher is better (the mean is the share of monotonic images). quantus 0.6 writes the *baseline* onto the
positions it should restore (its `perturb_func` replaces them with the baseline value), so its input never
changes and every image scores True; lit-xai follows the paper and AIX360 (the input's values are
inserted). Cost: S passes per image.

Monotonicity Correlation replaces each group G_s of positions (ascending |phi|, non-cumulative) in
`nr_samples` draws d by one value u_sd ~ U(low, high) per draw (quantus' default baseline "uniform":
U(0, 1), one value for all positions of a draw, unrelated to the input's range), and

    v_s = mean_d (f(x with G_s := u_sd) - f(x))^2 / f(x)^2     (1 / f(x)^2 replaced by 1 when |f(x)| < eps)
    MC  = Spearman_s( sum_{p in G_s} phi_p , v_s )

Higher is better, in [-1, 1] (constant series: 0, 1 if both are constant, where quantus returns NaN).
Cost: S x nr_samples passes per image plus one (quantus' default nr_samples = 100). The draws are seeded
per sample (`lit_xai.explainers.seeding`): u for sample b is `torch.rand((S, nr_samples))` of the
generator seeded with `sample_seed(x_b, seed)`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lit_xai.checks import check_int, check_positive_int
from lit_xai.chunking import pair_chunks
from lit_xai.explainers.seeding import sample_seed, sample_seeds
from lit_xai.metrics.common import metric_passes, original_scores
from lit_xai.metrics.faithfulness.steps import (
    FeatureStepMetric,
    position_ranks,
    prepared_map,
    step_sums,
    stepped_scores,
)
from lit_xai.metrics.randomization import spearman_correlation
from lit_xai.metrics.substrates import make_substrate
from lit_xai.targets import (
    ForwardArgs,
    TargetsLike,
    model_outputs,
    target_probabilities,
)


class Monotonicity(FeatureStepMetric):
    """Monotonicity (Arya et al. 2019): 1 when the score never falls while positions are restored onto the
    baseline in ascending order of relevance, else 0 (module docstring); higher is better.

    `update(model, inputs, saliency, targets=None, forward_args=None)`; `last_curves` holds the latest
    batch's scores `(B, S)`. Arguments as `FeatureStepMetric` (quantus defaults: features_in_step 1,
    abs True, baseline "black").
    """

    higher_is_better = True
    default_abs = True

    def curves(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> Tensor:
        """Scores `(B, S)` float64 after each step, without updating the state."""
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            units = position_ranks(prepared_map(saliency, self.abs), descending=False) // self.features_in_step
            steps = self.steps_for(units.shape[1])
            baseline = make_substrate(inputs, self.substrate)  # restored onto: the input's positions come back
            return stepped_scores(model, baseline, inputs, units, resolved, steps, self.internal_batch_size, cumulative=True)

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        curves = self.curves(model, inputs, saliency, targets, forward_args)
        self.last_curves = curves
        self.add_values((curves.diff(dim=1) >= 0).all(dim=1).double())


class MonotonicityCorrelation(FeatureStepMetric):
    """Monotonicity Correlation (Nguyen and Martinez 2020): Spearman correlation between each group's
    attribution and the score's variance when the group is set to random values (module docstring);
    higher is better.

    Args:
        nr_samples: draws per group (quantus' default 100).
        eps: below this |f(x)| the variance is not divided by f(x)^2 (quantus' default 1e-5).
        low, high: the uniform draws' range (quantus' "uniform" baseline: 0 and 1).
        seed: seed of the draws, per sample.
        features_in_step, abs, internal_batch_size: as `FeatureStepMetric` (quantus defaults: 1, abs True).
    """

    higher_is_better = True
    default_abs = True

    def __init__(
        self,
        nr_samples: int = 100,
        eps: float = 1e-5,
        low: float = 0.0,
        high: float = 1.0,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.nr_samples = check_positive_int(nr_samples, "nr_samples")
        for name, value in (("eps", eps), ("low", low), ("high", high)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number, got {value!r}")
        if not low < high:
            raise ValueError(f"low must be smaller than high (the uniform draws' range), got {low!r} and {high!r}")
        check_int(seed, "seed")
        self.eps, self.low, self.high, self.seed = float(eps), float(low), float(high), seed

    def draws(self, sample: Tensor, steps: int) -> Tensor:
        """The values u `(steps, nr_samples)` (float64, CPU) a sample's groups are set to."""
        return self.seeded_draws(sample_seed(sample, self.seed), steps)

    def seeded_draws(self, own_seed: int, steps: int) -> Tensor:
        """`draws` of the sample whose seed (`sample_seed`) is `own_seed`."""
        generator = torch.Generator().manual_seed(own_seed)
        return self.low + (self.high - self.low) * torch.rand((steps, self.nr_samples), generator=generator, dtype=torch.float64)

    def series(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> tuple[Tensor, Tensor]:
        """Attribution sums and variances `(B, S)` float64, without updating the state."""
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            values = prepared_map(saliency, self.abs)
            ranks = position_ranks(values, descending=False)
            steps, width, draws = self.steps_for(values.shape[1]), self.features_in_step, self.nr_samples
            units = ranks // width
            uniform = torch.stack([self.seeded_draws(own_seed, steps) for own_seed in sample_seeds(inputs, self.seed)])
            uniform = uniform.flatten(1).to(inputs.device, inputs.dtype)
            shape = inputs.shape[1:]
            original = original_scores(model, inputs, resolved, self.internal_batch_size)
            squared = torch.empty(inputs.shape[0], steps * draws, dtype=torch.float64, device=inputs.device)
            for image, pair in pair_chunks(inputs.shape[0], steps * draws, self.internal_batch_size, inputs):
                replaced = (units.index_select(0, image) == (pair // draws).unsqueeze(1)).view(len(image), 1, *shape[1:])
                value = uniform[image, pair].view(len(image), *(1,) * len(shape))
                outputs = model_outputs(model, torch.where(replaced, value, inputs.index_select(0, image)), image)
                scores = target_probabilities(outputs, None if resolved is None else resolved[image]).double()
                squared[image, pair] = (scores - original.index_select(0, image)).square()
            inverse = torch.where(original.abs() >= self.eps, 1 / original.square(), torch.ones_like(original))
            variances = squared.view(-1, steps, draws).mean(dim=2) * inverse.unsqueeze(1)
            return step_sums(values, ranks, width, steps), variances

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        sums, variances = self.series(model, inputs, saliency, targets, forward_args)
        self.add_values(spearman_correlation(sums, variances))
