"""Localisation metrics of quantus 0.6 that read the map against the object's mask, as torchmetrics
Metrics (`update(saliency, masks_or_boxes)` like `lit_xai.metrics.localisation`; boxes become masks).

With phi the map flattened to N positions and M the object's positions (the mask),

* `AttributionLocalisation` (Kohlbrenner et al., "Towards Best Practice in Explaining Neural Network
  Decisions with LRP", IJCNN 2020): mu = sum_{p in M} a_p / (sum_p a_p + 1e-9), a = |phi| (quantus'
  default abs=True; `positive_attributions`: a = ReLU(phi)); `weighted`: mu N / |M|, the paper's
  weighting by the object's relative size (quantus multiplies by |M| divided by the size of
  `x_batch[2:]`, a slice of its batch, not by N / |M|). A ratio above 1 (negative attributions outside
  M) is NaN in quantus; lit-xai keeps the value.
* `TopKIntersection` (Theiner et al., "Interpretable Semantic Photo Geolocation", WACV 2022): the share
  of the k most relevant positions that fall in M (quantus' default k = 1000; `concept_influence`: times
  N / |M|).
* `RelevanceRankAccuracy` (Arras et al., "CLEVR-XAI: A benchmark dataset for the ground truth evaluation
  of neural network explanations", Information Fusion 2022): the share of the |M| most relevant positions
  that fall in M.
* `RelevanceMassAccuracy` (Arras et al. 2022): sum_{p in M} phi_p / sum_p phi_p (0 for a map summing to
  0, where quantus divides by zero).
* `LocalisationAUC` (quantus' `AUC`; Fawcett, "An introduction to ROC analysis", Pattern Recognition
  Letters 2006): the area under the ROC curve of phi as a detector of M, computed as the Mann-Whitney
  statistic P(phi_in > phi_out) + P(phi_in = phi_out) / 2 (equal to sklearn's `roc_curve` + `auc`,
  ties included), 0.5 for a mask covering the whole map (quantus: NaN from sklearn).

All higher is better. Rankings are stable (ties in index order; quantus' argsort is not). quantus'
default normalisation (by the batch's max) changes none of these values.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lit_xai.metrics.faithfulness.steps import prepared_map
from lit_xai.metrics.localisation import LocalisationMetric, Regions
from lit_xai.metrics.randomization import average_ranks


class SignedLocalisationMetric(LocalisationMetric):
    """A localisation metric of phi itself or, with `abs`, of |phi| (quantus' default False for these)."""

    def __init__(self, abs: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.abs = bool(abs)


class AttributionLocalisation(LocalisationMetric):
    """Share of the (absolute) attribution that falls on the object (Kohlbrenner et al. 2020; module docstring)."""

    def __init__(self, weighted: bool = False, positive_attributions: bool = False, abs: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.weighted, self.positive_attributions, self.abs = bool(weighted), bool(positive_attributions), bool(abs)

    def scores(self, saliency: Tensor, regions: Regions) -> Tensor:
        values = saliency.flatten(1).double()
        if self.positive_attributions:
            values = values.clamp(min=0)
        if self.abs:
            values = values.abs()
        mask = regions.mask.flatten(1)
        ratio = (values * mask).sum(dim=1) / (values.sum(dim=1) + 1e-9)
        if self.weighted:
            ratio = ratio * mask.shape[1] / mask.sum(dim=1)
        return ratio


class TopKIntersection(LocalisationMetric):
    """Share of the k most relevant positions on the object (module docstring)."""

    def __init__(self, k: int = 1000, concept_influence: bool = False, abs: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int (positions), got {k!r}")
        self.k, self.concept_influence, self.abs = k, bool(concept_influence), bool(abs)

    def scores(self, saliency: Tensor, regions: Regions) -> Tensor:
        values = prepared_map(saliency, self.abs)
        if self.k > values.shape[1]:
            raise ValueError(f"k = {self.k} is larger than the map's {values.shape[1]} positions; choose k <= {values.shape[1]}")
        mask = regions.mask.flatten(1)
        top = values.argsort(dim=1, descending=True, stable=True)[:, : self.k]
        share = mask.gather(1, top).double().mean(dim=1)
        if self.concept_influence:
            share = share * mask.shape[1] / mask.sum(dim=1)
        return share


class RelevanceRankAccuracy(SignedLocalisationMetric):
    """Share of the |M| most relevant positions on the object (Arras et al. 2022; module docstring)."""

    def scores(self, saliency: Tensor, regions: Regions) -> Tensor:
        values = prepared_map(saliency, self.abs)
        mask = regions.mask.flatten(1)
        size = mask.sum(dim=1, keepdim=True)
        ordered = mask.gather(1, values.argsort(dim=1, descending=True, stable=True))
        first = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0) < size
        return (ordered & first).sum(dim=1).double() / size.squeeze(1).double()


class RelevanceMassAccuracy(SignedLocalisationMetric):
    """Share of the attribution mass on the object (Arras et al. 2022; module docstring)."""

    def scores(self, saliency: Tensor, regions: Regions) -> Tensor:
        values = prepared_map(saliency, self.abs)
        total = values.sum(dim=1)
        inside = (values * regions.mask.flatten(1)).sum(dim=1)
        return torch.where(total != 0, inside / torch.where(total != 0, total, torch.ones_like(total)), 0.0)


class LocalisationAUC(SignedLocalisationMetric):
    """ROC AUC of the map as a detector of the object's positions (quantus' `AUC`; module docstring)."""

    def scores(self, saliency: Tensor, regions: Regions) -> Tensor:
        values = prepared_map(saliency, self.abs)
        mask = regions.mask.flatten(1)
        inside = mask.sum(dim=1).double()
        outside = mask.shape[1] - inside
        ranks = average_ranks(values)
        rank_sum = (ranks * mask).sum(dim=1)
        auc = (rank_sum - inside * (inside + 1) / 2) / (inside * outside).clamp(min=1)
        return torch.where(outside > 0, auc, 0.5)
