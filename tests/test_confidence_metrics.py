"""Average Drop, Increase in Confidence and ADD by hand (probabilities, and a regressor whose predictions
cross 0: those samples left out and counted); the Jitter-CAM 'constant map' experiment."""

from __future__ import annotations

import math
import warnings

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
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # probabilities are > 0: nothing is left out, nothing warned
            metric.update(model, inputs, saliency, torch.zeros(len(inputs), dtype=torch.long))
        assert metric.skipped_samples().item() == 0 and bool(torch.isfinite(metric.last_values).all())
    return [metric.compute().item() for metric in metrics]


class LinearRegressor(nn.Module):
    """A one-output regressor over (B, 1, 2) series: f(x) = 2 x_0 - x_1 (a RUL that can fall below 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * x[:, 0, 0] - x[:, 0, 1]


# Y = f(x): 3, 0, 4, -1. Sample 0: M = [1, 0] -> O = f(2, 0) = 4 (AD 0, IIC 1), D = f(0, 1) = -1 -> ADD 4/3.
# Sample 2: M = [0, 1] -> O = f(0, 2) = -2 (AD (4 + 2) / 4 = 1.5, IIC 0), D = f(3, 0) = 6 -> ADD (4 - 6) / 4 = -1/2.
# Samples 1 (Y = 0) and 3 (Y = -1) are left out.
CROSSING = torch.tensor([[[2.0, 1.0]], [[1.0, 2.0]], [[3.0, 2.0]], [[0.0, 1.0]]])
CROSSING_SALIENCY = torch.tensor([[1.0, 0.0], [0.3, 0.7], [0.0, 1.0], [2.0, 1.0]])
CROSSING_VALUES = {AverageDrop: [0.0, 1.5], IncreaseInConfidence: [1.0, 0.0], AverageDropInDeletion: [4 / 3, -0.5]}


@pytest.mark.parametrize("metric_class", [AverageDrop, IncreaseInConfidence, AverageDropInDeletion])
def test_regressor_crossing_zero_leaves_those_samples_out(metric_class: type) -> None:
    metric = metric_class()
    kept = CROSSING_VALUES[metric_class]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # some samples kept: no warning
        metric.update(LinearRegressor(), CROSSING, CROSSING_SALIENCY)
    nan = math.nan
    torch.testing.assert_close(metric.last_values, torch.tensor([kept[0], nan, kept[1], nan], dtype=torch.float64), equal_nan=True)
    assert metric.compute().item() == pytest.approx(sum(kept) / 2, abs=1e-6)
    assert metric.skipped_samples().item() == 2 and metric.count.item() == 2
    standard_error = abs(kept[0] - kept[1]) / 2  # sd of two values |a - b| / sqrt(2), over sqrt(2)
    assert metric.standard_error().item() == pytest.approx(standard_error, abs=1e-6)

    # the kept samples alone give the same value; the skipped count adds up over updates
    alone = metric_class()
    alone.update(LinearRegressor(), CROSSING[[0, 2]], CROSSING_SALIENCY[[0, 2]])
    assert alone.compute().item() == pytest.approx(metric.compute().item(), abs=1e-12)
    with pytest.warns(UserWarning, match=rf"{metric_class.__name__}: every sample of this batch has a target score <= 0"):
        metric.update(LinearRegressor(), CROSSING[[1, 3]], CROSSING_SALIENCY[[1, 3]])
    assert metric.skipped_samples().item() == 4 and metric.compute().item() == pytest.approx(sum(kept) / 2, abs=1e-6)
    assert torch.isnan(metric.last_values).all() and len(metric.last_values) == 2

    metric.reset()
    assert metric.skipped_samples().item() == 0


def test_batch_with_every_sample_left_out_is_nan_with_a_warning() -> None:
    metric = AverageDropInDeletion()
    with pytest.warns(UserWarning, match="AverageDropInDeletion: every sample .* the 2 samples are left out"):
        metric.update(LinearRegressor(), CROSSING[[1, 3]], CROSSING_SALIENCY[[1, 3]])
    assert math.isnan(metric.compute().item()) and metric.skipped_samples().item() == 2
    metric.update(LinearRegressor(), CROSSING[[0]], CROSSING_SALIENCY[[0]])  # a later kept sample gives the value
    assert metric.compute().item() == pytest.approx(4 / 3, abs=1e-6)


def test_min_score_leaves_out_predictions_near_zero() -> None:
    # min_score 3.5: sample 0 (Y = 3) is left out too, sample 2 (Y = 4) kept: AD = 1.5
    metric = AverageDrop(min_score=3.5)
    metric.update(LinearRegressor(), CROSSING, CROSSING_SALIENCY)
    assert metric.compute().item() == pytest.approx(1.5, abs=1e-6) and metric.skipped_samples().item() == 3
    for bad in (-1.0, math.nan, math.inf, True, "1"):
        with pytest.raises(ValueError, match="min_score must be a finite number >= 0"):
            AverageDrop(min_score=bad)  # type: ignore[arg-type]


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
