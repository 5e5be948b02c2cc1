"""LRP: hand-computed rules, LRP-0 = gradient x input, conservation, sum rules, and parity with zennit 0.5
(its composites and canonizers) on torchvision VGG-11 and ResNet-18 in float64."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet18, vgg11_bn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from lit_xai.explainers import LRP, LayerLRP
from lit_xai.explainers.registry import REGISTRY, default_explainers
from tests.explainers.lrp.zennit_reference import COMPOSITES as ZENNIT_COMPOSITES
from tests.explainers.lrp.zennit_reference import zennit_composite

COMPOSITES = list(ZENNIT_COMPOSITES)


def one_unit(weights: list[float]) -> nn.Module:
    """f(x) = sum_j w_j x_j over two input channels of a (1, 2, 1) series: one unit, no bias."""
    model = nn.Sequential(nn.Conv1d(2, 1, 1, bias=False), nn.Flatten())
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(weights).view(1, 2, 1))
    return model.double().eval()


# x = (1, 2), w = (3, -1): contributions (3, -2), z = f(x) = 1 (the output relevance)
HAND = {
    "zero": ({}, [3.0, -2.0]),
    "epsilon": ({"epsilon": 0.5}, [3 / 1.5, -2 / 1.5]),
    "gamma": ({"gamma": 0.25}, [3.75 / 1.75, -2 / 1.75]),
    "alpha_beta": ({"alpha": 2.0, "beta": 1.0}, [2.0, -1.0]),  # 2 * 3/3 and -1 * (-2)/(-2)
    "z_plus": ({}, [1.0, 0.0]),
    "flat": ({}, [0.5, 0.5]),
    "w_square": ({}, [0.9, 0.1]),  # w^2 / sum w^2 = 9/10, 1/10
    "z_box": ({"low": -1.0, "high": 3.0}, [6 / 7, 1 / 7]),  # (x w - l w+ - h w-) / 7
}


@pytest.mark.parametrize("rule", HAND)
def test_each_rule_on_one_unit_by_hand(rule: str) -> None:
    kwargs, expected = HAND[rule]
    inputs = torch.tensor([[[1.0], [2.0]]], dtype=torch.float64)
    relevance = LRP(rule, reduce="none", **kwargs)(one_unit([3.0, -1.0]), inputs)
    torch.testing.assert_close(relevance.view(-1).double(), torch.tensor(expected, dtype=torch.float64), rtol=1e-5, atol=1e-6)


def test_relu_passes_relevance_to_inactive_units() -> None:
    """x = 1; units z = (2, -1), a = ReLU(z) = (2, 0); f = a1 + a2 = 2. The flat rule on the top layer gives
    each unit f / 2 = 1, the ReLU passes it (LRP's neuron = ReLU o linear; the plain gradient would drop the
    inactive unit's share), LRP-0 below: R = 1 * 2/2 * 1 + 1 * (-1)/(-1) * 1 = 2."""
    model = nn.Sequential(nn.Conv1d(1, 2, 1, bias=False), nn.ReLU(), nn.Conv1d(2, 1, 1, bias=False), nn.Flatten())
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([2.0, -1.0]).view(2, 1, 1))
        model[2].weight.fill_(1.0)
    relevance = LRP("zero", rules={"2": "flat"}, stabilizer=0.0)(model.eval(), torch.ones(1, 1, 1))
    assert relevance.item() == pytest.approx(2.0, rel=1e-6)


class BiasFreeNet(nn.Module):
    def __init__(self, bias: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1, bias=bias), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 8, 3, padding=1, bias=bias), nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(8 * 4 * 4, 16, bias=bias), nn.ReLU(), nn.Linear(16, 4, bias=bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def test_lrp_zero_is_gradient_times_input_without_biases() -> None:
    torch.manual_seed(0)
    model = BiasFreeNet().double().eval()
    inputs = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    targets = torch.tensor([0, 2, 3])
    relevance = LRP("zero", reduce="none")(model, inputs, targets)
    x = inputs.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(model(x).gather(1, targets[:, None]).sum(), x)
    torch.testing.assert_close(relevance.double(), (gradient * inputs).float().double(), rtol=1e-5, atol=1e-7)
    # conservation: sum_d R_d = f(x) for LRP-0 and LRP-epsilon with epsilon -> 0
    logits = model(inputs).gather(1, targets[:, None]).squeeze(1)
    for explainer in (LRP("zero"), LRP("epsilon", epsilon=1e-9)):
        totals = explainer(model, inputs, targets).double().sum(dim=(1, 2))
        torch.testing.assert_close(totals, logits, rtol=1e-4, atol=0)


def test_epsilon_approaches_lrp_zero() -> None:
    torch.manual_seed(1)
    model = BiasFreeNet(bias=True).double().eval()
    inputs = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    zero = LRP("zero", reduce="none")(model, inputs).double()
    gaps = [float((LRP("epsilon", epsilon=eps, reduce="none")(model, inputs).double() - zero).abs().max()) for eps in (1e-1, 1e-3, 1e-5, 1e-9)]
    assert gaps[0] > gaps[1] > gaps[2] > gaps[3]
    assert gaps[3] < 1e-6 * float(zero.abs().max()) and gaps[0] > 1e-3 * float(zero.abs().max())


def tiny_resnet(block: type, zero_biases: bool) -> nn.Module:
    """A torchvision ResNet with one block per stage; BatchNorm with non-trivial statistics (zero means and
    shifts when `zero_biases`, so the merged layers have no bias), tiny BatchNorm eps (see `prepare`)."""
    torch.manual_seed(2)
    model = prepare(ResNet(block, [1, 1, 1, 1], num_classes=5))
    if zero_biases:
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.zero_()
                module.bias.data.zero_()
        model.fc.bias.data.zero_()
    return model


def test_conservation_through_residual_blocks_and_pooling() -> None:
    model = tiny_resnet(BasicBlock, zero_biases=True)
    inputs = torch.randn(2, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    logits = model(inputs).max(dim=1).values
    totals = LRP("epsilon", epsilon=1e-9, stabilizer=1e-9)(model, inputs).double().sum(dim=(1, 2))
    torch.testing.assert_close(totals, logits, rtol=1e-4, atol=0)
    at_layer = LayerLRP("layer3", "epsilon", epsilon=1e-9, stabilizer=1e-9, upsample="none")(model, inputs).double().sum(dim=(1, 2))
    torch.testing.assert_close(at_layer, logits, rtol=1e-4, atol=0)


def test_layer_relevance_of_a_merged_conv_is_read_after_its_batchnorm() -> None:
    model = tiny_resnet(BasicBlock, zero_biases=False)
    inputs = torch.randn(2, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(11))
    at_conv = LayerLRP("layer2.0.conv2", upsample="none")(model, inputs)
    torch.testing.assert_close(at_conv, LayerLRP("layer2.0.bn2", upsample="none")(model, inputs))
    assert at_conv.shape == (2, 4, 4) and at_conv.abs().sum() > 0
    with pytest.raises(ValueError, match="not \\(B, K, \\*spatial\\)"):
        LayerLRP("fc")(model, inputs)


@pytest.mark.parametrize("rule, alpha, beta", [("z_plus", 1.0, 0.0), ("alpha_beta", 2.0, 1.0), ("alpha_beta", 3.0, 2.0)])
def test_z_plus_and_alpha_beta_sum_rules(rule: str, alpha: float, beta: float) -> None:
    """Bias-free: a z-plus / alpha-beta layer hands on exactly (alpha - beta) = 1 times the relevance of its
    outputs (every unit here has positive and negative contributions)."""
    torch.manual_seed(4)
    model = BiasFreeNet().double().eval()
    inputs = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    rules = {"features.3": rule, "head.2": "zero", "head.4": "zero"}
    settings = dict(alpha=alpha, beta=beta, stabilizer=1e-12, rules=rules)
    upper = LayerLRP("features.3", "epsilon", reduce="sum", upsample="none", **settings)
    lower = LayerLRP("features.2", "epsilon", reduce="sum", upsample="none", **settings)
    above, below = upper(model, inputs).double().sum(dim=(1, 2)), lower(model, inputs).double().sum(dim=(1, 2))
    torch.testing.assert_close(below, above, rtol=1e-6, atol=0)


def prepare(model: nn.Module) -> nn.Module:
    """Eval-mode float64 model whose BatchNorms have random statistics and affine parameters.

    BatchNorm eps is set to 1e-12: zennit 0.5's merge leaves the BatchNorm computing x / sqrt(1 + eps) after
    merging, a factor 1/sqrt(1 + eps) per merged layer in its forward pass (ours merges exactly); with a tiny
    eps that factor is 1 to double precision.
    """
    generator = torch.Generator().manual_seed(5)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.2)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.2)
            module.eps = 1e-12
    return model.double().eval()


def small_vgg11() -> nn.Module:
    """torchvision VGG-11 (with BatchNorm), its features and 7x7 adaptive pooling as they are; the classifier
    keeps its structure (Linear-ReLU-Dropout twice, then Linear) with 64 hidden units instead of 4096 so the
    float64 test stays small."""
    torch.manual_seed(6)
    with torch.device("meta"):  # the 25088 x 4096 classifier is never allocated
        model = vgg11_bn(num_classes=10)
    model.features = model.features.to_empty(device="cpu")
    for module in model.features.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    model.classifier = nn.Sequential(
        nn.Linear(512 * 7 * 7, 64), nn.ReLU(True), nn.Dropout(), nn.Linear(64, 64), nn.ReLU(True), nn.Dropout(), nn.Linear(64, 10)
    )
    return prepare(model)


def small_resnet18() -> nn.Module:
    torch.manual_seed(7)
    return prepare(resnet18(num_classes=10))


def zennit_relevance(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, name: str, low: object, high: object) -> torch.Tensor:
    """zennit's map for a one-hot output relevance times the target logit (our output relevance f(x))."""
    from zennit.attribution import Gradient

    composite = zennit_composite(model, name, low, high)
    logits = model(inputs).gather(1, targets[:, None]).squeeze(1)
    one_hot = torch.eye(10, dtype=inputs.dtype)[targets]
    with Gradient(model=model, composite=composite) as attributor:
        _, relevance = attributor(inputs, one_hot)
    return relevance * logits.view(-1, 1, 1, 1)


@pytest.mark.parametrize("build", [small_vgg11, small_resnet18], ids=["vgg11_bn", "resnet18"])
def test_parity_with_zennit_for_every_composite(build) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("zennit")
    model = build()
    inputs = torch.randn(1, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    targets = torch.tensor([3])
    low = torch.tensor([-2.1, -2.0, -1.8], dtype=torch.float64).view(1, 3, 1, 1)
    high = torch.tensor([2.2, 2.4, 2.6], dtype=torch.float64).view(1, 3, 1, 1)
    state = {key: value.clone() for key, value in model.state_dict().items()}
    for name in COMPOSITES:
        bounds = {"low": low, "high": high} if name == "epsilon_gamma_box" else {}
        ours = LRP(name, reduce="none", **bounds)(model, inputs, targets).double()
        reference = zennit_relevance(model, inputs, targets, name, low, high)
        error = float((ours - reference.detach()).abs().max() / reference.detach().abs().max())
        assert error < 1e-4, f"{name}: relative error {error:.2e}"
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_parity_with_zennit_on_bottleneck_blocks_and_default_box_bounds() -> None:
    """torchvision Bottleneck blocks (ResNet-50's; one with a downsampling shortcut) with epsilon_gamma_box;
    `low`/`high` None = each sample's per-channel minimum and maximum, given to zennit as the same tensors."""
    pytest.importorskip("zennit")
    torch.manual_seed(9)
    shortcut = nn.Sequential(nn.Conv2d(16, 32, 1, stride=2, bias=False), nn.BatchNorm2d(32))
    model = prepare(nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
        Bottleneck(16, 8, stride=2, downsample=shortcut), Bottleneck(32, 8),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    ))
    inputs = torch.randn(2, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    targets = torch.tensor([1, 7])
    low, high = inputs.amin(dim=(2, 3), keepdim=True), inputs.amax(dim=(2, 3), keepdim=True)
    ours = LRP("epsilon_gamma_box", reduce="none")(model, inputs, targets).double()
    reference = zennit_relevance(model, inputs, targets, "epsilon_gamma_box", low, high)
    assert float((ours - reference.detach()).abs().max() / reference.detach().abs().max()) < 1e-4


def test_rule_overrides_by_layer_name() -> None:
    torch.manual_seed(10)
    model = BiasFreeNet(bias=True).double().eval()
    inputs = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    box = LRP("epsilon_gamma_box", low=-3.0, high=3.0)(model, inputs)
    by_name = LRP("gamma", low=-3.0, high=3.0, rules={"features.0": "z_box", "head.2": "epsilon", "head.4": "epsilon"})(model, inputs)
    torch.testing.assert_close(by_name, box)
    assert not torch.allclose(LRP("gamma", rules={"features.0": "z_box"}, low=-3.0, high=3.0)(model, inputs), box)
    with pytest.raises(ValueError, match="features.O.*close matches: .*features.0"):
        LRP(rules={"features.O": "flat"})(model, inputs)
    with pytest.raises(ValueError, match="rules maps layer names"):
        LRP(rules={"features.0": "magic"})
    with pytest.raises(ValueError, match="alpha - beta = 1"):
        LRP(alpha=2.0, beta=2.0)


def test_unsupported_layer_is_named_and_the_model_is_left_clean() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GELU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()
    with pytest.raises(ValueError, match=r"no rule for layer '1' \(GELU\)"):
        LRP()(model, torch.randn(1, 3, 8, 8))
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert all(p.requires_grad and p.grad is None for p in model.parameters())
    assert "lrp" not in default_explainers(model)


def test_registered_for_models_with_conv_or_linear_and_relu() -> None:
    assert "lrp" in REGISTRY
    assert "lrp" in default_explainers(BiasFreeNet())
    assert "lrp" not in default_explainers(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)))


def test_derived_weights_follow_in_place_updates_conversions_and_copies() -> None:
    """One explainer keeps the weights its rules derive between calls; an optimiser-style in-place update,
    a BatchNorm statistic update and a dtype conversion are seen (same map as a new explainer), and a
    deep copy or pickle of the explainer starts without them."""
    import copy
    import pickle

    model = tiny_resnet(BasicBlock, zero_biases=False)
    inputs = torch.randn(1, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(12))
    for name in ("epsilon_gamma_box", "epsilon_alpha2_beta1"):
        explainer = LRP(name, reduce="none")
        first = explainer(model, inputs)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.mul_(0.9).add_(0.01)
            model.layer1[0].bn1.running_var.mul_(1.5)
        second = explainer(model, inputs)
        assert torch.equal(second, LRP(name, reduce="none")(model, inputs))
        assert not torch.allclose(first, second)
        for clone in (copy.deepcopy(explainer), pickle.loads(pickle.dumps(explainer))):
            assert torch.equal(clone(model, inputs), second)
    explainer = LRP("epsilon_plus", reduce="none")
    explainer(model, inputs)
    single = copy.deepcopy(model).float()
    # float32 on oneDNN: two calls may sum in another order (3.7e-8 relative seen; exact equality failed about
    # every other run); weights cached from the float64 model would be off by far more, or fail on the dtype
    fresh = LRP("epsilon_plus", reduce="none")(single, inputs.float())
    torch.testing.assert_close(explainer(single, inputs.float()), fresh, rtol=1e-6, atol=1e-6 * float(fresh.abs().max()))


@pytest.mark.parametrize("composite", ["epsilon_gamma_box", "epsilon_alpha2_beta1", "epsilon_plus"])
def test_grouped_convolution_equals_its_block_diagonal_dense_form(composite: str) -> None:
    """A grouped convolution and the dense one with its block-diagonal weights compute the same, and the
    z_box, gamma, alpha-beta and z-plus rules give zero weights no share: same relevance (the grouped layers
    take the two-call paths, the dense ones the stacked ones; the first layer sees inputs of both signs)."""
    torch.manual_seed(13)
    grouped = nn.Sequential(
        nn.Conv2d(4, 6, 3, padding=1, groups=2), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1, groups=3), nn.ReLU(),
        nn.Flatten(), nn.Linear(6 * 5 * 5, 3),
    ).double().eval()
    dense = nn.Sequential(
        nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 5 * 5, 3)
    ).double().eval()
    with torch.no_grad():
        for index in (0, 2):
            conv, full = grouped[index], dense[index]
            full.weight.zero_()
            size_in, size_out = conv.in_channels // conv.groups, conv.out_channels // conv.groups
            for group in range(conv.groups):
                rows, cols = slice(group * size_out, (group + 1) * size_out), slice(group * size_in, (group + 1) * size_in)
                full.weight[rows, cols] = conv.weight[rows]
            full.bias.copy_(conv.bias)
        dense[5].load_state_dict(grouped[5].state_dict())
    inputs = torch.randn(2, 4, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(14))
    torch.testing.assert_close(dense(inputs), grouped(inputs))
    explainer = LRP(composite, reduce="none", **({"low": -3.0, "high": 3.0} if composite == "epsilon_gamma_box" else {}))
    torch.testing.assert_close(explainer(grouped, inputs), explainer(dense, inputs), rtol=1e-5, atol=1e-7)
