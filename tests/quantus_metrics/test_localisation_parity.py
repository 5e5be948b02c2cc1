"""quantus 0.6 parity of the mask-based localisation metrics; hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lit_xai.metrics import (
    AttributionLocalisation,
    LocalisationAUC,
    RelevanceMassAccuracy,
    RelevanceRankAccuracy,
    TopKIntersection,
)
from tests.quantus_metrics.models import MODELS, as_array

quantus = pytest.importorskip("quantus")
QUIET = dict(disable_warnings=True, display_progressbar=False)


def maps_and_masks(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    saliency = torch.randn(5, 6, 6, generator=generator)
    masks = torch.zeros(5, 6, 6, dtype=torch.bool)
    corners = torch.randint(0, 3, (5, 2), generator=generator)
    for i, (row, col) in enumerate(corners.tolist()):
        masks[i, row : row + 3, col : col + 2 + i % 2] = True
    saliency = saliency + 1.5 * masks  # the maps point at the object, imperfectly
    return saliency, masks


CASES = [
    (AttributionLocalisation(), quantus.AttributionLocalisation),
    (TopKIntersection(k=5), lambda **kw: quantus.TopKIntersection(k=5, **kw)),
    (RelevanceRankAccuracy(), quantus.RelevanceRankAccuracy),
    (RelevanceMassAccuracy(), quantus.RelevanceMassAccuracy),
    (LocalisationAUC(), quantus.AUC),
]


@pytest.mark.parametrize("case", range(len(CASES)), ids=[type(c[0]).__name__ for c in CASES])
@pytest.mark.parametrize("seed", [1, 2])
def test_parity_with_quantus(case: int, seed: int) -> None:
    metric, reference_class = CASES[case]
    metric = type(metric)(**({"k": 5} if isinstance(metric, TopKIntersection) else {}))
    saliency, masks = maps_and_masks(seed)
    metric.update(saliency, masks)
    model = MODELS["pooling_convnet"]()
    inputs = torch.randn(5, 1, 6, 6, generator=torch.Generator().manual_seed(seed))
    reference = reference_class(**QUIET)(
        model=model, x_batch=inputs.numpy(), y_batch=np.zeros(5, int), a_batch=saliency.unsqueeze(1).numpy(),
        s_batch=masks.unsqueeze(1).numpy().astype(np.float32), device="cpu",
    )
    np.testing.assert_allclose(metric.last_values.numpy(), as_array(reference), atol=1e-5, rtol=0)
    if not isinstance(metric, RelevanceMassAccuracy):  # signed mass ratios leave [0, 1] on random maps
        assert 0 < metric.compute().item() < 1


def test_hand_computed_values() -> None:
    saliency = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0, -1.0]])
    mask = torch.tensor([[True, False, True, False, False, False]])
    rra = RelevanceRankAccuracy()
    rra.update(saliency, mask)  # top-2 = {0, 1}: one of them on the object
    assert rra.compute().item() == pytest.approx(0.5)
    rma = RelevanceMassAccuracy()
    rma.update(saliency, mask)
    assert rma.compute().item() == pytest.approx(6 / 9)
    auc = LocalisationAUC()
    auc.update(saliency, mask)  # inside {4, 2} vs outside {3, 1, 0, -1}: 4 + 3 of 8 pairs ordered
    assert auc.compute().item() == pytest.approx(7 / 8)
    located = AttributionLocalisation(weighted=True)
    located.update(saliency, mask)  # |phi| inside 6 of 11, times 6 / 2
    assert located.compute().item() == pytest.approx(6 / 11 * 3, rel=1e-6)
    top = TopKIntersection(k=3, concept_influence=True)
    top.update(saliency, mask)  # {0, 1, 2}: 2 of 3 on the object, times 6 / 2
    assert top.compute().item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="larger than the map's 6 positions"):
        TopKIntersection(k=7).update(saliency, mask)
