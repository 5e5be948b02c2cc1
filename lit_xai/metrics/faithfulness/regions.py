"""Region-based faithfulness metrics over `lit_xai.segments` (the segmentation helper shared with the
perturbation explainers): Region Perturbation (Samek et al., "Evaluating the Visualization of What a Deep
Neural Network Has Learned", IEEE TNNLS 2017) and IROF (Rieger and Hansen, "IROF: a low resource
evaluation metric for explanation methods", ICLR Workshop 2020), as torchmetrics Metrics.

Both rank each image's segments by their attribution and replace them cumulatively, one segment a step,
with the substrate; every (image, step) that exists (images may have different numbers of segments) is
scored in chunks (`lit_xai.chunking`), none wasted on padding.

Region Perturbation: segments (quantus: `patch_size` x `patch_size` patches, the default here; or
`features="slic"` or an id tensor) ranked by the sum of their attribution, "morf" (most relevant first),
"lerf" or "random" (a permutation seeded per sample); the first L = min(`regions_evaluation`, S) are
replaced by the substrate (quantus' "black": the image's minimum). With d_k = f(x) - f(x_k) after k
replaced regions, quantus returns the curves d_1..d_L; the per-image value is the paper's

    AOPC = sum_{k=0}^{L} d_k / (L + 1)        (d_0 = 0)

Higher is better for "morf" (lower for "lerf"). Patches start at the image's corner (the last ones cut by
the border, `lit_xai.segments`), where quantus pads the image to whole patches, centred: the two agree when
`patch_size` divides the sides. Cost: L passes per image.

IROF: SLIC superpixels by default (quantus' `segmentation_method="slic"`, scikit-image's defaults through
`lit_xai.segments`), ranked by their mean attribution, most relevant first, all S segments removed one
after the other; each removed segment is set to the image's per-channel mean (the paper's "mean value";
quantus' "mean" baseline is the mean of the whole, partly removed, batch, and its mask has one channel,
so it fails on RGB inputs). With q_s = f(x_s) / f(x),

    IROF = S - sum_{s=1}^{S-1} (q_s + q_{s+1}) / 2         (quantus' area over the curve, unit spacing)

over each image's own S segments (quantus pads a batch's curves with zeros to its largest S, which adds
q_S / 2 to the area of the images with fewer segments). Higher is better. An image with f(x) = 0 has no ratio: NaN in `last_values`, left out, counted in
`skipped`. quantus 0.6 integrates with `np.trapz` (removed in numpy 2.4). Cost: S passes per image.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from lit_xai.checks import check_int, check_positive_int
from lit_xai.chunking import check_internal_batch_size, index_chunks
from lit_xai.explainers.seeding import sample_seeds
from lit_xai.metrics.common import PerImageMean, SkippingMean, metric_passes, original_scores
from lit_xai.metrics.faithfulness.steps import stepped_inputs
from lit_xai.metrics.substrates import Substrate, check_substrate, make_substrate
from lit_xai.segments import Features, check_features, segment_counts, segments
from lit_xai.targets import (
    ForwardArgs,
    TargetsLike,
    model_outputs,
    target_probabilities,
)

ORDERS = ("morf", "lerf", "random")


def ranks_by_key(keys: Tensor, counts: Tensor, descending: bool) -> Tensor:
    """Rank `(B, S_max)` of each segment by `keys` `(B, S_max)` (0 = replaced first; ties in id order;
    padding segments past an image's `counts` rank last)."""
    padding = torch.arange(keys.shape[1], device=keys.device).unsqueeze(0) >= counts.unsqueeze(1)
    keys = torch.where(padding, -math.inf if descending else math.inf, keys)
    order = keys.argsort(dim=1, descending=descending, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(keys.shape[1], device=keys.device).expand_as(order))
    return ranks


def segment_attribution(saliency: Tensor, ids: Tensor, reduce: str) -> Tensor:
    """Sum or mean `(B, S_max)` float64 of each segment's attribution."""
    flat, index = saliency.flatten(1).double(), ids.flatten(1)
    most = int(segment_counts(ids).max())
    sums = torch.zeros(ids.shape[0], most, dtype=torch.float64, device=flat.device).scatter_add_(1, index, flat)
    if reduce == "mean":
        sizes = torch.zeros_like(sums).scatter_add_(1, index, torch.ones_like(flat))
        sums = sums / sizes.clamp(min=1)
    return sums


def removal_scores(
    model: nn.Module, inputs: Tensor, targets: Any, position_ranks: Tensor, steps: Tensor, substrate: Tensor, internal_batch_size: int | None
) -> Tensor:
    """Scores `(B, max steps)` float64 (NaN past an image's own steps) after replacing the positions whose
    segment rank is < k, k = 1..steps[b], every existing (image, k) pair in chunks."""
    batch, most = inputs.shape[0], int(steps.max())
    scores = torch.full((batch, most), math.nan, dtype=torch.float64, device=inputs.device)
    image_of, step_of = torch.nonzero(torch.arange(most, device=inputs.device).unsqueeze(0) < steps.unsqueeze(1), as_tuple=True)
    for chunk in index_chunks(len(image_of), internal_batch_size, inputs[:1], batch):
        image, step = image_of[chunk], step_of[chunk]
        outputs = model_outputs(model, stepped_inputs(inputs, substrate, position_ranks, image, step, cumulative=True), image)
        scores[image, step] = target_probabilities(outputs, None if targets is None else targets[image]).double()
    return scores


class SegmentRemovalMetric(PerImageMean):
    """Shared arguments: `features` ("patches", "slic" or an id tensor, `lit_xai.segments`), `patch_size`,
    `abs`, `substrate`, `internal_batch_size`."""

    def __init__(
        self,
        features: Features = "patches",
        patch_size: int | None = 8,
        abs: bool = False,
        substrate: Substrate = "black",
        internal_batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.features = check_features(features)
        self.patch_size = None if patch_size is None else check_positive_int(patch_size, "patch_size")
        self.abs = bool(abs)
        self.substrate = check_substrate(substrate)
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    def segment_ids(self, inputs: Tensor) -> Tensor:
        return segments(inputs, self.features, patch_size=self.patch_size)


class RegionPerturbation(SegmentRemovalMetric):
    """Region Perturbation (Samek et al. 2017): the average score drop (AOPC) while the most relevant
    regions are replaced first (module docstring); higher is better for "morf".

    Args:
        patch_size: side of the square patches (quantus' default 8) when `features="patches"`.
        order: "morf" (quantus' default), "lerf" or "random".
        regions_evaluation: at most this many regions replaced (quantus' default 100).
        features, abs (False), substrate ("black"), internal_batch_size: as `SegmentRemovalMetric`.
        seed: seed of the "random" order, per sample.
    `last_curves` holds the latest batch's d_1..d_L `(B, L)` (NaN past an image's regions).
    """

    higher_is_better = None  # depends on the order: "morf" and "random" higher, "lerf" lower (as ROAD)

    def __init__(self, order: str = "morf", regions_evaluation: int = 100, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        check_int(seed, "seed")
        self.order, self.seed = order, seed
        self.regions_evaluation = check_positive_int(regions_evaluation, "regions_evaluation")

    def curves(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> Tensor:
        """Score drops `(B, L)` float64 after each replaced region, without updating the state."""
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            ids = self.segment_ids(inputs)
            values = saliency.abs() if self.abs else saliency
            counts = segment_counts(ids)
            if self.order == "random":
                generators = [torch.Generator().manual_seed(own_seed) for own_seed in sample_seeds(inputs, self.seed)]
                keys = torch.stack([torch.rand(int(counts.max()), generator=g, dtype=torch.float64) for g in generators]).to(inputs.device)
            else:
                keys = segment_attribution(values, ids, "sum")
            ranks = ranks_by_key(keys, counts, descending=self.order != "lerf")
            steps = segment_counts(ids).clamp(max=self.regions_evaluation)
            position_ranks = ranks.gather(1, ids.flatten(1))
            original = original_scores(model, inputs, resolved, self.internal_batch_size)
            scores = removal_scores(model, inputs, resolved, position_ranks, steps, make_substrate(inputs, self.substrate), self.internal_batch_size)
            return original.unsqueeze(1) - scores

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        drops = self.curves(model, inputs, saliency, targets, forward_args)
        self.last_curves = drops
        steps = (~drops.isnan()).sum(dim=1)
        self.add_values(drops.nan_to_num(0.0).sum(dim=1) / (steps + 1))


class IROF(SegmentRemovalMetric, SkippingMean):
    """IROF (Rieger and Hansen 2020): area over the curve of the relative score while the most relevant
    segments are removed first (module docstring); higher is better.

    Args:
        features: "slic" (quantus' default), "patches" or an id tensor (`lit_xai.segments`).
        patch_size: the patches' side when `features="patches"`.
        abs (False), substrate ("mean": per-image channel means), internal_batch_size: as `SegmentRemovalMetric`.
    """

    higher_is_better = True

    def __init__(self, features: Features = "slic", patch_size: int | None = 8, substrate: Substrate = "mean", **kwargs: Any) -> None:
        super().__init__(features=features, patch_size=patch_size, substrate=substrate, **kwargs)

    def ratios(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> Tensor:
        """q_s = f(x_s) / f(x) `(B, S_max)` float64 (NaN past an image's segments), without updating the state."""
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            ids = self.segment_ids(inputs)
            values = saliency.abs() if self.abs else saliency
            counts = segment_counts(ids)
            position_ranks = ranks_by_key(segment_attribution(values, ids, "mean"), counts, descending=True).gather(1, ids.flatten(1))
            original = original_scores(model, inputs, resolved, self.internal_batch_size)
            scores = removal_scores(model, inputs, resolved, position_ranks, counts, make_substrate(inputs, self.substrate), self.internal_batch_size)
            return scores / original.unsqueeze(1)

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        ratios = self.ratios(model, inputs, saliency, targets, forward_args)
        steps = (~ratios.isnan()).sum(dim=1)
        pairs = torch.arange(ratios.shape[1] - 1, device=ratios.device).unsqueeze(0) < (steps - 1).unsqueeze(1)
        area = torch.where(pairs, ratios[:, :-1] + ratios[:, 1:], 0.0).sum(dim=1) / 2
        kept = torch.isfinite(ratios[:, 0])  # f(x) = 0: no ratio
        values = torch.where(kept, steps.double() - area, math.nan)
        self.add_kept(values, kept, (
            "IROF: every sample of this batch has a target score of 0 (the ratio divides by it); they are left out and "
            "counted in `skipped`"
        ))
