"""Closed forms on linear models: Completeness of Integrated Gradients, Monotonicity of an exact
attribution, Pixel-Flipping's and Faithfulness Estimate's values by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_xai.explainers import IntegratedGradients
from lit_xai.metrics import Completeness, FaithfulnessEstimate, Monotonicity, PixelFlipping


class Linear(nn.Module):
    """f(x) = sum w x + b per class (raw scores), inputs (B, 1, 4, 4)."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(21)
        self.weight = nn.Parameter(torch.randn(3, 16, generator=generator))
        self.bias = nn.Parameter(torch.randn(3, generator=generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.weight.T + self.bias


def test_completeness_of_integrated_gradients() -> None:
    model = Linear()
    inputs = torch.randn(5, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    targets = torch.tensor([0, 1, 2, 0, 1])
    saliency = IntegratedGradients(steps=4, reduce="sum")(model, inputs, targets)
    metric = Completeness()  # raw scores, zero baseline: IG is exact on a linear model
    metric.update(model, inputs, saliency, targets)
    expected = (inputs.flatten(1) * model.weight[targets]).sum(dim=1).double()
    assert metric.last_gaps.abs().max().item() < 1e-5
    assert metric.compute().item() == 1.0
    metric.update(model, inputs, saliency * 1.1, targets)  # 10 % off: outside the paper's 5 %
    assert torch.allclose(metric.last_gaps, 0.1 * expected.detach(), atol=1e-5)
    assert metric.last_values.sum().item() == 0 and metric.compute().item() == pytest.approx(0.5)


def test_monotonicity_of_the_exact_attribution() -> None:
    """On a linear model with baseline 0, restoring position p adds phi_p = w_p x_p to the raw score: the
    curve never falls iff every phi_p >= 0 (taken in ascending order of |phi|)."""
    model = Linear()
    generator = torch.Generator().manual_seed(3)
    inputs = torch.randn(4, 1, 4, 4, generator=generator)
    targets = torch.tensor([0, 1, 2, 0])
    phi = (inputs.flatten(1) * model.weight[targets]).detach()
    inputs[:2] = inputs[:2] * torch.sign(phi[:2]).view(2, 1, 4, 4)  # images 0, 1: every phi >= 0
    phi = (inputs.flatten(1) * model.weight[targets]).detach()
    metric = Monotonicity(substrate="zeros", score="raw")
    metric.update(model, inputs, phi.view(4, 4, 4), targets)
    assert metric.last_values.tolist() == [1.0, 1.0, 0.0, 0.0]
    order = phi.abs().argsort(dim=1)
    expected = model.bias[targets].detach().double().unsqueeze(1) + phi.gather(1, order).double().cumsum(dim=1)
    assert torch.allclose(metric.last_curves, expected, atol=1e-5)


def test_pixel_flipping_and_faithfulness_estimate_by_hand() -> None:
    """Removing (zeroing) position p of a linear model lowers the raw score by phi_p = w_p x_p: Pixel-Flipping's
    curve is f(x) minus the cumulative sums of phi in descending order, and Faithfulness Estimate, which
    correlates each position's phi with the drop it causes, is exactly 1 for the map phi."""
    model = Linear()
    inputs = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(4))
    targets = torch.tensor([2, 0, 1])
    phi = (inputs.flatten(1) * model.weight[targets]).detach().double()
    flipping = PixelFlipping(substrate="zeros", score="raw")
    curves = flipping.curves(model, inputs, phi.view(3, 4, 4).float(), targets)
    full = phi.sum(dim=1, keepdim=True) + model.bias[targets].detach().double().unsqueeze(1)
    expected = full - phi.sort(dim=1, descending=True).values.cumsum(dim=1)
    assert torch.allclose(curves, expected, atol=1e-5)
    flipping.update(model, inputs, phi.view(3, 4, 4).float(), targets)
    assert torch.allclose(flipping.last_values, (expected[:, :-1] + expected[:, 1:]).sum(dim=1) / 2, atol=1e-5)
    estimate = FaithfulnessEstimate(substrate="zeros", score="raw")
    estimate.update(model, inputs, phi.view(3, 4, 4).float(), targets)
    assert torch.allclose(estimate.last_values, torch.ones(3, dtype=torch.float64), atol=1e-6)
