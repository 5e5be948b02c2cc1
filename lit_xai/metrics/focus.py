"""Focus (Arias-Duart et al., "Focus! Rating XAI Methods and Finding Biases", FUZZ-IEEE 2022), as a
torchmetrics Metric that re-runs the explainer on mosaics built from the batch.

Each image x_b of target class t becomes the anchor of a 2 x 2 mosaic of four images of its batch: x_b,
a second image of class t, and two images of other classes, placed in the quadrants in a random order
(as quantus' `mosaic_creation` builds a mosaic: two of the target class, two of the rest). The explainer
explains the mosaic for class t, and

    Focus = sum_{target quadrants} ReLU(phi) / (sum ReLU(phi) + 1e-9)

(quantus' formula). Higher is better (0.5 is what a map that ignores the classes gets on average).

The partner of class t is drawn among the batch's other images of class t (x_b itself when it has none,
as quantus repeats images of a class that has too few); the two others are drawn with replacement among
the batch's images of other classes (quantus' `rng.choices`); draws and placement are seeded by x_b
(`lit_xai.explainers.seeding`). An image with no other class in its batch cannot make a mosaic: NaN in
`last_values`, left out, counted in `skipped`. The mosaics come from the batch, so an image's value
depends on the other images of its batch (and, under DDP, on the process that holds it): compare
explainers on the same batches. The model must accept inputs twice as large along each axis (a
convolutional network with global pooling does). Images only. Cost: one explainer call per image, on
an input 4 x its size.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from lit_xai.checks import check_int
from lit_xai.explainers.seeding import sample_seeds
from lit_xai.metrics.common import SkippingMean, check_explainer, explain_rows, metric_passes
from lit_xai.metrics.robustness.base import ExplainerFn
from lit_xai.targets import ForwardArgs, Target, TargetsLike


def mosaic(images: Tensor) -> Tensor:
    """Four images `(4, C, H, W)` framed as one `(C, 2H, 2W)`: top-left, top-right, bottom-left, bottom-right."""
    return torch.cat([torch.cat([images[0], images[1]], dim=-1), torch.cat([images[2], images[3]], dim=-1)], dim=-2)


def quadrant_masks(flags: Tensor, height: int, width: int) -> Tensor:
    """`(B, 2H, 2W)` bool: True on the quadrants whose flag `(B, 4)` is set (quantus' p_batch order)."""
    grid = flags.view(-1, 2, 2).bool()
    return grid.repeat_interleave(height, dim=1).repeat_interleave(width, dim=2)


class Focus(SkippingMean):
    """Share of the positive relevance of a mosaic that falls on the target class' two images (module
    docstring); higher is better.

    Args:
        explainer: the explainer that produced the maps; None until set (the callback sets it).
        seed: seed of the mosaics, per anchor image.
    """

    higher_is_better = True

    def __init__(self, explainer: ExplainerFn | None = None, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_explainer(explainer)
        check_int(seed, "seed")
        self.explainer, self.seed = explainer, seed

    def mosaics(self, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """`(mosaics (B', C, 2H, 2W), flags (B', 4), members (B', 4) batch indices, anchors (B',))` for the
        images that can anchor one (another class in the batch). Images only."""
        if inputs.ndim != 4:
            raise ValueError(f"Focus builds 2 x 2 mosaics of images (B, C, H, W), got inputs of shape {tuple(inputs.shape)}")
        labels = targets.tolist()
        built, flags, members, anchors = [], [], [], []
        for b, own_seed in enumerate(sample_seeds(inputs, self.seed)):
            generator = torch.Generator().manual_seed(own_seed)
            same = [j for j, t in enumerate(labels) if t == labels[b] and j != b] or [b]
            other = [j for j, t in enumerate(labels) if t != labels[b]]
            if not other:
                continue
            partner = same[int(torch.randint(len(same), (1,), generator=generator))]
            outer = [other[int(i)] for i in torch.randint(len(other), (2,), generator=generator)]
            order = torch.randperm(4, generator=generator).tolist()
            chosen = [[b, partner, *outer][k] for k in order]
            built.append(mosaic(inputs[chosen]))
            flags.append([int(k < 2) for k in order])
            members.append(chosen)
            anchors.append(b)
        device = inputs.device
        if not built:
            empty = torch.empty(0, dtype=torch.long, device=device)
            return inputs.new_empty(0, inputs.shape[1], 2 * inputs.shape[2], 2 * inputs.shape[3]), empty.view(0, 4), empty.view(0, 4), empty
        return (torch.stack(built), torch.tensor(flags, device=device), torch.tensor(members, device=device), torch.tensor(anchors, device=device))

    def values(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> Tensor:
        """Per-image Focus `(B,)` float64 (NaN where no mosaic could be built), without updating the state."""
        if self.explainer is None:
            raise ValueError("Focus needs the explainer that produced the maps: Focus(explainer=...) (ExplainerCallback sets it)")
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            if resolved is None or isinstance(resolved, Target):
                raise ValueError("Focus builds mosaics of classes: it needs a classifier with class-index targets (B,)")
            values = torch.full((inputs.shape[0],), math.nan, dtype=torch.float64, device=inputs.device)
            built, flags, _, anchors = self.mosaics(inputs, resolved)
            if len(anchors):
                maps = explain_rows(self.explainer, model, built, resolved[anchors], anchors).double().clamp(min=0)
                inside = quadrant_masks(flags, inputs.shape[2], inputs.shape[3]).to(maps.device)
                values[anchors] = ((maps * inside).flatten(1).sum(dim=1) / (maps.flatten(1).sum(dim=1) + 1e-9)).to(values.device)
            return values

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        values = self.values(model, inputs, saliency, targets, forward_args)
        self.add_kept(values, ~values.isnan(), (
            "Focus: no image of this batch has an image of another class beside it to build a mosaic; the samples are "
            "left out and counted in `skipped`"
        ))
