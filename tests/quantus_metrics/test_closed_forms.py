"""Closed forms on linear models: Completeness of Integrated Gradients, Monotonicity of an exact
attribution, Pixel-Flipping's and Faithfulness Estimate's values by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_xai.explainers import IntegratedGradients
from lit_xai.metrics import (
    Completeness,
    FaithfulnessEstimate,
    Monotonicity,
    PixelFlipping,
)


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


def test_sensitivity_n_of_the_exact_attribution() -> None:
    """Removing any subset S of a linear model's inputs (zero baseline, raw score) lowers it by sum_S w x:
    gradient x input satisfies Sensitivity-n for every n (r_n = 1); a shuffled map does not."""
    from lit_xai.metrics import SensitivityN

    model = Linear()
    inputs = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(5))
    targets = torch.tensor([1, 2, 0])
    phi = (inputs.flatten(1) * model.weight[targets]).detach().view(3, 4, 4)
    metric = SensitivityN(nr_samples=6, steps=4, score="raw", internal_batch_size=7)
    assert metric.sizes(16) == [1, 2, 5, 12]
    metric.update(model, inputs, phi, targets)
    assert torch.allclose(metric.last_values, torch.ones(3, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(metric.curve(), torch.ones(4), atol=1e-6)
    shuffled = SensitivityN(nr_samples=6, steps=4, score="raw")
    shuffled.update(model, inputs, phi.flatten(1)[:, torch.randperm(16, generator=torch.Generator().manual_seed(0))].view(3, 4, 4), targets)
    assert (shuffled.last_values < 0.9).all()


def test_input_invariance_of_gradients_and_not_of_input_times_gradient() -> None:
    """Kindermans et al.: the gradient is input invariant (same function, same activations after the first
    layer), gradient x input is not; on a Linear first layer and on a convolution without padding."""
    from lit_xai.explainers import InputXGradient, Saliency
    from lit_xai.metrics import InputInvariance

    inputs = torch.randn(4, 1, 6, 6, generator=torch.Generator().manual_seed(6))
    torch.manual_seed(3)
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Softplus(), nn.Flatten(), nn.Linear(32, 3)).eval()
    for model in (conv, nn.Sequential(nn.Flatten(), nn.Linear(36, 5), nn.Tanh(), nn.Linear(5, 3)).eval()):
        for explainer, expected in ((Saliency(reduce="sum", abs=False), 1.0), (InputXGradient(reduce="sum"), 0.0)):
            metric = InputInvariance(explainer=explainer)
            metric.update(model, inputs, explainer(model, inputs))
            assert metric.last_values.tolist() == [expected] * 4, (type(explainer).__name__, model)
        first = model[0] if isinstance(model[0], nn.Conv2d) else model[1]
        assert first.bias is not None and metric.explainer is not None
    before = conv[0].bias.clone()
    InputInvariance(explainer=Saliency()).update(conv, inputs, Saliency()(conv, inputs))
    assert torch.equal(conv[0].bias, before)  # the model itself is untouched


def test_stochastic_metrics_do_not_depend_on_the_batch_or_the_chunk_size() -> None:
    """Draws seeded per sample: an image's value alone equals its value in a batch, for any chunk size."""
    from lit_xai.explainers import InputXGradient
    from lit_xai.metrics import AvgSensitivity, MonotonicityCorrelation, RegionPerturbation, SensitivityN
    from tests.quantus_metrics.models import pooling_convnet

    model = pooling_convnet()
    generator = torch.Generator().manual_seed(7)
    inputs, saliency = torch.randn(3, 1, 6, 6, generator=generator), torch.randn(3, 6, 6, generator=generator)
    explainer = InputXGradient(reduce="sum")
    for make in (
        lambda chunk: MonotonicityCorrelation(features_in_step=9, nr_samples=3, internal_batch_size=chunk),
        lambda chunk: SensitivityN(steps=2, nr_samples=3, internal_batch_size=chunk),
        lambda chunk: AvgSensitivity(explainer=explainer, nr_samples=3, internal_batch_size=chunk),
        lambda chunk: RegionPerturbation(patch_size=3, order="random", internal_batch_size=chunk),
    ):
        together = make(5)
        together.update(model, inputs, saliency)
        for i in range(3):
            alone = make(None)
            alone.update(model, inputs[i : i + 1], saliency[i : i + 1])
            assert alone.last_values.item() == pytest.approx(together.last_values[i].item(), abs=1e-6)


class Shifted(nn.Module):
    """Linear's scores plus an extra input per sample: f(x, s) = w x + b + s."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = Linear()

    def forward(self, x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + shift.unsqueeze(1)


def test_completeness_scores_a_shared_baseline_once() -> None:
    """A baseline that is the same for every image (zeros, a number, a tensor without a batch axis) is scored
    in one row: B + 1 rows a batch, the same gaps as one baseline per image; per-image baselines and
    forward_args keep 2 B rows."""
    model = Linear()
    inputs = torch.randn(6, 1, 4, 4, generator=torch.Generator().manual_seed(5))
    targets = torch.tensor([0, 1, 2, 0, 1, 2])
    saliency = torch.randn(6, 4, 4, generator=torch.Generator().manual_seed(6))
    rows: list[int] = []
    model.register_forward_pre_hook(lambda module, args: rows.append(args[0].shape[0]))
    black = inputs.flatten(1).amin(dim=1).view(6, 1, 1, 1).expand_as(inputs)
    for substrate, baseline, expected_rows in (
        (0.0, torch.zeros_like(inputs), 7),
        ("zeros", torch.zeros_like(inputs), 7),
        (torch.full((1, 4, 4), 0.5), torch.full_like(inputs, 0.5), 7),
        ("black", black, 12),
    ):
        rows.clear()
        metric = Completeness(substrate=substrate)
        metric.update(model, inputs, saliency, targets)
        assert sum(rows) == expected_rows, substrate
        change = (model(inputs) - model(baseline)).gather(1, targets.unsqueeze(1)).squeeze(1).double()
        assert torch.allclose(metric.last_gaps, saliency.flatten(1).double().sum(dim=1) - change, atol=1e-5)
        per_image = Completeness(substrate=baseline.clone())  # a batch axis of 6: one baseline per image
        per_image.update(model, inputs, saliency, targets)
        assert torch.allclose(per_image.last_gaps, metric.last_gaps, atol=1e-6)
    shifted, shift = Shifted(), torch.arange(6.0)
    shifted.linear.load_state_dict(model.state_dict())
    rows.clear()
    shifted.register_forward_pre_hook(lambda module, args: rows.append(args[0].shape[0]))
    metric = Completeness()
    metric.update(shifted, inputs, saliency, targets, forward_args=shift)
    assert sum(rows) == 12  # each sample's extra input goes with its own baseline
    change = (model(inputs) - model(torch.zeros_like(inputs))).gather(1, targets.unsqueeze(1)).squeeze(1).double()
    assert torch.allclose(metric.last_gaps, saliency.flatten(1).double().sum(dim=1) - change, atol=1e-5)
