"""Insertion and Deletion (Petsiuk et al., "RISE: Randomized Input Sampling for Explanation of Black-box
Models", BMVC 2018), and their difference, as torchmetrics Metrics.

Positions (pixels or time steps; with `patch` > 1, patch x patch blocks ranked by their mean saliency)
are ranked by saliency, all channels of a position together, most salient first ("morf"; "lerf" ranks
least salient first), ties kept in index order. With N units and `steps` steps, step s = 0..steps
changes the k_s = floor(s N / steps) top-ranked units; the target score p_s (softmax probability of the
target class; a one-output regressor's raw prediction) is read at every step, and

    AUC = sum_{s=1}^{steps} (p_{s-1} + p_s) / (2 steps)          (trapezoid rule on x in [0, 1]).

Deletion replaces the changed units of the input with the substrate (default zeros, i.e. the normalised
input space's mean); lower is better. Insertion starts from the substrate (default a Gaussian blur of the
input, 11x11, sigma 5, zero padding) and puts the input's values back; higher is better.

All images x steps go through the model in chunks of `internal_batch_size` (`lit_xai.chunking`; None: automatic),
one ranking per image.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_xai.checks import check_positive_int
from lit_xai.chunking import check_internal_batch_size, pair_chunks
from lit_xai.metrics.common import PerImageMean, known_original_scores, metric_passes
from lit_xai.metrics.faithfulness.steps import stepped_inputs
from lit_xai.metrics.substrates import Substrate, check_substrate, make_substrate
from lit_xai.targets import ForwardArgs, TargetsLike, model_outputs, target_probabilities

ORDERS = ("morf", "lerf")


def unit_ranks(saliency: Tensor, patch: int, order: str) -> tuple[Tensor, int]:
    """`(rank of each position's unit (B, N_positions), number of units)`; rank 0 is changed first.

    Units are positions, or patch x patch blocks (patch along T for series) scored by their mean
    saliency; a border block that does not fill a whole patch is scored by the positions it has.
    """
    spatial = tuple(saliency.shape[1:])
    scores = saliency if patch == 1 else pooled_mean(saliency, patch)
    flat = scores.flatten(1)
    order_ = flat.argsort(dim=1, descending=order == "morf", stable=True)
    ranks = torch.empty_like(order_)
    ranks.scatter_(1, order_, torch.arange(order_.shape[1], device=order_.device).expand_as(order_))
    if patch > 1:
        ranks = ranks.view(scores.shape)
        for axis in range(1, ranks.ndim):
            ranks = ranks.repeat_interleave(patch, dim=axis)
        ranks = ranks[(slice(None), *(slice(0, size) for size in spatial))]
    return ranks.reshape(saliency.shape[0], -1), flat.shape[1]


def pooled_mean(saliency: Tensor, patch: int) -> Tensor:
    """Mean over patch x patch blocks (ceil mode: partial border blocks average what they hold)."""
    pool = F.avg_pool1d if saliency.ndim == 2 else F.avg_pool2d
    return pool(saliency.unsqueeze(1), patch, ceil_mode=True, count_include_pad=False).squeeze(1)


def perturbation_curves(
    model: nn.Module,
    inputs: Tensor,
    ranks: Tensor,
    units: int,
    targets: Tensor | None,
    substrate: Tensor,
    steps: int,
    insertion: bool,
    internal_batch_size: int | None,
    original: Tensor | None = None,
) -> Tensor:
    """Target scores `(B, steps + 1)` along the insertion (or deletion) path of each image. `original`, the
    scores of the unperturbed inputs where already known, fills the step that is the inputs (insertion's
    last, deletion's first) without a pass."""
    batch = inputs.shape[0]
    last_changed = torch.arange(steps + 1, device=inputs.device) * units // steps - 1  # step s changes ranks < its count
    kept, replacement = (substrate, inputs) if insertion else (inputs, substrate)
    scores = torch.empty(batch, steps + 1, dtype=torch.float64, device=inputs.device)
    walked, first = steps + 1, 0
    if original is not None:
        scores[:, steps if insertion else 0] = original
        walked, first = steps, 0 if insertion else 1
    for image, step in pair_chunks(batch, walked, internal_batch_size, inputs):
        step = step + first
        rows = stepped_inputs(kept, replacement, ranks, image, last_changed[step], cumulative=True)
        outputs = model_outputs(model, rows, image)
        scores[image, step] = target_probabilities(outputs, None if targets is None else targets[image]).double()
    return scores


def trapezoid_auc(curves: Tensor) -> Tensor:
    """Area under `(B, steps + 1)` curves sampled at x = s / steps."""
    steps = curves.shape[1] - 1
    return (curves[:, :-1] + curves[:, 1:]).sum(dim=1) / (2 * steps)


class PerturbationCurveMetric(PerImageMean):
    """Mean AUC of a perturbation curve over every image seen (shared by Insertion and Deletion).

    `update(model, inputs, saliency, targets=None)`: inputs `(B, C, *spatial)`, saliency `(B, *spatial)`,
    targets class indices `(B,)` (default: the model's argmax on the unperturbed inputs).
    `compute()` returns the mean AUC; `curve()` the mean curve `(steps + 1,)` for plots.

    Args:
        steps: equal steps from 0 % to 100 % of the units.
        substrate: "zeros", "blur", "mean" (per-image channel means), a number, or a tensor broadcast to
            the inputs; default per subclass.
        patch: 1 = pixel (time-step) granularity; p > 1 = p x p patches.
        order: "morf" (most relevant first, the RISE protocol) or "lerf" (least relevant first).
        internal_batch_size: perturbed inputs per forward pass (None: automatic, `lit_xai.chunking`).
    """

    insertion: bool
    default_substrate: Substrate

    def __init__(
        self,
        steps: int = 100,
        substrate: Substrate | None = None,
        patch: int = 1,
        order: str = "morf",
        internal_batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.steps = check_positive_int(steps, "steps")
        self.patch = check_positive_int(patch, "patch")
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS} (most / least relevant first), got {order!r}")
        self.order = order
        self.substrate = check_substrate(self.default_substrate if substrate is None else substrate)
        self.add_state("curve_sum", torch.zeros(steps + 1, dtype=torch.float64), dist_reduce_fx="sum")

    def curves(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike, forward_args: ForwardArgs = None) -> Tensor:
        """The per-image curves `(B, steps + 1)` without updating the state."""
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            ranks, units = unit_ranks(saliency.to(inputs.device), self.patch, self.order)
            return perturbation_curves(
                model, inputs, ranks, units, resolved, make_substrate(inputs, self.substrate), self.steps, self.insertion,
                self.internal_batch_size, known_original_scores(model, inputs, resolved),
            )

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        curves = self.curves(model, inputs, saliency, targets, forward_args)
        self.add_values(trapezoid_auc(curves))
        self.curve_sum = self.curve_sum + curves.sum(dim=0).to(self.curve_sum.device)  # replaced, not in place (PerImageMean.add_values)

    def curve(self) -> Tensor:
        """Mean curve over all images seen (synchronised across processes), `(steps + 1,)`."""
        with self.sync_context(dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync, should_unsync=True):
            return (self.curve_sum / self.count.clamp(min=1)).float()


class Insertion(PerturbationCurveMetric):
    """Insertion AUC: put the most salient positions back onto a blurred input first; higher is better."""

    higher_is_better = True
    insertion = True
    default_substrate = "blur"


class Deletion(PerturbationCurveMetric):
    """Deletion AUC: replace the most salient positions with zeros first; lower is better."""

    higher_is_better = False
    insertion = False
    default_substrate = "zeros"


class InsertionDeletion(PerImageMean):
    """Ins-Del: mean insertion AUC - mean deletion AUC (DESIGN.md); higher is better.

    Takes Insertion's and Deletion's arguments (`insertion_substrate`, `deletion_substrate` for their
    substrates); `update(model, inputs, saliency, targets=None)`.
    """

    higher_is_better = True

    def __init__(
        self,
        steps: int = 100,
        insertion_substrate: Substrate = "blur",
        deletion_substrate: Substrate = "zeros",
        patch: int = 1,
        order: str = "morf",
        internal_batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        options = dict(steps=steps, patch=patch, order=order, internal_batch_size=internal_batch_size)
        self.insertion = Insertion(substrate=insertion_substrate, **options)
        self.deletion = Deletion(substrate=deletion_substrate, **options)

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        inserted = trapezoid_auc(self.insertion.curves(model, inputs, saliency, targets, forward_args))
        deleted = trapezoid_auc(self.deletion.curves(model, inputs, saliency, targets, forward_args))
        self.add_values(inserted - deleted)
