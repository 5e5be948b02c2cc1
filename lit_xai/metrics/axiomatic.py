"""Axiomatic metrics: Completeness (Sundararajan et al., "Axiomatic Attribution for Deep Networks",
ICML 2017) and Non-Sensitivity (Nguyen and Martinez, "On quantitative aspects of model
interpretability", arXiv:2007.07584, 2020), as torchmetrics Metrics.

Completeness: the attributions add up to the change of the target's score between the baseline x' (the
substrate) and the input,

    Completeness = 1[ |sum_p phi_p - (f(x) - f(x'))| <= atol + rtol |f(x) - f(x')| ]

quantus 0.6 compares the two floats exactly (`==`), which a sum of float32 attributions almost never
meets; lit-xai takes the paper's advice (check that they add up "within 5%": rtol = 0.05). The score is
the raw output by default (`score="raw"`: the logit the explainers explain; quantus' model.predict without
softmax), and the baseline zeros (lit-xai's path methods' default baseline; quantus' default "black",
the image's minimum, is another choice: `substrate="black"`). The map is not normalised (quantus
normalises it by default, which breaks the comparison). Higher is better. Cost: B + 1 rows for a batch of B
when the baseline is the same for every image (zeros, a number, a tensor without a batch axis; no
`forward_args`), 2 per image otherwise.

Non-Sensitivity: positions to which the model is blind should get no attribution, and the other way
round. With a = |phi| / max |phi| per image (quantus' defaults abs=True, normalise=True; quantus divides
by the batch's maximum), each group of `features_in_step` positions in index order replaced alone by the
substrate (quantus' "black"),

    NS = #{ groups g : (|f(x with g replaced) - f(x)| < eps)  XOR  (max_{p in g} a_p < eps) }

Lower is better (0: the map is zero exactly where the model is insensitive). With features_in_step 1 this
is quantus' count; quantus fails for features_in_step > 1 (it XORs (B, S) steps with (B, N) features).
Cost: ceil(N / features_in_step) passes per image plus one.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from lit_xai.chunking import check_internal_batch_size
from lit_xai.metrics.common import PerImageMean, batched_outputs, batched_target_scores, metric_passes, original_scores
from lit_xai.metrics.faithfulness.steps import (
    FeatureStepMetric,
    prepared_map,
    stepped_scores,
)
from lit_xai.metrics.substrates import Substrate, check_substrate, make_substrate, shared_substrate_row
from lit_xai.targets import ForwardArgs, Output, Score, TargetsLike, current_call, target_probabilities


class Completeness(PerImageMean):
    """Completeness (Sundararajan et al. 2017): 1 when the map sums to f(x) - f(x') within the tolerance
    (module docstring), else 0; higher is better.

    `update(model, inputs, saliency, targets=None, forward_args=None)`; `last_gaps` holds the latest
    batch's sum_p phi_p - (f(x) - f(x')) `(B,)`.

    Args:
        substrate: the baseline x' (default zeros; "black", "mean", a number or a tensor).
        rtol, atol: the tolerance, relative to |f(x) - f(x')| and absolute.
        score: how outputs become scores (default "raw"; see `PerImageMean`).
        internal_batch_size: inputs per pass (None: automatic, `lit_xai.chunking`).
    """

    higher_is_better = True

    def __init__(
        self,
        substrate: Substrate = "zeros",
        rtol: float = 0.05,
        atol: float = 1e-6,
        score: Score = "raw",
        output: Output | None = None,
        internal_batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(score=score, output=output, **kwargs)
        for name, value in (("rtol", rtol), ("atol", atol)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        self.substrate = check_substrate(substrate)
        self.rtol, self.atol = float(rtol), float(atol)
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)
        self.last_gaps: Tensor | None = None

    def terms(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> tuple[Tensor, Tensor]:
        """`(sum phi, f(x) - f(x'))`, each `(B,)` float64, without updating the state."""
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            batch = inputs.shape[0]
            row = None if current_call().forward_args else shared_substrate_row(inputs, self.substrate)
            if row is None:  # a baseline per image: 2 B rows
                both = torch.cat([inputs, make_substrate(inputs, self.substrate)])
                samples = torch.arange(2 * batch, device=inputs.device) % batch
                repeated = None if resolved is None else resolved[samples]
                scores = batched_target_scores(model, both, repeated, self.internal_batch_size, batch, samples)
                change = scores[:batch] - scores[batch:]
            else:  # one baseline for every image (zeros, a number): its outputs once, B + 1 rows
                outputs = batched_outputs(model, torch.cat([inputs, row]), self.internal_batch_size, batch)
                baseline = target_probabilities(outputs[batch:].expand(batch, *outputs.shape[1:]), resolved).double()
                change = target_probabilities(outputs[:batch], resolved).double() - baseline
            return saliency.flatten(1).sum(dim=1, dtype=torch.float64), change

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        total, change = self.terms(model, inputs, saliency, targets, forward_args)
        self.last_gaps = total - change
        self.add_values((self.last_gaps.abs() <= change.abs().mul_(self.rtol).add_(self.atol)).double())  # |gap| <= atol + rtol |change|


class NonSensitivity(FeatureStepMetric):
    """Non-Sensitivity (Nguyen and Martinez 2020): the number of position groups where the model's
    insensitivity and a zero attribution disagree (module docstring); lower is better.

    Args:
        eps: what counts as no change of the score and as no attribution (quantus' default 1e-5).
        features_in_step, abs, substrate, internal_batch_size: as `FeatureStepMetric` (quantus defaults:
            1, abs True, "black").
    """

    higher_is_better = False
    default_abs = True

    def __init__(self, eps: float = 1e-5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps <= 0:
            raise ValueError(f"eps must be a number > 0, got {eps!r}")
        self.eps = float(eps)

    def violations(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> Tensor:
        """`(B, S)` bool: the groups where insensitivity and zero attribution disagree."""
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            values = prepared_map(saliency, self.abs, normalise=True)
            positions, width = values.shape[1], self.features_in_step
            steps = self.steps_for(positions)
            groups = (torch.arange(positions, device=inputs.device) // width).expand_as(values)  # in index order
            substrate = make_substrate(inputs, self.substrate)
            original = original_scores(model, inputs, resolved, self.internal_batch_size)
            scores = stepped_scores(model, inputs, substrate, groups, resolved, steps, self.internal_batch_size, cumulative=False)
            padded = torch.nn.functional.pad(values, (0, steps * width - positions), value=-math.inf)
            unattributed = padded.view(-1, steps, width).amax(dim=2) < self.eps
            insensitive = (scores - original.unsqueeze(1)).abs() < self.eps
            return insensitive ^ unattributed

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        self.add_values(self.violations(model, inputs, saliency, targets, forward_args).sum(dim=1).double())
