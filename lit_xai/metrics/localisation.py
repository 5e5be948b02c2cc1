"""Localisation metrics as torchmetrics Metrics: does a saliency map point at the object?

`update(saliency, masks_or_boxes)` takes raw maps and the objects' ground truth of one batch:

* saliency `(B, H, W)` for images or `(B, T)` for time series (raw values; no normalisation needed);
* ground truth, one of
    - masks, the shape of the saliency, bool or 0/1 (the object's positions; several objects may share
      one mask); a tensor of the saliency's shape is always read as masks;
    - boxes `(B, 4)` as `(x_min, y_min, x_max, y_max)` for images (x = column, y = row), or intervals
      `(B, 2)` as `(t_min, t_max)` for series;
    - a list of B tensors `(K_i, 4)` (or `(K_i, 2)`): several objects per image.

Box convention: pixel coordinates with pixel (row y, column x) centred at the integer point (x, y); both
ends are inclusive: a box covers the pixels with `x_min <= x <= x_max` and `y_min <= y <= y_max`, so the
box `(2, 3, 5, 4)` covers 4 x 2 = 8 pixels and a single pixel is `(x, y, x, y)`. Fractional coordinates
are allowed (a pixel is covered when its centre is inside), boxes are clipped to the map, and a box
stored as `(x, y, width, height)` with an exclusive extent converts as `x_max = x + width - 1`. An image
whose ground truth covers no pixel cannot be scored and raises a ValueError (drop it first).

Metrics (all mean over images, synchronised across processes through sum states):

* `PointingGame` (Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016);
* `EnergyPointingGame` (Wang et al., "Score-CAM: Score-Weighted Visual Explanations for Convolutional
  Neural Networks", CVPR Workshops 2020);
* `WeakLocalization`, the ILSVRC weakly supervised localisation protocol of CAM (Zhou et al., "Learning
  Deep Features for Discriminative Localization", CVPR 2016) and Grad-CAM (Selvaraju et al., ICCV 2017).
"""

from __future__ import annotations

import abc
import itertools
import math
from typing import Any, Literal, NamedTuple, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_xai.checks import all_finite
from lit_xai.metrics.common import PerImageMean

GroundTruth = Union[Tensor, Sequence[Tensor]]
"""Masks `(B, *spatial)`, boxes `(B, 2 D)`, or a list of B tensors `(K_i, 2 D)` (see the module docstring)."""


# ----------------------------------------------------------------------------------------------------------
# Inputs


class Regions(NamedTuple):
    """The ground truth of a batch in pixel terms.

    `mask` `(B, *spatial)` bool: the positions covered by any object. `lower`, `upper` `(B, K, D)` long:
    inclusive per-axis pixel index ranges of each object's box, in tensor-axis order (row, column) for
    images; `valid` `(B, K)` marks real (non-padding, non-empty) boxes. For mask input, each image has one
    box: the tight box around its mask.
    """

    mask: Tensor
    lower: Tensor
    upper: Tensor
    valid: Tensor


def check_saliency(saliency: Tensor) -> Tensor:
    """Saliency must be a finite floating tensor `(B, H, W)` or `(B, T)`."""
    if not isinstance(saliency, Tensor):
        raise TypeError(f"saliency must be a torch.Tensor of shape (B, H, W) or (B, T), got {type(saliency).__name__}")
    if saliency.ndim not in (2, 3):
        hint = " (reduce the channels first, e.g. saliency.abs().sum(1))" if saliency.ndim == 4 else ""
        raise ValueError(
            f"saliency must have shape (B, H, W) for images or (B, T) for time series, got {tuple(saliency.shape)}{hint}"
        )
    if not saliency.is_floating_point():
        raise ValueError(f"saliency must be floating point, got dtype {saliency.dtype}")
    if saliency.shape[0] == 0 or saliency[0].numel() == 0:
        raise ValueError(f"saliency must hold at least one non-empty map, got shape {tuple(saliency.shape)}")
    if not all_finite(saliency):
        raise ValueError("saliency contains NaN or inf; check the explainer's output")
    return saliency.detach()


def boxes_to_ranges(boxes: Tensor, spatial: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Boxes `(..., 2 D)` in the public order -> inclusive pixel index ranges `(..., D)` in tensor-axis order.

    Images: `(x_min, y_min, x_max, y_max)` -> lower `(ceil(y_min), ceil(x_min))`, upper `(floor(y_max),
    floor(x_max))`, clipped to the map. Series: `(t_min, t_max)`. An empty range has lower > upper.
    """
    dims = len(spatial)
    lower, upper = boxes[..., :dims].flip(-1), boxes[..., dims:].flip(-1)  # (x, y) -> (row, col)
    sizes = torch.tensor(spatial, device=boxes.device)
    lower = torch.ceil(lower).long().clamp(min=0)
    upper = torch.minimum(torch.floor(upper).long(), sizes - 1)
    return lower, upper


def ranges_to_mask(lower: Tensor, upper: Tensor, valid: Tensor, spatial: tuple[int, ...]) -> Tensor:
    """Union of inclusive index ranges `(B, K, D)` as a mask `(B, *spatial)`."""
    inside = valid.clone()[(...,) + (None,) * len(spatial)]  # (B, K, 1, ..., 1)
    for axis, size in enumerate(spatial):
        index = torch.arange(size, device=lower.device).view([1, 1] + [size if a == axis else 1 for a in range(len(spatial))])
        low = lower[..., axis][(...,) + (None,) * len(spatial)]
        high = upper[..., axis][(...,) + (None,) * len(spatial)]
        inside = inside & (index >= low) & (index <= high)
    return inside.any(dim=1)


def mask_ranges(mask: Tensor) -> tuple[Tensor, Tensor]:
    """Tight inclusive index ranges `(B, D)` around the True positions of `(B, *spatial)` masks
    (lower > upper for an empty mask)."""
    spatial = mask.shape[1:]
    lower, upper = [], []
    for axis, size in enumerate(spatial):
        index = torch.arange(size, device=mask.device).view([1] + [size if a == axis else 1 for a in range(len(spatial))])
        lower.append(torch.where(mask, index, size).flatten(1).amin(dim=1))
        upper.append(torch.where(mask, index, -1).flatten(1).amax(dim=1))
    return torch.stack(lower, dim=1), torch.stack(upper, dim=1)


def check_box_tensor(boxes: Tensor, dims: int, where: str) -> Tensor:
    if not isinstance(boxes, Tensor) or boxes.is_complex() or boxes.dtype == torch.bool:
        raise ValueError(f"{where} must be a real tensor of boxes, got {boxes!r}")
    boxes = boxes.detach()
    if not bool(torch.isfinite(boxes.double()).all()):
        raise ValueError(f"{where} contains NaN or inf")
    if bool((boxes[..., :dims] > boxes[..., dims:]).any()):
        order = "(x_min, y_min, x_max, y_max)" if dims == 2 else "(t_min, t_max)"
        raise ValueError(f"{where} has a minimum greater than its maximum; boxes are {order}, both ends inclusive")
    return boxes.double()


def ground_truth_regions(target: GroundTruth, saliency: Tensor) -> Regions:
    """Parse masks, boxes or lists of boxes (module docstring) for saliency `(B, *spatial)`."""
    batch, spatial = saliency.shape[0], tuple(saliency.shape[1:])
    dims, device = len(spatial), saliency.device
    box_shape = "(x_min, y_min, x_max, y_max)" if dims == 2 else "(t_min, t_max)"
    if isinstance(target, Tensor):
        target = target.detach().to(device)
        if target.dtype == torch.bool or tuple(target.shape) == tuple(saliency.shape):
            if tuple(target.shape) != tuple(saliency.shape):
                raise ValueError(f"masks must have the saliency's shape {tuple(saliency.shape)}, got {tuple(target.shape)}")
            if target.dtype != torch.bool:
                if not bool(((target == 0) | (target == 1)).all()):
                    raise ValueError("masks must be bool or hold only 0 and 1 (NaN and other values are not allowed)")
                target = target != 0
            lower, upper = mask_ranges(target)
            regions = Regions(target, lower.unsqueeze(1), upper.unsqueeze(1), target.flatten(1).any(dim=1, keepdim=True))
        elif target.ndim == 2 and tuple(target.shape) == (batch, 2 * dims):
            lower, upper = boxes_to_ranges(check_box_tensor(target, dims, "boxes"), spatial)
            lower, upper = lower.unsqueeze(1), upper.unsqueeze(1)
            valid = (lower <= upper).all(dim=-1)
            regions = Regions(ranges_to_mask(lower, upper, valid, spatial), lower, upper, valid)
        else:
            raise ValueError(
                f"ground truth must be masks of shape {tuple(saliency.shape)}, boxes of shape ({batch}, {2 * dims}) as "
                f"{box_shape}, or a list of {batch} tensors (K, {2 * dims}); got a tensor of shape {tuple(target.shape)}"
            )
    elif isinstance(target, (list, tuple)):
        if len(target) != batch:
            raise ValueError(f"a list of boxes needs one entry per image ({batch}), got {len(target)}")
        most = max(1, max((len(b) if isinstance(b, Tensor) and b.ndim == 2 else 1) for b in target))
        padded = torch.zeros(batch, most, 2 * dims, dtype=torch.float64, device=device)
        present = torch.zeros(batch, most, dtype=torch.bool, device=device)
        for i, boxes in enumerate(target):
            where = f"boxes of image {i}"
            if not isinstance(boxes, Tensor) or boxes.ndim not in (1, 2) or boxes.shape[-1] != 2 * dims or boxes.numel() == 0:
                raise ValueError(f"{where} must be a tensor (K, {2 * dims}) or ({2 * dims},) as {box_shape} with K >= 1, got {boxes!r}")
            boxes = check_box_tensor(boxes.reshape(-1, 2 * dims), dims, where).to(device)
            padded[i, : len(boxes)] = boxes
            present[i, : len(boxes)] = True
        lower, upper = boxes_to_ranges(padded, spatial)
        valid = present & (lower <= upper).all(dim=-1)
        regions = Regions(ranges_to_mask(lower, upper, valid, spatial), lower, upper, valid)
    else:
        raise TypeError(f"ground truth must be a tensor of masks or boxes, or a list of box tensors; got {type(target).__name__}")
    empty = ~regions.valid.any(dim=1)
    if bool(empty.any()):
        bad = torch.nonzero(empty).flatten().tolist()
        raise ValueError(
            f"images {bad[:10]} have no ground-truth pixel (an empty mask, or boxes outside the {spatial} map); "
            "they cannot be scored: leave them out of the batch"
        )
    return regions


# ----------------------------------------------------------------------------------------------------------
# Geometry


def shifted(values: Tensor, offset: int, axis: int, fill: int | float) -> Tensor:
    """`out[..., i, ...] = values[..., i + offset, ...]` along `axis`, `fill` where that index is outside."""
    size = values.shape[axis]
    if abs(offset) >= size:
        return torch.full_like(values, fill)
    pad = [0, 0] * (values.ndim - 1 - axis) + ([0, offset] if offset > 0 else [-offset, 0])
    padded = F.pad(values, pad, value=fill) if offset != 0 else values
    return padded.narrow(axis, max(offset, 0), size)


def within_distance(region: Tensor, tolerance: int) -> Tensor:
    """Positions whose Euclidean distance to the nearest True position of `region` `(B, *spatial)` is
    <= `tolerance` (the region dilated by a disc of that radius).

    The squared distance transform is separable (min over one axis, then the next), and only offsets up
    to `tolerance` matter, so it costs 2 tolerance + 1 shifted minima per axis, batched over images.
    """
    if tolerance == 0:
        return region.clone()
    far = tolerance * tolerance + 1
    cost = torch.where(region, 0, far).long()
    for axis in range(1, region.ndim):
        best = torch.full_like(cost, far)
        for offset in range(-tolerance, tolerance + 1):
            best = torch.minimum(best, shifted(cost, offset, axis, far) + offset * offset)
        cost = best.clamp(max=far)
    return cost <= tolerance * tolerance


def neighbour_max(labels: Tensor) -> Tensor:
    """Maximum over each position's full neighbourhood (8 in 2-D, 2 in 1-D) of `(B, *spatial)` labels, -1 outside."""
    dims = labels.ndim - 1
    best = torch.full_like(labels, -1)
    for offsets in itertools.product((-1, 0, 1), repeat=dims):
        if any(offsets):
            moved = labels
            for axis, offset in enumerate(offsets, start=1):
                moved = shifted(moved, offset, axis, -1)
            best = torch.maximum(best, moved)
    return best


def component_labels(selected: Tensor) -> Tensor:
    """Connected components (full connectivity: 8 neighbours in 2-D) of `(B, *spatial)` masks.

    Returns `(B, N)` labels over the flattened positions: each selected position gets the largest flat
    index of its component, the others -1. Label propagation (max over neighbours) alternates with
    pointer jumping (`label <- label[label]`), which keeps the number of rounds small for long shapes.
    """
    batch = selected.shape[0]
    flat = selected.flatten(1)
    labels = torch.where(flat, torch.arange(flat.shape[1], device=flat.device).expand_as(flat), -1)
    while True:
        spread = neighbour_max(labels.view(selected.shape)).flatten(1)
        updated = torch.where(flat, torch.maximum(labels, spread), -1)
        while True:
            jumped = torch.where(flat, updated.gather(1, updated.clamp(min=0)), -1)
            if torch.equal(jumped, updated):
                break
            updated = jumped
        if torch.equal(updated, labels):
            return labels.view(batch, -1)
        labels = updated


def largest_component(selected: Tensor, saliency: Tensor) -> Tensor:
    """Keep the largest connected component of each `(B, *spatial)` mask (full connectivity); among equally
    large components the one with the greater saliency sum, then the one whose last position comes first
    in raster order."""
    flat = selected.flatten(1)
    labels = component_labels(selected)
    index = labels.clamp(min=0)
    sizes = torch.zeros(flat.shape, dtype=torch.long, device=flat.device).scatter_add_(1, index, flat.long())
    mass = torch.zeros(flat.shape, dtype=torch.float64, device=flat.device)
    mass.scatter_add_(1, index, torch.where(flat, saliency.flatten(1).double(), 0.0))
    largest = sizes == sizes.amax(dim=1, keepdim=True)
    best = torch.where(largest & (sizes > 0), mass, -math.inf).argmax(dim=1, keepdim=True)
    return ((labels == best) & flat).view(selected.shape)


def box_iou(lower: Tensor, upper: Tensor, gt_lower: Tensor, gt_upper: Tensor) -> Tensor:
    """IoU of inclusive pixel boxes: `(B, D)` against `(B, K, D)` -> `(B, K)`, counted in pixels,

        |P n G| / |P u G|,  |box| = prod_axis (upper - lower + 1).

    An empty predicted box (lower > upper) gives 0.
    """
    lower, upper = lower.unsqueeze(1), upper.unsqueeze(1)
    extent = (torch.minimum(upper, gt_upper) - torch.maximum(lower, gt_lower) + 1).clamp(min=0)
    inter = extent.prod(dim=-1).double()
    area = (upper - lower + 1).clamp(min=0).prod(dim=-1).double()
    gt_area = (gt_upper - gt_lower + 1).clamp(min=0).prod(dim=-1).double()
    union = area + gt_area - inter
    return torch.where(union > 0, inter / union.clamp(min=1), 0.0)


# ----------------------------------------------------------------------------------------------------------
# Metrics


class LocalisationMetric(PerImageMean):
    """Shared by the localisation metrics: a per-image score, `compute()` = the mean over images,
    `standard_error()` its standard error (sum states, synchronised across processes)."""

    higher_is_better = True

    @abc.abstractmethod
    def scores(self, saliency: Tensor, regions: Regions) -> Tensor:
        """Per-image score `(B,)` (float64); each metric defines it."""

    def update(self, saliency: Tensor, masks_or_boxes: GroundTruth) -> None:
        """Score one batch: saliency `(B, H, W)` or `(B, T)`; masks, boxes or a list of boxes (module docstring)."""
        saliency = check_saliency(saliency)
        self.add_values(self.scores(saliency, ground_truth_regions(masks_or_boxes, saliency)))


class PointingGame(LocalisationMetric):
    """Pointing game (Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016).

    A hit when the saliency maximum lies on the object or within `tolerance` pixels of it:

        hit = 1[ min_{q in object} ||argmax S - q||_2 <= tolerance ],      score = hits / images,

    i.e. the maximum falls inside the object mask (or the union of its boxes) dilated by a disc of radius
    `tolerance` (Euclidean distance between pixel centres; 15 px in the paper for 224-px inputs, 0 = the
    maximum must be on the object). A maximum exactly 15 px away along a row hits with tolerance 15, 16
    px misses; so does a diagonal offset of (11, 11) (15.56 px).

    Ties: when several positions share the maximum value, each counts equally: the image scores the
    fraction of its maxima that hit, the expected hit of breaking the tie uniformly at random. A constant
    map therefore scores the share of the map covered by the dilated object (chance), not a sure hit.
    """

    def __init__(self, tolerance: int = 15, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
            raise ValueError(f"tolerance must be an int >= 0 (pixels), got {tolerance!r}")
        self.tolerance = tolerance

    def scores(self, saliency: Tensor, regions: Regions) -> Tensor:
        flat = saliency.flatten(1)
        maxima = flat == flat.amax(dim=1, keepdim=True)
        near = within_distance(regions.mask, self.tolerance).flatten(1)
        return (maxima & near).sum(dim=1).double() / maxima.sum(dim=1).double()


class EnergyPointingGame(LocalisationMetric):
    """Energy-based pointing game (Wang et al., "Score-CAM: Score-Weighted Visual Explanations for
    Convolutional Neural Networks", CVPR Workshops 2020): the share of the positive saliency energy that
    falls on the object (mask, or union of boxes),

        share = sum_{p in object} ReLU(S_p) / sum_p ReLU(S_p),      score = mean over images.

    A map with no positive value (e.g. all zero) puts no energy on the object: its share is 0. Chance
    level for a uniform map is the object's share of the map's area.
    """

    def scores(self, saliency: Tensor, regions: Regions) -> Tensor:
        energy = saliency.clamp(min=0).flatten(1).double()
        total = energy.sum(dim=1)
        inside = (energy * regions.mask.flatten(1)).sum(dim=1)
        return torch.where(total > 0, inside / total.clamp(min=torch.finfo(torch.float64).tiny), 0.0)


Threshold = Literal["value", "mean", "energy"]
Component = Literal["largest", "all"]


class WeakLocalization(LocalisationMetric):
    """Weakly supervised localisation (the ILSVRC protocol of CAM, Zhou et al., CVPR 2016, and Grad-CAM,
    Selvaraju et al., ICCV 2017): threshold the map, box the selected pixels, and count a hit when the
    box overlaps a ground-truth box with IoU >= `iou`.

    Selection S* of each map S (`threshold`):

    * "value": `(S - min S) / (max S - min S) >= value`, a fraction of the min-max normalised map (CAM
      used 0.2 of the maximum, Grad-CAM 0.15);
    * "mean": `S >= mean(S)`;
    * "energy": the top pixels of ReLU(S) down to the first one at which their cumulative sum reaches
      `energy` x sum ReLU(S), the smallest such set; positions tied with the last one needed are
      included too, so the selection is `{S >= t}` for the value t of that pixel.

    A constant map (all zero included) and a map without positive value in "energy" mode select
    nothing. The box is the tight inclusive box around the selected pixels: of its largest connected
    component (`component="largest"`, as in CAM; full connectivity, 8 neighbours in 2-D; ties broken by
    the larger saliency sum), or of all selected pixels (`component="all"`). An empty selection has no
    box: IoU 0, a miss.

    IoU is counted in pixels with inclusive boxes, |P n G| / |P u G| with |box| = (x_max - x_min + 1)
    (y_max - y_min + 1); with several ground-truth boxes the best one counts (ILSVRC); with a mask the
    ground truth is the tight box around the mask. `compute()` returns the localisation accuracy
    (hits / images), `mean_iou()` the mean of each image's IoU.
    """

    def __init__(
        self,
        threshold: Threshold = "value",
        value: float = 0.5,
        energy: float = 0.5,
        iou: float = 0.5,
        component: Component = "largest",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if threshold not in ("value", "mean", "energy"):
            raise ValueError(f"threshold must be 'value', 'mean' or 'energy', got {threshold!r}")
        if component not in ("largest", "all"):
            raise ValueError(f"component must be 'largest' or 'all', got {component!r}")
        for name, number, low_open in (("value", value, False), ("energy", energy, True), ("iou", iou, True)):
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not (0 < number <= 1 if low_open else 0 <= number <= 1):
                interval = "(0, 1]" if low_open else "[0, 1]"
                raise ValueError(f"{name} must be a number in {interval}, got {number!r}")
        self.threshold, self.value, self.energy, self.iou = threshold, float(value), float(energy), float(iou)
        self.component = component
        self.add_state("iou_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def select(self, saliency: Tensor) -> Tensor:
        """The thresholded positions `(B, *spatial)` before the component step."""
        flat = saliency.flatten(1).double()
        low, high = flat.amin(dim=1, keepdim=True), flat.amax(dim=1, keepdim=True)
        if self.threshold == "value":
            chosen = flat - low >= self.value * (high - low)
        elif self.threshold == "mean":
            chosen = flat >= flat.mean(dim=1, keepdim=True)
        else:
            positive = flat.clamp(min=0)
            ordered = positive.sort(dim=1, descending=True).values
            cumulative = ordered.cumsum(dim=1)
            reached = cumulative >= self.energy * cumulative[:, -1:]
            needed = reached.long().argmax(dim=1, keepdim=True)  # first index where the share is reached
            cut = ordered.gather(1, needed)
            chosen = (positive >= cut) & (positive > 0)
        chosen = chosen & (high > low)
        return chosen.view(saliency.shape)

    def boxes(self, saliency: Tensor) -> tuple[Tensor, Tensor]:
        """Predicted inclusive index ranges `(B, D)` in tensor-axis order (lower > upper: no box)."""
        chosen = self.select(saliency)
        if self.component == "largest":
            chosen = largest_component(chosen, saliency)
        return mask_ranges(chosen)

    def ious(self, saliency: Tensor, regions: Regions) -> Tensor:
        """Each image's IoU `(B,)` with its best-matching ground-truth box."""
        lower, upper = self.boxes(saliency)
        overlap = box_iou(lower, upper, regions.lower, regions.upper)
        return torch.where(regions.valid, overlap, -1.0).amax(dim=1).clamp(min=0)

    def scores(self, saliency: Tensor, regions: Regions) -> Tensor:
        """Hits `(B,)`: 1 where the IoU reaches `iou`."""
        return (self.ious(saliency, regions) >= self.iou).double()

    def update(self, saliency: Tensor, masks_or_boxes: GroundTruth) -> None:
        saliency = check_saliency(saliency)
        ious = self.ious(saliency, ground_truth_regions(masks_or_boxes, saliency))
        self.add_values((ious >= self.iou).double())
        self.iou_sum = self.iou_sum + ious.sum().to(self.iou_sum.device)  # replaced, not in place (PerImageMean.add_values)

    def mean_iou(self) -> Tensor:
        """Mean IoU over all images seen (synchronised across processes)."""
        with self.sync_context(dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync, should_unsync=True):
            return (self.iou_sum / self.count).float() if self.count > 0 else torch.tensor(math.nan)
