"""Faithfulness Correlation: parity with quantus on the same subsets; closed form on a linear model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lit_xai.explainers.seeding import sample_seed
from lit_xai.metrics import FaithfulnessCorrelation


def small_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 5))
    with torch.no_grad():
        model[-1].weight.mul_(10)
    return model.eval()


def test_parity_with_quantus_on_the_same_subsets(monkeypatch: pytest.MonkeyPatch) -> None:
    import quantus

    model = small_model()
    generator = torch.Generator().manual_seed(1)
    inputs, saliency = torch.randn(3, 3, 6, 6, generator=generator), torch.randn(3, 6, 6, generator=generator)
    targets = torch.tensor([0, 3, 1])
    metric = FaithfulnessCorrelation(subset=5, samples=12, internal_batch_size=7)
    subsets = [[metric.draw(36, sample_seed(x, 0), s) for s in range(12)] for x in inputs]
    # quantus draws np.random.choice(C * H * W, subset_size) per run, per sample: hand it our subsets,
    # every channel of each chosen position
    features = iter(
        [np.concatenate([c * 36 + subsets[b][s].numpy() for c in range(3)]) for s in range(12) for b in range(3)]
    )
    monkeypatch.setattr(np.random, "choice", lambda *args, **kwargs: next(features))
    reference = quantus.FaithfulnessCorrelation(
        nr_runs=12, subset_size=15, perturb_baseline=0.0, return_aggregate=False, disable_warnings=True
    )(
        model=model, x_batch=inputs.numpy(), y_batch=targets.numpy(), a_batch=saliency.unsqueeze(1).numpy(),
        softmax=True, device="cpu",
    )
    monkeypatch.undo()
    sums, drops = metric.series(model, inputs, saliency, targets)
    from lit_xai.metrics.randomization import pearson_correlation

    ours = pearson_correlation(sums, drops)
    assert (ours - torch.tensor(reference, dtype=torch.float64)).abs().max().item() < 1e-5
    assert min(abs(r) for r in reference) > 0.05  # correlations, not zeros
    metric.update(model, inputs, saliency, targets)
    assert metric.compute().item() == pytest.approx(float(np.mean(reference)), abs=1e-5)


class LinearRegressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, 2, 5, 6, generator=torch.Generator().manual_seed(4)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.weight).flatten(1).sum(1, keepdim=True)


def test_gradient_times_input_on_a_linear_model_correlates_perfectly() -> None:
    # zero substrate: the drop of subset S is sum_{p in S} sum_c w x = the GxI sum over S, exactly
    model = LinearRegressor()
    inputs = torch.randn(4, 2, 5, 6, generator=torch.Generator().manual_seed(5))
    gxi = (model.weight * inputs).sum(1).detach()
    best, negated = FaithfulnessCorrelation(subset=4, samples=20), FaithfulnessCorrelation(subset=4, samples=20)
    best.update(model, inputs, gxi)
    negated.update(model, inputs, -gxi)
    assert best.compute().item() == pytest.approx(1.0, abs=1e-9)
    assert negated.compute().item() == pytest.approx(-1.0, abs=1e-9)
    shuffled = FaithfulnessCorrelation(subset=0.2, samples=20)
    shuffled.update(model, inputs, gxi.flip(-1))
    assert abs(shuffled.compute().item()) < 0.9


def test_subsets_are_per_sample_and_arguments_checked() -> None:
    model = small_model()
    inputs, saliency = torch.randn(4, 3, 6, 6), torch.randn(4, 6, 6)
    metric = FaithfulnessCorrelation(subset=0.25, samples=6)
    assert metric.subset_size(36) == 9
    whole = metric.series(model, inputs, saliency, None)[1]
    alone = torch.cat([metric.series(model, inputs[i : i + 1], saliency[i : i + 1], None)[1] for i in range(4)])
    torch.testing.assert_close(whole, alone, atol=1e-7, rtol=1e-4)
    for bad in (0, 1.0, True):
        with pytest.raises(ValueError, match="subset"):
            FaithfulnessCorrelation(subset=bad)
    with pytest.raises(ValueError, match="samples"):
        FaithfulnessCorrelation(samples=1)
