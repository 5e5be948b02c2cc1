"""DeepLIFT, DeepLIFT-SHAP, GradientSHAP, Deconvolution: captum parity, closed forms, completeness, ResNets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_xai.explainers.input_space.deeplift import Deconvolution, DeepLift, DeepLiftShap, GradientShap
from lit_xai.explainers.path_baselines import pair_normal
from tests.explainers.attribution_parity.models import one_relu_per_use, residual_net, series_net, small_resnet

captum_attr = pytest.importorskip("captum.attr")


def images(n: int = 3, seed: int = 1) -> Tensor:
    return torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def series(n: int = 3, seed: int = 2) -> Tensor:
    return torch.randn(n, 3, 12, generator=torch.Generator().manual_seed(seed))


# captum's DeepLift is wrong when an activation module and a max pooling module follow each other directly
# (its hooks on consecutive non-linear modules; its attributions then miss summation to delta, ours keep it):
# the parity models put a linear layer between them, and the ResNet is compared in its CIFAR form (no stem max pool).


CASES = [(residual_net, images, torch.tensor([0, 3, 1])), (series_net, series, torch.tensor([2, 0, 1]))]


@pytest.mark.parametrize(("make_model", "make_inputs", "targets"), CASES)
def test_deeplift_matches_captum(make_model, make_inputs, targets) -> None:  # type: ignore[no-untyped-def]
    model, inputs = make_model(), make_inputs()
    baselines = 0.3 * make_inputs(seed=7)
    ours = DeepLift(baselines=baselines, reduce="none")(model, inputs, targets)
    reference = captum_attr.DeepLift(model).attribute(inputs, baselines=baselines, target=targets).detach()
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)
    multipliers = DeepLift(baselines=baselines, multiply_by_inputs=False, reduce="none")(model, inputs, targets)
    reference = captum_attr.DeepLift(model, multiply_by_inputs=False).attribute(inputs, baselines=baselines, target=targets).detach()
    torch.testing.assert_close(multipliers, reference, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("make_model", "make_inputs", "targets"), CASES)
def test_deeplift_sums_to_the_score_difference(make_model, make_inputs, targets) -> None:  # type: ignore[no-untyped-def]
    model, inputs = make_model(), make_inputs()
    baselines = 0.3 * make_inputs(seed=7)
    attributions = DeepLift(baselines=baselines, reduce="none", internal_batch_size=2)(model, inputs, targets)
    with torch.no_grad():
        gap = model(inputs).gather(1, targets[:, None])[:, 0] - model(baselines).gather(1, targets[:, None])[:, 0]
    torch.testing.assert_close(attributions.flatten(1).sum(1), gap, atol=1e-5, rtol=1e-5)


def test_deeplift_on_resnet_with_reused_in_place_relus_matches_captum_on_a_copy_with_one_relu_per_use() -> None:
    model = small_resnet()
    model.maxpool = nn.Identity()  # the CIFAR form (see the note above)
    inputs = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    targets = torch.tensor([1, 4])
    ours = DeepLift(reduce="none")(model, inputs, targets)
    reference = captum_attr.DeepLift(one_relu_per_use(model)).attribute(inputs, baselines=0.0, target=targets).detach()
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours.flatten(1).sum(1), score_gap(model, inputs, torch.zeros_like(inputs), targets), atol=1e-4, rtol=1e-4)
    assert all(not module._forward_hooks and not module._backward_hooks for module in model.modules())


def score_gap(model: nn.Module, inputs: Tensor, baselines: Tensor, targets: Tensor) -> Tensor:
    with torch.no_grad():
        return model(inputs).gather(1, targets[:, None])[:, 0] - model(baselines).gather(1, targets[:, None])[:, 0]


def test_deeplift_on_the_full_resnet_sums_to_the_score_difference() -> None:
    model = small_resnet()  # ReLU (in place, reused) feeding an overlapping 3 x 3 max pool
    inputs = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    baselines = 0.5 * torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    targets = torch.tensor([1, 4])
    ours = DeepLift(baselines=baselines, reduce="none")(model, inputs, targets)
    torch.testing.assert_close(ours.flatten(1).sum(1), score_gap(model, inputs, baselines, targets), atol=1e-4, rtol=1e-4)
    assert all(not module._forward_hooks and not module._backward_hooks for module in model.modules())


def test_deeplift_on_a_linear_model_is_gradient_times_input() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 3)).eval()
    inputs = series(4)
    targets = torch.tensor([0, 1, 2, 1])
    weights = model[1].weight.detach().view(3, 3, 12)
    torch.testing.assert_close(DeepLift(reduce="none")(model, inputs, targets), weights[targets] * inputs)


class FunctionalNet(nn.Module):
    """ResidualNet's layers with activations called as functions (x.relu_(), F.elu, torch.tanh)."""

    def __init__(self, modules: nn.Module) -> None:
        super().__init__()
        self.m = modules

    def forward(self, x: Tensor) -> Tensor:
        m = self.m
        x = m.stem[1](m.stem[0](x)).relu_()
        y = m.bn2(m.conv2(F.elu(m.bn1(m.conv1(x)))))
        z = F.max_pool2d(y + x, 2).flatten(1)
        return m.head[3](torch.tanh(m.head[1](z)))


def test_functional_activations_get_the_rule_too() -> None:
    modules = residual_net()
    inputs, targets = images(), torch.tensor([2, 2, 0])
    baselines = 0.3 * images(seed=7)
    reference = captum_attr.DeepLift(modules).attribute(inputs, baselines=baselines, target=targets).detach()
    ours = DeepLift(baselines=baselines, reduce="none")(FunctionalNet(modules), inputs, targets)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)


class FunctionalSoftmax(nn.Module):
    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x).softmax(dim=1)


@pytest.mark.parametrize("functional", [False, True])
def test_softmax_is_rescaled_as_captum_does_for_one_sample(functional: bool) -> None:
    body = residual_net(seed=4)
    model = FunctionalSoftmax(body) if functional else nn.Sequential(body, nn.Softmax(dim=1)).eval()
    modules = nn.Sequential(body, nn.Softmax(dim=1)).eval()
    inputs, targets = images(seed=5), torch.tensor([1, 3, 0])
    baselines = 0.3 * images(seed=8)
    ours = DeepLift(baselines=baselines, reduce="none")(model, inputs, targets)
    reference = torch.cat([
        captum_attr.DeepLift(modules).attribute(inputs[i : i + 1], baselines=baselines[i : i + 1], target=int(targets[i])).detach()
        for i in range(3)
    ])
    torch.testing.assert_close(ours, reference, atol=1e-6, rtol=1e-5)
    plain = DeepLift(baselines=baselines, reduce="none")(body, inputs, targets)
    assert (ours - plain).abs().max() > 1e-3  # the rule changes the result (it is not the logits' DeepLIFT)
    # per sample: chunks of one give the same maps as one pass of three
    torch.testing.assert_close(DeepLift(baselines=baselines, reduce="none", internal_batch_size=1)(model, inputs, targets), ours)


@pytest.mark.parametrize(("make_model", "make_inputs", "targets"), CASES)
def test_deeplift_shap_matches_captum(make_model, make_inputs, targets) -> None:  # type: ignore[no-untyped-def]
    model, inputs = make_model(), make_inputs()
    bank = make_inputs(4, seed=9)
    ours = DeepLiftShap(baselines=bank, reduce="none", internal_batch_size=5)(model, inputs, targets)
    reference = captum_attr.DeepLiftShap(model).attribute(inputs, baselines=bank, target=targets).detach()
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        expected = model(inputs).gather(1, targets[:, None])[:, 0] - model(bank)[:, targets].mean(0)
    torch.testing.assert_close(ours.flatten(1).sum(1), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("make_model", "make_inputs", "targets"), CASES)
def test_gradient_shap_matches_captum_fed_the_same_draws(make_model, make_inputs, targets, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    model, inputs = make_model(), make_inputs()
    bank = make_inputs(4, seed=9)
    explainer = GradientShap(baselines=bank, samples=6, stdevs=0.2, seed=3, reduce="none", internal_batch_size=4)
    ours = explainer(model, inputs, targets)
    seeds, indices, alphas = explainer.draws(inputs, bank.shape[0])
    batch, samples = inputs.shape[0], explainer.samples
    sample, draw = torch.arange(batch).repeat_interleave(samples), torch.arange(samples).repeat(batch)
    noise = 0.2 * pair_normal(inputs, sample, draw, seeds, stream=4)  # rows in captum's repeat_interleave order
    monkeypatch.setattr(np.random, "choice", lambda n, size: indices.flatten().numpy())
    monkeypatch.setattr(np.random, "uniform", lambda low, high, size: alphas.flatten().double().numpy())
    monkeypatch.setattr(torch, "normal", lambda mean, std: noise)
    reference = captum_attr.GradientShap(model).attribute(inputs, baselines=bank, n_samples=samples, stdevs=0.2, target=targets)
    monkeypatch.undo()
    torch.testing.assert_close(ours, reference.detach(), atol=1e-5, rtol=1e-5)
    again = GradientShap(baselines=bank, samples=6, stdevs=0.2, seed=3, reduce="none", internal_batch_size=1)(model, inputs[1:], targets[1:])
    torch.testing.assert_close(again, ours[1:])  # per-sample draws: the batch and the chunks do not matter


@pytest.mark.parametrize(("make_model", "make_inputs", "targets"), CASES)
def test_deconvolution_matches_captum(make_model, make_inputs, targets) -> None:  # type: ignore[no-untyped-def]
    model, inputs = make_model(), make_inputs()
    ours = Deconvolution(reduce="none")(model, inputs, targets)
    reference = captum_attr.Deconvolution(model).attribute(inputs, target=targets)
    torch.testing.assert_close(ours, reference.detach(), atol=1e-5, rtol=1e-5)


def test_deconvolution_on_resnet_with_reused_relus_matches_captum_on_the_copy() -> None:
    model = small_resnet()
    model.maxpool = nn.Identity()
    inputs = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    targets = torch.tensor([0, 3])
    ours = Deconvolution(reduce="none")(model, inputs, targets)
    reference = captum_attr.Deconvolution(one_relu_per_use(model)).attribute(inputs, target=targets)
    torch.testing.assert_close(ours, reference.detach(), atol=1e-5, rtol=1e-4)


def test_explainers_leave_the_model_untouched_and_run_under_inference_mode() -> None:
    model = residual_net().train()
    inputs = images()
    with torch.inference_mode():
        maps = DeepLift()(model, inputs)
    assert maps.shape == (3, 8, 8) and model.training
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="eps must be"):
        DeepLift(eps=0)
    with pytest.raises(ValueError, match="fixed bank"):
        from lit_xai.explainers.path_baselines import GaussianBaselines

        GradientShap(baselines=GaussianBaselines())(model, inputs)
