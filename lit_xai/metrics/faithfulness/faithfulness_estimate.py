"""Faithfulness Estimate (Alvarez-Melis and Jaakkola, "Towards Robust Interpretability with
Self-Explaining Neural Networks", NeurIPS 2018), as a torchmetrics Metric.

Positions are taken `features_in_step` at a time in descending order of attribution; step s (s = 1..S,
S = ceil(N / features_in_step)) replaces only its own positions G_s with the substrate (quantus' default
"black": the image's minimum), not the earlier ones, and

    FE = Pearson_s( sum_{p in G_s} phi_p ,  f(x) - f(x with G_s replaced) )

per image (f the target's score). Higher is better, in [-1, 1]; a constant series gives 0 (1 if both are
constant) where quantus returns NaN. Cost: S passes per image plus one.
"""

from __future__ import annotations

from torch import Tensor, nn

from lit_xai.metrics.common import metric_passes, original_scores
from lit_xai.metrics.faithfulness.steps import (
    FeatureStepMetric,
    position_ranks,
    prepared_map,
    step_sums,
    stepped_scores,
)
from lit_xai.metrics.randomization import pearson_correlation
from lit_xai.metrics.substrates import make_substrate
from lit_xai.targets import ForwardArgs, TargetsLike


class FaithfulnessEstimate(FeatureStepMetric):
    """Pearson correlation between the attribution of each group of positions and the score drop when that
    group alone is replaced (module docstring); higher is better.

    `update(model, inputs, saliency, targets=None, forward_args=None)`. Arguments as `FeatureStepMetric`
    (quantus defaults: features_in_step 1, abs False, baseline "black").
    """

    higher_is_better = True

    def series(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> tuple[Tensor, Tensor]:
        """Attribution sums and score drops `(B, S)` float64, without updating the state."""
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            values = prepared_map(saliency, self.abs)
            ranks = position_ranks(values, descending=True)
            steps, width = self.steps_for(values.shape[1]), self.features_in_step
            units = ranks // width
            substrate = make_substrate(inputs, self.substrate)
            original = original_scores(model, inputs, resolved, self.internal_batch_size)
            scores = stepped_scores(model, inputs, substrate, units, resolved, steps, self.internal_batch_size, cumulative=False)
            return step_sums(values, ranks, width, steps), original.unsqueeze(1) - scores

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        sums, drops = self.series(model, inputs, saliency, targets, forward_args)
        self.add_values(pearson_correlation(sums, drops))
