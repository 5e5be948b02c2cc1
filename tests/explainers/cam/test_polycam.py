"""Poly-CAM against hand-computed weights and fused maps (Score-CAM masks), a port of the authors' code (their
percentile masks, the default), its layer choice, invariants and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from lit_xai.explainers.cam.polycam import PolyCAM, find_polycam_layers

VARIANTS = ("plus", "minus", "plusminus")


class TwoStageNet(nn.Module):
    """conv1 = identity (1x1, 2 -> 2) -> relu1 -> 2x2 mean pool -> conv2 (1x1: b0 = p0, b1 = p0 + p1) -> relu2
    -> global mean -> fc. With x >= 0 no ReLU is active and the head is linear:

        lin(x) = mean_ij(5 b0 - 2 b1) = mean_ij(3 p0 - 2 p1) = (3 sum(x0) - 2 sum(x1)) / 16
        classifier: logits (lin(x), -1), so p_0 = sigmoid(lin(x) + 1);   regressor: y = lin(x) + 1.
    """

    def __init__(self, outputs: int = 2) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 2, 1, bias=False)
        self.relu1 = nn.ReLU()
        self.pool = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(2, 2, 1, bias=False)
        self.relu2 = nn.ReLU()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(2, outputs)
        with torch.no_grad():
            self.conv1.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
            self.conv2.weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 1.0]]).view(2, 2, 1, 1))
            if outputs == 2:
                self.fc.weight.copy_(torch.tensor([[5.0, -2.0], [0.0, 0.0]]))
                self.fc.bias.copy_(torch.tensor([0.0, -1.0]))
            else:
                self.fc.weight.copy_(torch.tensor([[5.0, -2.0]]))
                self.fc.bias.copy_(torch.tensor([1.0]))

    def forward(self, x: Tensor) -> Tensor:
        b = self.relu2(self.conv2(self.pool(self.relu1(self.conv1(x)))))
        return self.fc(self.flatten(self.gap(b)))


# x0 = 1 on the top-left 2x2 block, x1 = 1 on the top half (rows 0-1); lin(x) = (12 - 16) / 16 = -1/4.
X = torch.zeros(1, 2, 4, 4)
X[0, 0, :2, :2] = 1.0
X[0, 1, :2, :] = 1.0
# The hand computations use Score-CAM's masks (masks="minmax"); the default, the authors' percentile masks, is
# checked against a port of their code below.
# Layer relu1 (4x4) = x: masks M0 = x0, M1 = x1 (min-max of 0/1 channels).
#   lin(x * M0) = (3*4 - 2*4)/16 = 1/4          lin(x * M1) = (3*4 - 2*8)/16 = -1/4
# Layer relu2 (2x2): B0 = [[1, 0], [0, 0]], B1 = [[2, 1], [0, 0]]. Upsampled 2 -> 4 with align_corners=True the
# rows get the weights u = (1, 2/3, 1/3, 0) of the top row, so M0 = u u^T and M1 = u v^T, v = (1, 5/6, 2/3, 1/2):
#   sum(x0 M0) = (5/3)^2 = 25/9, sum(x1 M0) = 5/3 * 2 = 10/3  ->  lin(x * M0) = (25/3 - 20/3)/16 = 5/48
#   sum(x0 M1) = 5/3 * 11/6 = 55/18, sum(x1 M1) = 5/3 * 3 = 5  ->  lin(x * M1) = (55/6 - 10)/16 = -5/96
# The head is linear, so lin(x * (1 - M)) = lin(x) - lin(x * M).
LIN_X = -1 / 4
LIN_KEPT = {"relu1": (1 / 4, -1 / 4), "relu2": (5 / 48, -5 / 96)}


def hand_weights(layer: str, variant: str, head: str) -> tuple[float, float]:
    """The paper's weights from the hand-computed lin values (score = sigmoid(lin + 1) or lin + 1)."""
    score = (lambda v: torch.sigmoid(torch.tensor(v + 1.0, dtype=torch.float64)).item()) if head == "classifier" else (lambda v: v + 1.0)
    weights = []
    for kept in LIN_KEPT[layer]:
        plus, base, removed = score(kept), score(LIN_X), score(LIN_X - kept)
        weights.append({"plus": plus, "minus": max(base - removed, 0.0), "plusminus": max(plus + base - removed, 0.0)}[variant])
    return weights[0], weights[1]


def hand_maps(variant: str, head: str) -> tuple[Tensor, Tensor, Tensor]:
    """(C at relu1 (4x4), C at relu2 (2x2), fused Poly-CAM (4x4)) by hand.

    C1 = ReLU(w0 x0 + w1 x1): alpha = ReLU(w0 + w1) on the top-left block, beta = ReLU(w1) on the top-right one.
    C2 = ReLU(w0 B0 + w1 B1) = [[gamma, delta], [0, 0]], gamma = ReLU(w0 + 2 w1), delta = ReLU(w1).
    LNorm(C1, 2x2): bilinear 4 -> 2 (align_corners=False) is the 2x2 block mean, [[alpha, beta], [0, 0]], and
    2 -> 4 gives rows (1, 0), (.75, .25), (.25, .75), (0, 1). Dividing C1 by it and multiplying by up(C2)
    (the same row weights) gives rows 0 and 1 equal to
        [gamma, alpha (.75 gamma + .25 delta) / (.75 alpha + .25 beta), beta (.25 gamma + .75 delta) / (.25 alpha + .75 beta),
         delta (0 where beta = 0)]
    and 0 in rows 2 and 3 (C1 = 0 there).
    """
    a0, a1 = hand_weights("relu1", variant, head)
    b0, b1 = hand_weights("relu2", variant, head)
    alpha, beta = max(a0 + a1, 0.0), max(a1, 0.0)
    gamma, delta = max(b0 + 2 * b1, 0.0), max(b1, 0.0)
    cam1 = torch.zeros(4, 4, dtype=torch.float64)
    cam1[:2, :2], cam1[:2, 2:] = alpha, beta
    cam2 = torch.tensor([[gamma, delta], [0.0, 0.0]], dtype=torch.float64)
    row = [
        gamma,
        alpha * (0.75 * gamma + 0.25 * delta) / (0.75 * alpha + 0.25 * beta),
        beta * (0.25 * gamma + 0.75 * delta) / (0.25 * alpha + 0.75 * beta),
        delta if beta > 0 else 0.0,
    ]
    fused = torch.zeros(4, 4, dtype=torch.float64)
    fused[:2] = torch.tensor(row, dtype=torch.float64)
    return cam1, cam2, fused


@pytest.mark.parametrize("head", ["classifier", "regressor"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_two_layers_equal_the_hand_computation(variant: str, head: str) -> None:
    model = TwoStageNet(2 if head == "classifier" else 1).eval()
    cam1, cam2, fused = hand_maps(variant, head)
    # a single layer is the score-weighted CAM of that layer: checks each layer's weights
    for layer, expected in (("relu1", cam1), ("relu2", cam2)):
        maps = PolyCAM(variant, [layer], upsample="none", masks="minmax")(model, X)
        torch.testing.assert_close(maps[0].double(), expected, rtol=0, atol=1e-6)
    maps = PolyCAM(variant, ["relu1", "relu2"], upsample="none", masks="minmax")(model, X)
    assert maps.shape == (1, 4, 4) and maps.dtype == torch.float32
    torch.testing.assert_close(maps[0].double(), fused, rtol=0, atol=1e-6)
    # the automatic choice finds the same layers (class 0 is the argmax: logits -1/4 vs -1)
    torch.testing.assert_close(PolyCAM(variant, upsample="none", masks="minmax")(model, X), maps, rtol=0, atol=0)


def test_the_three_variants_differ_as_the_hand_computation_says() -> None:
    # regressor: minus zeroes the weights of relu1's channel 1 and relu2's channel 1 (removing them raises y),
    # so only the top-left block survives, at gamma = 5/48; plus and plusminus keep the top half.
    model = TwoStageNet(1).eval()
    minus = PolyCAM("minus", upsample="none", masks="minmax")(model, X)[0]
    expected = torch.zeros(4, 4)
    expected[:2, :2] = 5 / 48
    torch.testing.assert_close(minus, expected, rtol=0, atol=1e-6)
    for variant in ("plus", "plusminus"):
        assert PolyCAM(variant, upsample="none", masks="minmax")(model, X)[0, :2, 2:].min() > 0.1


def test_a_constant_channel_gets_mask_zero_and_inverse_mask_one() -> None:
    # relu1 gets a third channel, constant 0.5 (zero weights, bias 0.5), that conv2 ignores: the outputs do not
    # change. Its mask is 0 and its inverse mask 1 (as the official normalisation gives), so
    # minus: w = ReLU(s(x) - s(x)) = 0, and plusminus: w = s(0) + s(x) - s(x) = lin(0) + 1 = 1 (regressor),
    # which adds 1 * 0.5 to relu1's CAM everywhere.
    model = TwoStageNet(1).eval()
    model.conv1, model.conv2 = nn.Conv2d(2, 3, 1), nn.Conv2d(3, 2, 1, bias=False)
    with torch.no_grad():
        model.conv1.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]).view(3, 2, 1, 1))
        model.conv1.bias.copy_(torch.tensor([0.0, 0.0, 0.5]))
        model.conv2.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]).view(2, 3, 1, 1))
    # relu1's 0/1 channels get the same masks either way (p0.1 = 0, p99.9 = 1), as does the constant one
    for masks in ("percentile", "minmax"):
        for variant, offset in (("minus", 0.0), ("plusminus", 0.5)):
            maps = PolyCAM(variant, ["relu1"], upsample="none", masks=masks)(model, X)
            torch.testing.assert_close(maps[0].double(), hand_maps(variant, "regressor")[0] + offset, rtol=0, atol=1e-6)


def test_automatic_layers_on_resnet18() -> None:
    model = torchvision.models.resnet18(num_classes=10).eval()
    # 64x64 input: conv1 (stride 2) -> bn1 -> relu at 32x32, then maxpool halves it: "relu". layer1 stays at
    # 16x16 and layer2.0.conv1 halves it; the container layer1 finishes after its last block (whose own ReLU
    # runs twice), so the stage's last module is "layer1"; likewise "layer2" (8x8) and "layer3" (4x4).
    # layer4 (2x2) is followed by avgpool (1x1, ignored) and fc (not spatial): it closes the last stage.
    # This is the official find_layer_list's choice too.
    assert find_polycam_layers(model, torch.randn(1, 3, 64, 64)) == ["relu", "layer1", "layer2", "layer3", "layer4"]
    # at 32x32 layer4 is 1x1, which carries no spatial information, so layer3 is the deepest
    assert find_polycam_layers(model, torch.randn(1, 3, 32, 32)) == ["relu", "layer1", "layer2", "layer3"]


def test_automatic_layers_on_vgg16_match_the_official_list() -> None:
    with torch.device("meta"):  # shapes only: no weights to initialise
        model = torchvision.models.vgg16(num_classes=10).eval()
        inputs = torch.empty(1, 3, 224, 224)
    # the ReLU before each max-pool; the trailing 7x7 stage (features.30, avgpool) only pools and is left out,
    # as in the official code's example ['features.3', 'features.8', 'features.15', 'features.22', 'features.29']
    assert find_polycam_layers(model, inputs) == ["features.3", "features.8", "features.15", "features.22", "features.29"]


def conv1d_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2), nn.Conv1d(4, 4, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 8, 3),
    ).eval()


def test_time_series_layers_and_equality_with_the_2d_twin() -> None:
    model = conv1d_net()
    # 16 steps: "1" (ReLU before the max-pool), "4" (the last ReLU; Flatten closes the stage, and the stage
    # computes new features, so it is kept)
    series = torch.randn(3, 2, 16, generator=torch.Generator().manual_seed(1))
    assert find_polycam_layers(model, series) == ["1", "4"]
    twin = nn.Sequential(
        nn.Conv2d(2, 4, (1, 3), padding=(0, 1)), nn.ReLU(), nn.MaxPool2d((1, 2)), nn.Conv2d(4, 4, (1, 3), padding=(0, 1)),
        nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8, 3),
    ).eval()
    with torch.no_grad():
        for index in (0, 3):
            twin[index].weight.copy_(model[index].weight.unsqueeze(2))
            twin[index].bias.copy_(model[index].bias)
        twin[6].load_state_dict(model[6].state_dict())
    for variant in VARIANTS:
        maps = PolyCAM(variant)(model, series)
        assert maps.shape == (3, 16) and maps.min() >= 0 and maps.sum() > 0
        torch.testing.assert_close(maps, PolyCAM(variant)(twin, series.unsqueeze(2))[:, 0], rtol=1e-5, atol=1e-6)


def test_a_shared_relu_falls_back_to_the_module_before_it() -> None:
    class SharedReLU(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 3, 3, padding=1), nn.Conv2d(3, 3, 3, padding=1)
            self.relu, self.pool, self.fc = nn.ReLU(), nn.MaxPool2d(2), nn.Linear(3, 2)

        def forward(self, x: Tensor) -> Tensor:
            x = self.relu(self.conv2(self.pool(self.relu(self.conv1(x)))))
            return self.fc(x.mean(dim=(2, 3)))

    torch.manual_seed(0)
    model, inputs = SharedReLU().eval(), torch.randn(2, 1, 8, 8)
    assert find_polycam_layers(model, inputs) == ["conv1", "conv2"]
    torch.testing.assert_close(PolyCAM()(model, inputs), PolyCAM(target_layers=["conv1", "conv2"])(model, inputs))
    with pytest.raises(ValueError, match="runs more than once"):
        PolyCAM(target_layers=["relu"])(model, inputs)


class PooledNet(nn.Module):
    """Two stages (8x8, 4x4) with BatchNorm and Dropout: state an explainer must not disturb."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(6, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@pytest.fixture
def pooled_net() -> PooledNet:
    torch.manual_seed(0)
    return PooledNet().eval()


INPUTS = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(2))


def test_invariants(pooled_net: PooledNet) -> None:
    # "plusminus" runs both the masked and the inverse-masked passes
    assert find_polycam_layers(pooled_net, INPUTS) == ["features.2", "features"]
    targets = torch.tensor([0, 1, 2, 0])
    maps = PolyCAM()(pooled_net, INPUTS, targets)
    assert maps.shape == (4, 8, 8) and maps.dtype == torch.float32
    assert maps.min() >= 0 and (maps.flatten(1).sum(1) > 0).all()
    # chunking of the masked passes does not change the map
    torch.testing.assert_close(PolyCAM(internal_batch_size=1)(pooled_net, INPUTS, targets), maps)
    torch.testing.assert_close(PolyCAM(internal_batch_size=1000)(pooled_net, INPUTS, targets), maps)
    # deterministic, and the same under inference_mode / no_grad (Lightning's loops)
    assert torch.equal(PolyCAM()(pooled_net, INPUTS, targets), maps)
    with torch.inference_mode():
        torch.testing.assert_close(PolyCAM()(pooled_net, INPUTS.clone(), targets), maps)
    with torch.no_grad():
        torch.testing.assert_close(PolyCAM()(pooled_net, INPUTS, targets), maps)
    # a sample's map does not depend on the rest of the batch
    torch.testing.assert_close(PolyCAM()(pooled_net, INPUTS[2:3], torch.tensor([2])), maps[2:3])


@pytest.mark.parametrize("variant", VARIANTS)
def test_upsampling_and_non_negativity(pooled_net: PooledNet, variant: str) -> None:
    maps = PolyCAM(variant)(pooled_net, INPUTS)
    assert maps.min() >= 0 and (maps.flatten(1).sum(1) > 0).all()
    # "none": the map at the shallowest chosen layer (8x8 here, the input size)
    torch.testing.assert_close(PolyCAM(variant, upsample="none")(pooled_net, INPUTS), maps)
    deep = PolyCAM(variant, ["features"], upsample="none")(pooled_net, INPUTS)
    assert deep.shape == (4, 4, 4) and deep.min() >= 0
    nearest = PolyCAM(variant, ["features"], upsample="nearest")(pooled_net, INPUTS)
    torch.testing.assert_close(nearest, deep.repeat_interleave(2, 1).repeat_interleave(2, 2))


def test_model_state_is_left_untouched(pooled_net: PooledNet) -> None:
    pooled_net.train()
    pooled_net.features[1].eval()
    for p in pooled_net.parameters():
        p.grad = torch.full_like(p, 7.0)
    pooled_net.head[3].weight.requires_grad_(False)
    buffers = {n: b.clone() for n, b in pooled_net.named_buffers()}
    modes = {n: m.training for n, m in pooled_net.named_modules()}
    PolyCAM()(pooled_net, INPUTS, torch.tensor([0, 1, 2, 0]))
    assert {n: m.training for n, m in pooled_net.named_modules()} == modes
    assert all(torch.equal(p.grad, torch.full_like(p, 7.0)) for p in pooled_net.parameters())
    assert not pooled_net.head[3].weight.requires_grad and pooled_net.head[3].bias.requires_grad
    for name, buf in pooled_net.named_buffers():
        assert torch.equal(buf, buffers[name]), name
    assert all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks for m in pooled_net.modules())


def test_hooks_are_removed_when_it_raises(pooled_net: PooledNet) -> None:
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
        PolyCAM()(pooled_net, INPUTS, torch.tensor([0, 1, 2, 5]))
    with pytest.raises(ValueError, match="shallow to deep"):
        PolyCAM(target_layers=["features", "features.2"])(pooled_net, INPUTS)
    assert all(not m._forward_hooks for m in pooled_net.modules())


def test_errors(pooled_net: PooledNet) -> None:
    with pytest.raises(ValueError, match="variant must be one of"):
        PolyCAM("plus_minus")
    with pytest.raises(ValueError, match="list of dotted module paths"):
        PolyCAM(target_layers="features")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="list of dotted module paths"):
        PolyCAM(target_layers=[])
    with pytest.raises(ValueError, match=r"\['features'\] more than once"):
        PolyCAM(target_layers=["features", "features"])
    with pytest.raises(ValueError, match="internal_batch_size"):
        PolyCAM(internal_batch_size=0)
    with pytest.raises(ValueError, match=r"masks must be one of \('percentile', 'minmax'\)"):
        PolyCAM(masks="min-max")
    with pytest.raises(ValueError, match="upsample must be one of"):
        PolyCAM(upsample="bicubicc")
    with pytest.raises(ValueError, match=r"'feature\.2'.*close matches: features\.2"):
        PolyCAM(target_layers=["feature.2", "features"])(pooled_net, INPUTS)
    with pytest.raises(ValueError, match=r"got \['features', 'features.2'\], the forward pass runs them as \['features.2', 'features'\]"):
        PolyCAM(target_layers=["features", "features.2"])(pooled_net, INPUTS)
    with pytest.raises(ValueError, match=r"'head.1' outputs shape \(4, 6\)"):
        PolyCAM(target_layers=["features", "head.1"])(pooled_net, INPUTS)
    flat = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="has no layer whose output is"):
        PolyCAM()(flat, torch.randn(1, 1, 2, 2))
    assert all(not m._forward_hooks for m in flat.modules())
    with pytest.raises(ValueError, match="only pools"):
        PolyCAM()(nn.Sequential(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(4, 2)), torch.randn(1, 1, 4, 4))


class TwoPatchNet(nn.Module):
    """Class 0 sees only input channel 0 (feature channels 0, 1), class 1 only input channel 1 (channels 2, 3):
    block-diagonal positive 3x3 convs without bias, a max-pool between them, global mean, a fixed linear head
    (class 1's row scaled by `class1_scale`)."""

    def __init__(self, class1_scale: float = 1.0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.conv1, self.relu1, self.pool = nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2)
        self.conv2, self.relu2 = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.ReLU()
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2, bias=False))
        with torch.no_grad():
            block1 = torch.block_diag(torch.ones(2, 1), torch.ones(2, 1))  # (4 out, 2 in)
            block2 = torch.block_diag(torch.ones(2, 2), torch.ones(2, 2))
            self.conv1.weight.copy_(torch.rand(4, 2, 3, 3, generator=generator) * block1[:, :, None, None])
            self.conv2.weight.copy_(torch.rand(4, 4, 3, 3, generator=generator) * block2[:, :, None, None])
            self.head[2].weight.copy_(torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, class1_scale, class1_scale]]))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.relu2(self.conv2(self.pool(self.relu1(self.conv1(x))))))


def patch(rows: slice, cols: slice) -> Tensor:
    region = torch.zeros(16, 16, dtype=torch.bool)
    region[rows, cols] = True
    return region


@pytest.mark.parametrize("variant", VARIANTS)
def test_mass_concentrates_on_the_patch_the_class_depends_on(variant: str) -> None:
    # class 0's logit depends only on patch P (channel 0, rows/cols 2-5), class 1's only on patch Q (channel 1,
    # rows/cols 10-13); both patches are in the image, so the map must tell them apart. Measured: >= 0.9991 of
    # the mass lies within one pixel of the class's patch (36 of 256 pixels) for every variant.
    inputs = torch.zeros(1, 2, 16, 16)
    inputs[0, 0, 2:6, 2:6] = 1.0
    inputs[0, 1, 10:14, 10:14] = 1.0
    model = TwoPatchNet().eval()
    for target, near in ((0, patch(slice(1, 7), slice(1, 7))), (1, patch(slice(9, 15), slice(9, 15)))):
        maps = PolyCAM(variant)(model, inputs, target)[0]
        assert maps[near].sum() / maps.sum() >= 0.99, target


@pytest.mark.parametrize(("variant", "least"), [("plus", 2.0), ("minus", 10.0), ("plusminus", 3.0)])
def test_patch_stands_out_from_a_textured_distractor(variant: str, least: float) -> None:
    # Channel 1 (which class 0 ignores) carries U(0, 1) texture everywhere plus patch Q; class 0 (the prediction,
    # logits 8.78 vs 5.13) depends only on patch P. Mean saliency inside P over the mean outside it, measured:
    # plus 2.45, minus 13.5, plusminus 3.47. PCAM+ discriminates least: every channel's masked input keeps some
    # of P, so all its weights are close to p(x) and the textured channels' large activations leak in.
    inputs = torch.zeros(1, 2, 16, 16)
    inputs[0, 0, 2:6, 2:6] = 1.0
    inputs[0, 1] = torch.rand(16, 16, generator=torch.Generator().manual_seed(3))
    inputs[0, 1, 10:14, 10:14] += 1.0
    model = TwoPatchNet(class1_scale=0.1).eval()
    maps = PolyCAM(variant)(model, inputs)[0]
    inside = patch(slice(2, 6), slice(2, 6))
    assert maps[inside].mean() / maps[~inside].mean() >= least


# ----------------------------------------------------------------------------------------------------------
# Parity with the authors' code (github.com/aenglebert/polycam): a port, written for this test, of their
# `find_layer_list`, `normalize` and the PCAM+/-/+- loop (`get_weights`, `compute_cams`), one image at a time.


def authors_layer_list(model: nn.Module, inputs: Tensor) -> list[str]:
    """Their rule: hook every module (the model itself too), run once, walk the outputs in the order they
    finish; whenever the last two dims change, take the previous module if the rank did not change, else stop;
    stop after taking one whose successor is 1x1. Run on the actual input (their default is a 3x224x224 one)."""
    seen: list[tuple[str, torch.Size]] = []
    handles = [m.register_forward_hook(lambda m, a, o, n=n: seen.append((n, o.shape))) for n, m in model.named_modules()]
    with torch.no_grad():
        model(inputs)
    for h in handles:
        h.remove()
    chosen, (previous_name, previous_shape) = [], seen[0]
    for name, shape in seen[1:]:
        if shape[2:] != previous_shape[2:]:
            if len(shape) != len(previous_shape):
                break
            chosen.append(previous_name)
            if shape[-1] == 1 and shape[-2] == 1:
                break
        previous_name, previous_shape = name, shape
    return chosen


def authors_normalise(maps: Tensor) -> Tensor:
    """(1, K, h, w): (a - p0.1) / max(p99.9, 1e-12) per channel with numpy's percentile, clipped to [0, 1]."""
    flat = maps.detach().flatten(-2).numpy()
    shape = (*maps.shape[:-2], 1, 1)
    low = torch.tensor(np.percentile(flat, 0.1, axis=-1)).to(maps.dtype).view(shape)
    high = torch.tensor(np.percentile(flat, 99.9, axis=-1)).to(maps.dtype).view(shape)
    return ((maps - low) / torch.maximum(high, torch.tensor(1e-12, dtype=maps.dtype))).clamp(0, 1)


def authors_polycam(model: nn.Module, image: Tensor, layers: list[str], variant: str) -> tuple[Tensor, Tensor]:
    """(the fused map before their final normalisation, at the shallowest layer's size; their output: that
    map normalised by `authors_normalise` and upsampled bilinearly to the image)."""
    stored: dict[str, Tensor] = {}
    modules = dict(model.named_modules())
    handles = [modules[n].register_forward_hook(lambda m, a, o, n=n: stored.__setitem__(n, o)) for n in layers]
    with torch.no_grad():
        logits = model(image)
    for h in handles:
        h.remove()
    c = int(logits.argmax(1))

    def prob(batch: Tensor) -> Tensor:
        with torch.no_grad():
            return torch.softmax(model(batch), dim=1)[:, c]

    base, fused = prob(image), None
    for name in reversed(layers):
        acts = stored[name]
        masks = F.interpolate(authors_normalise(acts), image.shape[-2:], mode="bilinear").transpose(0, 1)
        kept, removed = prob(image * masks), prob(image * (1 - masks))
        w = {"plus": kept, "minus": torch.relu(base - removed), "plusminus": torch.relu(kept + base - removed)}[variant]
        cam = torch.relu((acts * w.view(1, -1, 1, 1)).nansum(1, keepdim=True))
        if fused is not None:
            local = F.interpolate(F.interpolate(cam, fused.shape[-2:], mode="bilinear"), cam.shape[-2:], mode="bilinear")
            cam = cam / torch.maximum(local, torch.tensor(1e-12, dtype=cam.dtype)) * F.interpolate(fused, cam.shape[-2:], mode="bilinear")
        fused = torch.relu(cam)
    assert fused is not None
    return fused[0, 0], F.interpolate(authors_normalise(fused), image.shape[-2:], mode="bilinear")[0, 0]


class TinyVGG(nn.Module):
    """VGG's layout (features / adaptive avgpool / functional flatten / classifier) at toy width: at 24 px the
    last max-pool gives 3x3, which the 2x2 adaptive pooling changes."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 5))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


@pytest.mark.parametrize("variant", VARIANTS)
def test_default_masks_match_the_authors_code(variant: str) -> None:
    # float64: PCAM- weights are differences of nearly equal probabilities (~1e-4 here), which float32 round-off
    # (summation order differs between the batched and the per-image code) would blur at the 1e-3 relative level
    torch.manual_seed(4)
    model = TinyVGG().double().eval()
    with torch.no_grad():
        model.classifier[2].weight.mul_(10)  # top probability 0.30 instead of 0.21 out of 5 classes
    images = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    layers = find_polycam_layers(model, images)
    # the authors' rule on this input: the ReLU before each max-pool, and "features" (the last max-pool's 3x3
    # output), because the adaptive pooling changes 3x3 into 2x2
    assert layers == authors_layer_list(model, images[:1]) == ["features.3", "features.6", "features.9", "features"]
    raw = PolyCAM(variant, upsample="none")(model, images)
    maps = PolyCAM(variant)(model, images)
    minmax = PolyCAM(variant, masks="minmax", upsample="none")(model, images) if variant == "minus" else None
    for index in range(2):
        their_raw, their_map = authors_polycam(model, images[index : index + 1], layers, variant)
        assert their_raw.max() > 0
        torch.testing.assert_close(raw[index].double(), their_raw, rtol=1e-5, atol=1e-6 * their_raw.max().item())
        # their output (normalised, then upsampled) from ours
        ours = F.interpolate(authors_normalise(raw[index].double()[None, None]), (24, 24), mode="bilinear")[0, 0]
        torch.testing.assert_close(ours, their_map, rtol=0, atol=1e-5)
        torch.testing.assert_close(maps[index], F.interpolate(raw[index][None, None], (24, 24), mode="bilinear")[0, 0])
        # Score-CAM's masks give a different PCAM- map (measured max abs difference 0.17 and 0.13 on [0, 1]); the
        # PCAM+ and +/- weights of a random net hardly depend on the masks (every masked input scores about p(x))
        if minmax is not None:
            other = F.interpolate(authors_normalise(minmax[index].double()[None, None]), (24, 24), mode="bilinear")[0, 0]
            assert (other - their_map).abs().max() > 0.1


def test_percentile_masks_by_hand() -> None:
    from lit_xai.explainers.cam.scoring import percentile_masks

    # 2x2 channel (0, 0, 1, 2): p0.1 = 0, p99.9 at position 2.997 = 1 + 0.997 (2 - 1) = 1.997
    channel = torch.tensor([[[0.0, 1.0], [0.0, 2.0]]])
    expected = torch.tensor([[[0.0, 1 / 1.997], [0.0, 1.0]]])  # 2 / 1.997 clipped to 1
    torch.testing.assert_close(percentile_masks(channel, (2, 2)), expected)
    # an offset is subtracted but not taken off the divisor: (a - 10) / p99.9(= 11.997)
    torch.testing.assert_close(percentile_masks(channel + 10, (2, 2)), (channel / 11.997).clamp(0, 1))
    # a constant channel (positive or negative) is 0; a channel with p99.9 <= 0 is divided by 1e-12
    torch.testing.assert_close(percentile_masks(torch.full((1, 2, 2), 3.0), (2, 2)), torch.zeros(1, 2, 2))
    torch.testing.assert_close(percentile_masks(-channel, (2, 2)), torch.tensor([[[1.0, 1.0], [1.0, 0.0]]]))
    # upsampled after the scaling: bilinear, align_corners=False (row (0, 1) -> (0, .25, .75, 1))
    up = percentile_masks(torch.tensor([[[0.0, 1.0]]]).expand(1, 2, 2), (4, 4))
    torch.testing.assert_close(up, torch.tensor([0.0, 0.25, 0.75, 1.0]).expand(1, 4, 4))
    # time series (0, 2): p0.1 = 0.002, p99.9 = 1.998 -> (0, 1) after clipping, then linear
    torch.testing.assert_close(percentile_masks(torch.tensor([[0.0, 2.0]]), (4,)), torch.tensor([[0.0, 0.25, 0.75, 1.0]]))


@pytest.mark.parametrize(("side", "deepest"), [(224, ["features.29"]), (256, ["features.29", "features"]), (160, ["features.29", "features"])])
def test_automatic_layers_on_vgg16_at_other_sizes_match_the_authors_rule(side: int, deepest: list[str]) -> None:
    with torch.device("meta"):  # shapes only
        model = torchvision.models.vgg16(num_classes=10).eval()
        inputs = torch.empty(1, 3, side, side)
    # at 256 the last max-pool gives 8x8 and avgpool 7x7; at 160, 5x5 and 7x7: the pooled map is added
    expected = ["features.3", "features.8", "features.15", "features.22"] + deepest
    assert find_polycam_layers(model, inputs) == authors_layer_list(model, inputs) == expected


def test_automatic_layers_on_resnet18_match_the_authors_rule() -> None:
    with torch.device("meta"):
        model = torchvision.models.resnet18(num_classes=10).eval()
        inputs = torch.empty(1, 3, 96, 96)
    assert find_polycam_layers(model, inputs) == authors_layer_list(model, inputs) == ["relu", "layer1", "layer2", "layer3", "layer4"]
