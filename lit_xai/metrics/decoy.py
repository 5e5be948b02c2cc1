"""DecoyMass: how much of a map's positive mass sits on a known shortcut (a decoy patch).

On data with a decoy whose pixels are known (`ShapesDataModule(decoy=..., annotated="decoy")`, after
Ross et al.'s Decoy-MNIST, "Right for the Right Reasons", IJCAI 2017), the share of each map's positive
mass on the decoy's mask,

    mass = sum_{p in decoy} ReLU(S_p) / sum_p ReLU(S_p)          (0 for a map without positive value),

averaged over images; `chance()` is the mean share of the map the decoy covers (a uniform map's mass).
The formula is the energy pointing game's (Wang et al., CVPR-W 2020) read on the decoy instead of the
object. It is not a quality by itself: for a model that relies on the decoy (its predictions follow the
decoy under intervention, `lit_xai.datamodules.decoy.intervention_rates`) a faithful map puts its mass
there; for a model that ignores the decoy, it should not. So `higher_is_better` is left undeclared
(rankings order it by higher mass).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lit_xai.metrics.localisation import EnergyPointingGame, GroundTruth, check_saliency, ground_truth_regions


class DecoyMass(EnergyPointingGame):
    """Share of the positive saliency mass on the decoy (module docstring); `update(saliency, decoy_masks)`
    takes the maps `(B, H, W)` and the decoys' masks (or boxes) like the localisation metrics."""

    higher_is_better = None  # the faithful direction depends on whether the model relies on the decoy

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("area", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, saliency: Tensor, masks_or_boxes: GroundTruth) -> None:
        saliency = check_saliency(saliency)
        regions = ground_truth_regions(masks_or_boxes, saliency)
        self.add_values(self.scores(saliency, regions))
        self.area += regions.mask.flatten(1).double().mean(dim=1).sum().to(self.area.device)

    def chance(self) -> Tensor:
        """Mean share of the map covered by the decoy: a uniform map's mass (synchronised across processes)."""
        with self.sync_context(dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync, should_unsync=True):
            return (self.area / self.count).float() if self.count > 0 else torch.tensor(float("nan"))
