"""What the quantus-style faithfulness metrics share: positions ordered by attribution, replaced (or put
back) `features_in_step` at a time, every (image, step) input scored in chunks (`lit_xai.chunking`).

A *feature* here is a position (a pixel, a time step) with all its channels: quantus counts input
elements (C x H x W) and broadcasts the map over the channels, which for one-channel inputs is the same
thing; for C channels lit-xai takes C times fewer steps (each changes a position's C elements at once).
Orders are stable (ties in index order); quantus' `np.argsort` is not stable, so maps with ties may be
walked in another order there.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from lit_xai.checks import check_positive_int
from lit_xai.chunking import check_internal_batch_size, pair_chunks
from lit_xai.metrics.common import PerImageMean
from lit_xai.metrics.substrates import Substrate, check_substrate
from lit_xai.targets import model_outputs, target_probabilities


def prepared_map(saliency: Tensor, absolute: bool, normalise: bool = False) -> Tensor:
    """`(B, N)` float64: the flattened map, |phi| when `absolute`, divided by its own max |phi| when
    `normalise` (an all-zero map stays zero; quantus divides by the batch's max, lit-xai per image)."""
    flat = saliency.flatten(1).double()
    if absolute:
        flat = flat.abs()
    if normalise:
        peak = (flat if absolute else flat.abs()).amax(dim=1, keepdim=True)
        flat = flat / peak.masked_fill_(peak == 0, 1.0)
    return flat


def position_ranks(values: Tensor, descending: bool) -> Tensor:
    """Rank `(B, N)` of each position (0 = first walked): `values` sorted descending or ascending, stable."""
    order = values.argsort(dim=1, descending=descending, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    return ranks


def step_sums(values: Tensor, ranks: Tensor, width: int, steps: int) -> Tensor:
    """Sum of `values` `(B, N)` over the positions of each step `(B, steps)`: step s holds ranks
    [s width, (s + 1) width)."""
    sums = torch.zeros(values.shape[0], steps, dtype=torch.float64, device=values.device)
    return sums.scatter_add_(1, ranks // width, values.double())


def stepped_inputs(kept: Tensor, replacement: Tensor, units: Tensor, image: Tensor, step: Tensor, *, cumulative: bool) -> Tensor:
    """The inputs `(k, C, *spatial)` of the (image, step) pairs: the positions of the image whose unit
    (`units` `(B, N)`) is <= the step (`cumulative`) or equals it come from `replacement`, the others from
    `kept` (both `(B, C, *spatial)`)."""
    chosen, step = units.index_select(0, image), step.unsqueeze(1)
    mask = (chosen <= step) if cumulative else (chosen == step)
    return torch.where(mask.view(len(image), 1, *kept.shape[2:]), replacement.index_select(0, image), kept.index_select(0, image))


def stepped_scores(
    model: nn.Module,
    kept: Tensor,
    replacement: Tensor,
    units: Tensor,
    targets: Any,
    steps: int,
    internal_batch_size: int | None,
    *,
    cumulative: bool,
) -> Tensor:
    """Target scores `(B, steps)` float64 of the `stepped_inputs` of every (image, step) pair, in chunks:
    step s takes the positions of unit <= s (`cumulative`: removal and insertion curves) or of unit s alone
    from `replacement`."""
    scores = torch.empty(kept.shape[0], steps, dtype=torch.float64, device=kept.device)
    for image, step in pair_chunks(kept.shape[0], steps, internal_batch_size, kept):
        outputs = model_outputs(model, stepped_inputs(kept, replacement, units, image, step, cumulative=cumulative), image)
        scores[image, step] = target_probabilities(outputs, None if targets is None else targets[image]).double()
    return scores


class FeatureStepMetric(PerImageMean):
    """Shared arguments of the metrics that walk features in order of attribution.

    Args:
        features_in_step: positions changed per step (quantus' `features_in_step`); when it does not
            divide the number of positions the last step takes what is left.
        abs: order (and sum) |phi| instead of phi (quantus' `abs`; each metric's quantus default).
        substrate: what a removed position becomes: "black" (each image's minimum, quantus' default
            "black"), "white", "zeros", "mean", "blur", a number or a tensor (`lit_xai.metrics.substrates`).
        internal_batch_size: perturbed inputs per pass (None: automatic, `lit_xai.chunking`).
    """

    default_abs = False

    def __init__(
        self,
        features_in_step: int = 1,
        abs: bool | None = None,
        substrate: Substrate = "black",
        internal_batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.features_in_step = check_positive_int(features_in_step, "features_in_step")
        self.abs = self.default_abs if abs is None else bool(abs)
        self.substrate = check_substrate(substrate)
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    def steps_for(self, positions: int) -> int:
        """ceil(positions / features_in_step) steps."""
        if self.features_in_step > positions:
            raise ValueError(f"features_in_step {self.features_in_step} is larger than the inputs' {positions} positions")
        return math.ceil(positions / self.features_in_step)
