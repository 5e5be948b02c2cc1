"""Guided backpropagation and Guided Grad-CAM: hand-computed maps, parity with captum, the explainer contract."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision
from captum.attr import GuidedBackprop as CaptumGuidedBackprop
from captum.attr import GuidedGradCam as CaptumGuidedGradCam
from captum.attr import LayerGradCam as CaptumLayerGradCam
from torch import Tensor, nn

from lit_xai.explainers import GradCAM
from lit_xai.explainers.cam.guided import GuidedBackprop, GuidedGradCAM
from tests.conftest import SmallNet


class GuidedHandModel(nn.Module):
    """conv1 (1x1, 1 -> 2 channels: h0 = x, h1 = 0.5 - x) -> ReLU -> flatten (k, position) -> Linear(8 -> outputs).

    `spatial_dims` 1: inputs (B, 1, 4); 2: inputs (B, 1, 2, 2) (the same four positions in reading order).
    """

    WEIGHTS = torch.tensor(
        [
            [1.0, 2.0, -1.0, 0.5, 3.0, -2.0, 1.0, -1.0],  # class 0: channel 0 then channel 1, positions 0..3
            [-1.0, 1.0, 2.0, -2.0, 1.0, 1.0, -3.0, 2.0],  # class 1
        ]
    )

    def __init__(self, spatial_dims: int = 1, outputs: int = 2, inplace: bool = False) -> None:
        super().__init__()
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv1d
        self.conv1 = conv(1, 2, 1)
        self.relu = nn.ReLU(inplace=inplace)
        self.fc = nn.Linear(8, outputs, bias=False)
        with torch.no_grad():
            self.conv1.weight.copy_(torch.tensor([1.0, -1.0]).view(self.conv1.weight.shape))
            self.conv1.bias.copy_(torch.tensor([0.0, 0.5]))
            self.fc.weight.copy_(self.WEIGHTS[:outputs])

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.relu(self.conv1(x)).flatten(1))


X = torch.tensor([1.0, -2.0, 3.0, 0.25])
# By hand: h0 = x = [1, -2, 3, 0.25] (active [1, 0, 1, 1]); h1 = 0.5 - x = [-0.5, 2.5, -2.5, 0.25] (active [0, 1, 0, 1]).
# dy/dx_t = (+1) * R(W[k=0, t]) * 1[h0_t > 0] + (-1) * R(W[k=1, t]) * 1[h1_t > 0]
# (+1, -1 are conv1's weights; R = identity for the plain gradient, ReLU for guided backprop).
# class 0, W = [1, 2, -1, 0.5 | 3, -2, 1, -1]:
#   plain : [1*1 - 3*0, 2*0 - (-2)*1, -1*1 - 1*0, 0.5*1 - (-1)*1] = [1, 2, -1, 1.5]
#   guided: [1*1 - 3*0, 2*0 - 0*1,    0*1 - 1*0,  0.5*1 - 0*1]    = [1, 0, 0, 0.5]
#   (position 2: the plain gradient -1 comes through an active ReLU with a negative upstream gradient, clamped to 0)
# class 1, W = [-1, 1, 2, -2 | 1, 1, -3, 2]:
#   plain : [-1*1 - 1*0, 1*0 - 1*1, 2*1 - (-3)*0, -2*1 - 2*1] = [-1, -1, 2, -4]
#   guided: [ 0*1 - 1*0, 1*0 - 1*1, 2*1 - 0*0,     0*1 - 2*1] = [ 0, -1, 2, -2]
#   (negative guided values are fine: conv1's weight -1 lies below the ReLU and is not clamped)
# logits: y0 = (1 - 3 + 0.125) + (-5 - 0.25) = -7.125, y1 = (-1 + 6 - 0.5) + (2.5 + 0.5) = 7.5 -> argmax is class 1
PLAIN = torch.tensor([[1.0, 2.0, -1.0, 1.5], [-1.0, -1.0, 2.0, -4.0]])
GUIDED = torch.tensor([[1.0, 0.0, 0.0, 0.5], [0.0, -1.0, 2.0, -2.0]])
# Grad-CAM at conv1 (h, before the ReLU): dy/dh_k,t = W[k, t] * 1[h_k,t > 0]
# class 0: mean_t over channel 0 [1, 0, -1, 0.5] = 0.125, channel 1 [0, -2, 0, -1] = -0.75
#          L = ReLU(0.125 h0 - 0.75 h1) = ReLU([0.5, -2.125, 2.25, -0.15625]) = [0.5, 0, 2.25, 0]
# class 1: channel 0 [-1, 0, 2, -2] -> -0.25, channel 1 [0, 1, 0, 2] -> 0.75
#          L = ReLU(-0.25 h0 + 0.75 h1) = ReLU([-0.625, 2.375, -2.625, 0.125]) = [0, 2.375, 0, 0.125]
# Guided Grad-CAM = GUIDED * L: class 0 [0.5, 0, 0, 0], class 1 [0, -2.375, 0, -0.25]
GUIDED_GRADCAM = torch.tensor([[0.5, 0.0, 0.0, 0.0], [0.0, -2.375, 0.0, -0.25]])


def hand_inputs(spatial_dims: int, batch: int = 2) -> Tensor:
    shape = (1, 4) if spatial_dims == 1 else (1, 2, 2)
    return X.view(1, *shape).expand(batch, *shape).clone()


@pytest.mark.parametrize("spatial_dims", [1, 2])
@pytest.mark.parametrize("inplace", [False, True])
def test_guided_backprop_equals_hand_computation(spatial_dims: int, inplace: bool) -> None:
    model = GuidedHandModel(spatial_dims, inplace=inplace).eval()
    inputs = hand_inputs(spatial_dims)
    saliency = GuidedBackprop(reduce="none")(model, inputs, torch.tensor([0, 1]))
    assert saliency.shape == inputs.shape and saliency.dtype == torch.float32
    torch.testing.assert_close(saliency.reshape(2, 4), GUIDED, rtol=0, atol=1e-7)
    # the plain gradient differs where guided backprop clamps (positions 1, 2, 3 for class 0)
    plain_inputs = inputs.clone().requires_grad_(True)
    (plain,) = torch.autograd.grad(model(plain_inputs).gather(1, torch.tensor([[0], [1]])).sum(), plain_inputs)
    torch.testing.assert_close(plain.reshape(2, 4), PLAIN, rtol=0, atol=1e-7)
    assert model.relu.inplace is inplace


def test_default_target_is_the_argmax_and_a_regressor_explains_its_output() -> None:
    inputs = hand_inputs(1, batch=1)
    torch.testing.assert_close(GuidedBackprop("none")(GuidedHandModel(), inputs).reshape(4), GUIDED[1], rtol=0, atol=1e-7)
    regressor = GuidedHandModel(outputs=1).eval()  # y = class 0's logit
    torch.testing.assert_close(GuidedBackprop("none")(regressor, inputs).reshape(4), GUIDED[0], rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match="one output"):
        GuidedBackprop()(regressor, inputs, torch.tensor([1]))


@pytest.mark.parametrize("spatial_dims", [1, 2])
def test_guided_gradcam_equals_hand_computation(spatial_dims: int) -> None:
    model = GuidedHandModel(spatial_dims).eval()
    inputs = hand_inputs(spatial_dims)
    cam = GradCAM("conv1", upsample="none")(model, inputs, torch.tensor([0, 1]))
    torch.testing.assert_close(cam.reshape(2, 4), torch.tensor([[0.5, 0.0, 2.25, 0.0], [0.0, 2.375, 0.0, 0.125]]))
    saliency = GuidedGradCAM("conv1", upsample="nearest", reduce="none")(model, inputs, torch.tensor([0, 1]))
    assert saliency.shape == inputs.shape
    torch.testing.assert_close(saliency.reshape(2, 4), GUIDED_GRADCAM, rtol=0, atol=1e-7)
    default = GuidedGradCAM("conv1")(model, inputs)  # argmax (class 1) for both samples, abs_sum over one channel
    torch.testing.assert_close(default.reshape(2, 4), GUIDED_GRADCAM[1].abs().expand(2, 4), rtol=0, atol=1e-7)


def test_functional_relu_is_not_guided() -> None:
    class Functional(GuidedHandModel):
        def forward(self, x: Tensor) -> Tensor:
            return self.fc(F.relu(self.conv1(x)).flatten(1))

    saliency = GuidedBackprop("none")(Functional().eval(), hand_inputs(1), torch.tensor([0, 1]))
    torch.testing.assert_close(saliency.reshape(2, 4), PLAIN, rtol=0, atol=1e-7)  # as documented (and as in captum)


# ---------------------------------------------------------------------------------------------- parity with captum


class Series(nn.Module):
    """A small Conv1d classifier for inputs (B, 3, T); the Grad-CAM layer works at T / 2."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(3, 8, 5, padding=2), nn.ReLU(inplace=True),
            nn.Conv1d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(16, 16, 3, padding=1), nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(16, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def resnet18() -> tuple[nn.Module, str, Tensor]:
    torch.manual_seed(0)
    inputs = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    return torchvision.models.resnet18(num_classes=10).eval(), "layer4", inputs


def vgg11() -> tuple[nn.Module, str, Tensor]:
    torch.manual_seed(0)
    model = torchvision.models.vgg11(num_classes=10).eval()
    assert isinstance(model.features[19], nn.ReLU)  # the last conv's ReLU (features.18 is the last Conv2d)
    return model, "features.19", torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def series() -> tuple[nn.Module, str, Tensor]:
    torch.manual_seed(0)
    return Series().eval(), "features.5", torch.randn(2, 3, 32, generator=torch.Generator().manual_seed(1))


CASES = {"resnet18": resnet18, "vgg11": vgg11, "conv1d": series}
TARGETS = torch.tensor([3, 7])


@pytest.fixture(scope="module", params=list(CASES))
def case(request: pytest.FixtureRequest) -> tuple[nn.Module, str, Tensor]:
    return CASES[request.param]()


def assert_parity(ours: Tensor, reference: Tensor) -> None:
    """Absolute agreement to 1e-4, and relative to the map's scale too (random-weight maps can be tiny)."""
    assert ours.shape == reference.shape
    scale = reference.abs().max().item()
    assert scale > 0 and (reference != 0).float().mean() > 0.05, "the reference map is degenerate"
    error = (ours - reference).abs().max().item()
    assert error <= 1e-4 and error <= 1e-4 * scale, (error, scale)


def captum_call(function, *args, **kwargs) -> Tensor:  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # captum warns that it sets backward hooks on ReLUs
        return function(*args, **kwargs).detach()


def test_guided_backprop_matches_captum(case: tuple[nn.Module, str, Tensor]) -> None:
    # resnet18 and the Conv1d model use ReLU(inplace=True) (resnet18 also reuses one ReLU module twice per
    # block); captum's ReLU hooks clone the ReLU's input, so captum copes with them and both run on one model.
    model, _, inputs = case
    reference = captum_call(CaptumGuidedBackprop(model).attribute, inputs.clone(), target=TARGETS)
    ours = GuidedBackprop(reduce="none")(model, inputs, TARGETS)
    assert_parity(ours, reference)
    plain_inputs = inputs.clone().requires_grad_(True)
    (plain,) = torch.autograd.grad(model(plain_inputs).gather(1, TARGETS.view(-1, 1)).sum(), plain_inputs)
    assert (ours - plain).abs().max() > 0.1 * plain.abs().max()  # the guidance changes the map


def test_gradcam_matches_captum(case: tuple[nn.Module, str, Tensor]) -> None:
    model, layer, inputs = case
    captum = CaptumLayerGradCam(model, model.get_submodule(layer))
    reference = captum_call(captum.attribute, inputs.clone(), target=TARGETS, relu_attributions=True).squeeze(1)
    assert_parity(GradCAM(layer, upsample="none")(model, inputs, TARGETS), reference)


def test_guided_gradcam_matches_captum(case: tuple[nn.Module, str, Tensor]) -> None:
    model, layer, inputs = case
    captum = CaptumGuidedGradCam(model, model.get_submodule(layer))
    reference = captum_call(captum.attribute, inputs.clone(), target=TARGETS)  # interpolate_mode="nearest"
    assert_parity(GuidedGradCAM(layer, upsample="nearest", reduce="none")(model, inputs, TARGETS), reference)
    if inputs.ndim == 4:  # captum's "bilinear" is F.interpolate(align_corners=False), as ours
        reference = captum_call(captum.attribute, inputs.clone(), target=TARGETS, interpolate_mode="bilinear")
        assert_parity(GuidedGradCAM(layer, upsample="bilinear", reduce="none")(model, inputs, TARGETS), reference)
    assert all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks for m in model.modules())


# ---------------------------------------------------------------------------------------------- the explainer contract


EXPLAINERS = [GuidedBackprop, lambda reduce="abs_sum": GuidedGradCAM("features.3", reduce=reduce)]


def no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks for m in model.modules())


@pytest.mark.parametrize("make", EXPLAINERS, ids=["guided_backprop", "guided_gradcam"])
def test_model_state_is_left_untouched(small_net: SmallNet, make) -> None:  # type: ignore[no-untyped-def]
    small_net.train()
    small_net.features[0].eval()  # a mixed state must come back as it was
    for p in small_net.parameters():
        p.grad = torch.full_like(p, 7.0)
    small_net.head[3].weight.requires_grad_(False)
    buffers = {n: b.clone() for n, b in small_net.named_buffers()}
    modes = {n: m.training for n, m in small_net.named_modules()}
    saliency = make()(small_net, torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 0]))
    assert saliency.shape == (4, 8, 8) and saliency.abs().sum() > 0
    assert {n: m.training for n, m in small_net.named_modules()} == modes
    assert all(torch.equal(p.grad, torch.full_like(p, 7.0)) for p in small_net.parameters())
    assert not small_net.head[3].weight.requires_grad and small_net.head[3].bias.requires_grad
    assert all(torch.equal(b, buffers[n]) for n, b in small_net.named_buffers())
    assert [m.inplace for m in small_net.modules() if isinstance(m, nn.ReLU)] == [True, True]
    assert no_hooks(small_net)


def test_hooks_removed_when_the_model_raises() -> None:
    class Failing(SmallNet):
        def forward(self, x: Tensor) -> Tensor:
            self.features(x)  # the ReLUs run (and are guided) first
            raise RuntimeError("boom")

    torch.manual_seed(0)
    model = Failing().eval()
    for explainer in (GuidedBackprop(), GuidedGradCAM("features.3")):
        with pytest.raises(ValueError, match="Failing failed on inputs.*boom"):
            explainer(model, torch.randn(2, 3, 8, 8))
        assert no_hooks(model)
    working = SmallNet().eval()
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):  # raised after the guided forward pass
        GuidedGradCAM("features.3")(working, torch.randn(2, 3, 8, 8), torch.tensor([0, 5]))
    assert no_hooks(working)


@pytest.mark.parametrize("make", EXPLAINERS, ids=["guided_backprop", "guided_gradcam"])
def test_same_maps_under_inference_mode_no_grad_and_frozen(small_net: SmallNet, make) -> None:  # type: ignore[no-untyped-def]
    inputs = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    small_net.eval()
    expected = make()(small_net, inputs)
    assert expected.abs().sum() > 0
    with torch.inference_mode():
        inference = make()(small_net, inputs.clone())
    with torch.no_grad():
        no_grad = make()(small_net, inputs)
    small_net.requires_grad_(False)
    frozen = make()(small_net, inputs)
    assert not any(p.requires_grad for p in small_net.parameters())
    for saliency in (inference, no_grad, frozen):
        assert torch.equal(saliency, expected)


def test_inplace_relus_give_the_same_maps(small_net: SmallNet) -> None:
    inputs = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    small_net.eval()
    inplace = [GuidedBackprop("none")(small_net, inputs), GuidedGradCAM("features.0", reduce="none")(small_net, inputs)]
    for index in (2, 4):
        small_net.features[index] = nn.ReLU(inplace=False)
    plain = [GuidedBackprop("none")(small_net, inputs), GuidedGradCAM("features.0", reduce="none")(small_net, inputs)]
    for a, b in zip(inplace, plain):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_inplace_operation_on_a_relu_output() -> None:
    class Skip(nn.Module):
        """h = ReLU(conv(x)), then h += conv(x) in place (a pre-activation skip) or out of place."""

        def __init__(self) -> None:
            super().__init__()
            self.conv, self.relu, self.fc = nn.Conv1d(2, 3, 1), nn.ReLU(inplace=True), nn.Linear(12, 2)
            self.in_place = True

        def forward(self, x: Tensor) -> Tensor:
            h = self.relu(self.conv(x))
            h = h.add_(self.conv(x)) if self.in_place else h + self.conv(x)
            return self.fc(h.flatten(1))

    torch.manual_seed(0)
    model, inputs = Skip().eval(), torch.randn(2, 2, 4, generator=torch.Generator().manual_seed(5))
    in_place = GuidedBackprop("none")(model, inputs, torch.tensor([0, 1]))
    model.in_place = False
    out_of_place = GuidedBackprop("none")(model, inputs, torch.tensor([0, 1]))
    assert in_place.abs().sum() > 0
    torch.testing.assert_close(in_place, out_of_place, rtol=0, atol=0)


@pytest.mark.parametrize("make", EXPLAINERS, ids=["guided_backprop", "guided_gradcam"])
def test_every_reduction_of_the_channels(small_net: SmallNet, make) -> None:  # type: ignore[no-untyped-def]
    inputs = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    small_net.eval()
    full = make(reduce="none")(small_net, inputs, torch.tensor([1, 2]))
    assert full.shape == (2, 3, 8, 8) and (full < 0).any() and (full > 0).any()
    expected = {"sum": full.sum(1), "abs_sum": full.abs().sum(1), "max_abs": full.abs().amax(1)}
    for reduce, value in expected.items():
        torch.testing.assert_close(make(reduce=reduce)(small_net, inputs, torch.tensor([1, 2])), value, rtol=0, atol=1e-7)
    # by hand on one position: channels (a, b, c) -> sum a + b + c, abs_sum |a| + |b| + |c|, max_abs max |.|
    a, b, c = full[0, :, 4, 4].tolist()
    reduced = {reduce: make(reduce=reduce)(small_net, inputs, torch.tensor([1, 2]))[0, 4, 4].item() for reduce in expected}
    by_hand = {"sum": a + b + c, "abs_sum": abs(a) + abs(b) + abs(c), "max_abs": max(abs(a), abs(b), abs(c))}
    assert reduced == pytest.approx(by_hand, rel=1e-6)
    torch.testing.assert_close(make()(small_net, inputs, torch.tensor([1, 2])), expected["abs_sum"], rtol=0, atol=1e-7)


def test_bad_arguments_get_clear_errors(small_net: SmallNet) -> None:
    with pytest.raises(ValueError, match=r"reduce must be one of \('none', 'sum', 'abs_sum', 'max_abs'\), got 'mean'"):
        GuidedBackprop(reduce="mean")
    with pytest.raises(ValueError, match="reduce must be one of"):
        GuidedGradCAM("features.3", reduce="abs")
    with pytest.raises(ValueError, match="upsample='none' is not possible"):
        GuidedGradCAM("features.3", upsample="none")
    with pytest.raises(ValueError, match="upsample must be one of"):
        GuidedGradCAM("features.3", upsample="cubic")
    with pytest.raises(ValueError, match=r"'feature\.3'.*close matches: features\.3"):
        GuidedGradCAM("feature.3")(small_net.eval(), torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"expected \(1, 8, 8\).*upsample callable"):
        GuidedGradCAM("features.3", upsample=lambda maps, size: maps[..., :4, :4])(small_net.eval(), torch.randn(1, 3, 8, 8))
    assert repr(GuidedGradCAM("features.3")) == "GuidedGradCAM(target_layer='features.3', upsample='bilinear', reshape=None, reduce='abs_sum')"
