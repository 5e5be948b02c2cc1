"""Average Drop, Increase in Confidence and ADD by hand; the Jitter-CAM 'constant map' experiment."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_xai.metrics import AverageDrop, AverageDropInDeletion, Deletion, IncreaseInConfidence
from lit_xai.metrics.confidence import normalised_saliency
from tests.test_perturbation_metrics import ONES, W, LinearProbability


class AffineProbability(nn.Module):
    """p(x) = 0.5 + sum(v * x), returned as logits [log p, log(1 - p)]."""

    def __init__(self, v: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("v", v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = 0.5 + (x * self.v).flatten(1).sum(1)
        return torch.stack([torch.log(p), torch.log1p(-p)], dim=1)


def values(model: nn.Module, inputs: torch.Tensor, saliency: torch.Tensor) -> list[float]:
    metrics = [AverageDrop(), IncreaseInConfidence(), AverageDropInDeletion()]
    for metric in metrics:
        metric.update(model, inputs, saliency, torch.zeros(len(inputs), dtype=torch.long))
    return [metric.compute().item() for metric in metrics]


def test_linear_model_by_hand() -> None:
    # p(x) = sum(w x) / 136, w = 1..16, x = 1: Y = 1; M = (w - 1) / 15
    # O = (sum w^2 - sum w) / (15 * 136) = (1496 - 136) / 2040 = 2/3 -> AD = 1/3, IIC = 0
    # D = 1 - 2/3 = 1/3 -> ADD = 2/3
    assert values(LinearProbability(), ONES, W[:, 0]) == pytest.approx([1 / 3, 0.0, 2 / 3], abs=1e-6)


def test_masking_can_raise_confidence() -> None:
    model = AffineProbability(torch.tensor([0.2, -0.2]).view(1, 1, 2))
    x = torch.ones(2, 1, 2)
    # Y = 0.5. Sample 0: M = [1, 0] -> O = 0.7 (AD 0, IIC 1), D = p([0, 1]) = 0.3 -> ADD 0.4
    #          Sample 1: M = [0, 1] -> O = 0.3 (AD 0.4, IIC 0), D = 0.7 -> ADD -0.4
    saliency = torch.tensor([[5.0, 2.0], [2.0, 5.0]])
    assert values(model, x, saliency) == pytest.approx([0.2, 0.5, 0.0], abs=1e-6)
    assert values(model, x[:1], saliency[:1]) == pytest.approx([0.0, 1.0, 0.4], abs=1e-6)
    assert AverageDrop.higher_is_better is False and IncreaseInConfidence.higher_is_better and AverageDropInDeletion.higher_is_better


def test_normalisation() -> None:
    maps = torch.tensor([[[2.0, 4.0], [6.0, 10.0]], [[3.0, 3.0], [3.0, 3.0]]])
    torch.testing.assert_close(normalised_saliency(maps), torch.tensor([[[0.0, 0.25], [0.5, 1.0]], [[0.0] * 2] * 2]))


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"saliency must have shape"):
        AverageDrop().update(LinearProbability(), ONES, torch.ones(1, 3, 3))
    with pytest.raises(ValueError, match="internal_batch_size must be a positive int"):
        AverageDrop(internal_batch_size=0)


def test_constant_map_beats_gradcam_on_ad_and_iic_but_not_on_deletion() -> None:
    """Hartley et al. (Jitter-CAM, BMVC 2022): a map of 0.9 everywhere (one pixel 1, one 0, so min-max
    scaling keeps the 0.9) scores better Average Drop and Increase in Confidence than Grad-CAM on a
    trained model, while Deletion ranks it worse."""
    import lightning.pytorch as pl

    from lit_xai.datamodules import DigitsDataModule
    from lit_xai.explainers import ConstantSaliency, GradCAM
    from lit_xai.models import ImageClassifier

    pl.seed_everything(0)
    data = DigitsDataModule(batch_size=64)
    model = ImageClassifier(lr=0.01)
    pl.Trainer(max_epochs=6, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False).fit(model, data)
    model.eval()
    inputs, _ = next(iter(data.val_dataloader()))
    with torch.no_grad():
        targets = model(inputs).argmax(1)
    gradcam = GradCAM()(model, inputs, targets)
    constant = ConstantSaliency()(model, inputs, targets)
    assert constant[:, 0, 0].eq(1).all() and constant[:, -1, -1].eq(0).all() and constant[:, 1:-1].eq(0.9).all()

    def score(metric_class: type, saliency: torch.Tensor, **options: object) -> float:
        metric = metric_class(**options)
        metric.update(model, inputs, saliency, targets)
        return metric.compute().item()

    assert score(AverageDrop, constant) < score(AverageDrop, gradcam)
    assert score(IncreaseInConfidence, constant) > score(IncreaseInConfidence, gradcam)
    assert score(Deletion, constant, steps=16) > score(Deletion, gradcam, steps=16) + 0.05


def test_constant_saliency_values_and_errors() -> None:
    from lit_xai.explainers import ConstantSaliency

    series = ConstantSaliency(0.5)(torch.nn.Identity(), torch.randn(2, 3, 5))
    assert series.tolist() == [[1.0, 0.5, 0.5, 0.5, 0.0]] * 2
    for bad in (0.0, 1.0, float("nan"), True):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            ConstantSaliency(bad)
