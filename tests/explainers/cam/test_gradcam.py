"""Grad-CAM against maps computed by hand, and the explainer contract (state, modes, errors)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_xai.explainers import GradCAM
from tests.conftest import HandModel, SmallNet

X = torch.tensor([[1.0, -2.0], [3.0, 0.5]])
# By hand (see HandModel): A0 = x, A1 = 0.5 - x; y = mean_ij(V @ ReLU(A)), V = [[1, 2], [-1, 1]].
# class 0: dy/dA0 = 1/4 * [A0 > 0] -> mean 3/16; dy/dA1 = 2/4 * [A1 > 0] -> mean 1/8
#          map = ReLU(3/16 A0 + 1/8 A1) = [[0.125, 0], [0.25, 0.09375]]
# class 1: weights -3/16 and 1/16 -> map = ReLU(-3/16 A0 + 1/16 A1) = [[0, 0.53125], [0, 0]]
CAM_CLASS_0 = torch.tensor([[0.125, 0.0], [0.25, 0.09375]])
CAM_CLASS_1 = torch.tensor([[0.0, 0.53125], [0.0, 0.0]])


def test_gradcam_equals_hand_computation_with_per_sample_targets(hand_model: HandModel) -> None:
    inputs = X.expand(2, 1, 2, 2).clone()
    maps = GradCAM("conv1", upsample="none")(hand_model, inputs, torch.tensor([0, 1]))
    assert maps.shape == (2, 2, 2) and maps.dtype == torch.float32
    torch.testing.assert_close(maps[0], CAM_CLASS_0, rtol=0, atol=1e-7)
    torch.testing.assert_close(maps[1], CAM_CLASS_1, rtol=0, atol=1e-7)


def test_default_target_is_the_argmax_class(hand_model: HandModel) -> None:
    # logits: class 0 = 2.375, class 1 = -0.5
    maps = GradCAM("conv1", upsample="none")(hand_model, X.view(1, 1, 2, 2))
    torch.testing.assert_close(maps[0], CAM_CLASS_0, rtol=0, atol=1e-7)


def test_gradcam_on_time_series_and_upsampling() -> None:
    model = HandModel(spatial_dims=1).eval()
    series = X.reshape(1, 1, 4)
    maps = GradCAM("conv1", upsample="none")(model, series, 0)
    # 1-D: the same positions, so the same values in reading order
    torch.testing.assert_close(maps[0], CAM_CLASS_0.flatten(), rtol=0, atol=1e-7)


def test_bilinear_and_nearest_upsampling_to_input_size() -> None:
    model = nn.Sequential(HandModel().conv1, nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(2, 2, 1), nn.Flatten()).eval()
    inputs = torch.randn(3, 1, 4, 4)
    raw = GradCAM("0", upsample="none")(model, inputs)
    nearest = GradCAM("0", upsample="nearest")(model, inputs)
    bilinear = GradCAM("0", upsample="bilinear")(model, inputs)
    assert raw.shape == (3, 4, 4)  # layer 0 is at input resolution
    torch.testing.assert_close(nearest, raw)
    torch.testing.assert_close(bilinear, raw)
    low = nn.Sequential(nn.Conv2d(1, 2, 2, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2)).eval()
    small = GradCAM("0", upsample="none")(low, inputs)
    assert small.shape == (3, 2, 2)
    up = GradCAM("0", upsample="nearest")(low, inputs)
    torch.testing.assert_close(up, small.repeat_interleave(2, 1).repeat_interleave(2, 2))
    up = GradCAM("0", upsample="bilinear")(low, inputs)
    # bilinear, align_corners=False: corner values are kept, and the 2x2 map's mean is preserved at 4x4
    torch.testing.assert_close(up[:, 0, 0], small[:, 0, 0])
    torch.testing.assert_close(up.mean(dim=(1, 2)), small.mean(dim=(1, 2)))


def test_regression_model_explains_its_output() -> None:
    model = HandModel().eval()
    regressor = nn.Sequential(model, nn.Linear(2, 1, bias=False)).eval()
    with torch.no_grad():
        regressor[1].weight.copy_(torch.tensor([[1.0, 0.0]]))  # y = logit 0
    maps = GradCAM("0.conv1", upsample="none")(regressor, X.view(1, 1, 2, 2))
    torch.testing.assert_close(maps[0], CAM_CLASS_0, rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match="one output"):
        GradCAM("0.conv1")(regressor, X.view(1, 1, 2, 2), torch.tensor([1]))


@pytest.mark.parametrize("mode", ["inference_mode", "no_grad", "train_mode", "frozen"])
def test_same_maps_under_every_caller_mode(small_net: SmallNet, mode: str) -> None:
    inputs = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    small_net.eval()
    expected = GradCAM("features.3")(small_net, inputs)
    assert expected.sum() > 0
    if mode == "inference_mode":
        with torch.inference_mode():
            maps = GradCAM("features.3")(small_net, inputs.clone())
    elif mode == "no_grad":
        with torch.no_grad():
            maps = GradCAM("features.3")(small_net, inputs)
    elif mode == "frozen":
        small_net.requires_grad_(False)
        maps = GradCAM("features.3")(small_net, inputs)
        assert not any(p.requires_grad for p in small_net.parameters())
    else:
        return
    torch.testing.assert_close(maps, expected)


def test_model_state_is_left_untouched(small_net: SmallNet) -> None:
    small_net.train()
    small_net.features[0].eval()  # a mixed state must come back as it was
    for p in small_net.parameters():
        p.grad = torch.full_like(p, 7.0)
    small_net.head[3].weight.requires_grad_(False)
    before_buffers = {n: b.clone() for n, b in small_net.named_buffers()}
    modes = {n: m.training for n, m in small_net.named_modules()}
    GradCAM("features.3")(small_net, torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 0]))
    assert {n: m.training for n, m in small_net.named_modules()} == modes
    assert all(torch.equal(p.grad, torch.full_like(p, 7.0)) for p in small_net.parameters())
    assert not small_net.head[3].weight.requires_grad and small_net.head[3].bias.requires_grad
    for name, buf in small_net.named_buffers():
        assert torch.equal(buf, before_buffers[name]), name
    assert all(not m._forward_hooks and not m._backward_hooks for m in small_net.modules())


def test_hooks_removed_when_the_method_raises(small_net: SmallNet) -> None:
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
        GradCAM("features.3")(small_net.eval(), torch.randn(2, 3, 8, 8), torch.tensor([0, 5]))
    assert all(not m._forward_hooks for m in small_net.modules())


def test_inplace_relu_after_the_target_layer_does_not_change_the_map(small_net: SmallNet) -> None:
    inputs = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    small_net.eval()
    inplace = GradCAM("features.0")(small_net, inputs)  # Conv -> BN -> ReLU(inplace)
    small_net.features[2] = nn.ReLU(inplace=False)
    plain = GradCAM("features.0")(small_net, inputs)
    torch.testing.assert_close(inplace, plain)


def test_unknown_layer_names_close_matches(small_net: SmallNet) -> None:
    with pytest.raises(ValueError, match=r"'feature\.3'.*close matches: features\.3"):
        GradCAM("feature.3")(small_net, torch.randn(1, 3, 8, 8))


def test_target_layer_defaults() -> None:
    model = HandModel().eval()
    explicit = GradCAM("conv2", upsample="none")(model, X.view(1, 1, 2, 2))
    torch.testing.assert_close(GradCAM(upsample="none")(model, X.view(1, 1, 2, 2)), explicit)  # last conv layer
    model.default_target_layer = "conv1"
    torch.testing.assert_close(GradCAM(upsample="none")(model, X.view(1, 1, 2, 2))[0], CAM_CLASS_0, rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match="no Conv1d/Conv2d"):
        GradCAM()(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), torch.randn(1, 1, 2, 2))


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (torch.randn(3, 8), r"\(B, C, H, W\)"),
        (torch.randn(3, 8, 8), r"SmallNet failed on inputs of shape \(3, 8, 8\).*expected 4D input"),
        (torch.full((1, 3, 8, 8), float("nan")), "NaN or inf in samples \\[0\\]"),
        (torch.ones(1, 3, 8, 8, dtype=torch.long), "floating point"),
    ],
)
def test_bad_inputs_get_clear_errors(small_net: SmallNet, inputs: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GradCAM("features.3")(small_net.eval(), inputs)


def test_bad_arguments_get_clear_errors(small_net: SmallNet) -> None:
    with pytest.raises(ValueError, match="upsample must be one of"):
        GradCAM("features.3", upsample="bicubicc")
    with pytest.raises(ValueError, match=r"targets must have shape \(2,\)"):
        GradCAM("features.3")(small_net.eval(), torch.randn(2, 3, 8, 8), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="not \\(B, K, \\*spatial\\)"):
        GradCAM("head.1")(small_net.eval(), torch.randn(2, 3, 8, 8))
