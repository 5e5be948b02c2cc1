"""Hyper Expected Grad-CAM stage by stage: parameters, neighbourhoods and supermaps, frequency decomposition,
fusion; then the explainer as the composition of its stages."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_xai.explainers import ExpectedGradCAM, HyperExpectedGradCAM
from lit_xai.explainers.resolution.hyper_expected_gradcam import (
    StageParameters,
    assemble_supermaps,
    crop_and_upscale,
    explain_neighbourhoods,
    feature_dependency_supermaps,
    frequency_decomposition,
    frequency_layers,
    fuse,
    high_pass,
    inflation_region,
    neighbourhood_boxes,
    normalised,
    stage_parameters,
)
from tests.shapes_helpers import single_thread


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Small convolutions on a busy 2-core machine run several times faster on one thread."""
    with single_thread():
        yield


class StridedNet(nn.Module):
    """conv (12 x 12) + ReLU, conv stride 2 (-> 6 x 6) + ReLU, conv + ReLU (target `features.5`), pool + linear."""

    def __init__(self) -> None:
        super().__init__()
        layers = [nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()]
        self.features = nn.Sequential(OrderedDict((str(i), layer) for i, layer in enumerate(layers)))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@pytest.fixture
def strided() -> StridedNet:
    torch.manual_seed(0)
    return StridedNet().eval()


# 1. stage parameters


def test_inflation_region() -> None:
    assert inflation_region((224, 224), (7, 7)) == (32, 32)
    assert inflation_region((32, 32), (16, 16)) == (2, 2)
    assert inflation_region((12, 20), (3, 5)) == (4, 4)
    assert inflation_region((299, 299), (8, 8)) == (37, 37)


def test_stage_parameters_by_hand() -> None:
    maps = torch.full((4, 7, 7), 0.1)
    maps[0, 1:5, 2:6] = 1.0  # 16 hot cells -> k0 = 4 -> 1 + log2(4) = 3 stages of 4, 2, 1 cells (128, 64, 32 px)
    maps[1, 3, 3] = 1.0  # 1 hot cell -> k0 = 1 -> one stage
    maps[2] = 0.0  # nothing: the whole 7 x 7 -> k0 = 7 -> 1 + 2 = 3 stages of 7, 3, 1
    maps[3, :2, :5] = 1.0  # 10 cells -> k0 = ceil(sqrt(10)) = 4
    parameters = stage_parameters(maps, (224, 224))
    assert parameters.inflation == (32, 32)
    assert parameters.area.tolist() == [16, 1, 49, 10]
    assert parameters.stages.tolist() == [3, 1, 3, 3]
    assert parameters.kernels.tolist() == [[4, 2, 1], [1, 0, 0], [7, 3, 1], [4, 2, 1]]
    assert stage_parameters(maps, (224, 224), max_stages=2).kernels.tolist() == [[4, 2], [1, 0], [7, 3], [4, 2]]
    assert stage_parameters(maps, (224, 224), stages=4).kernels.tolist() == [[4, 2, 1, 1], [1, 1, 1, 1], [7, 3, 1, 1], [4, 2, 1, 1]]
    # a lower threshold counts the 0.1 cells too
    assert stage_parameters(maps[:1], (224, 224), threshold=0.05).area.tolist() == [49]


# 2. feature-dependency extraction


def test_neighbourhood_boxes_tile_the_input() -> None:
    boxes = neighbourhood_boxes((32, 20), (12, 8), (12, 8))
    # rows 0, 12, 20 (the last moved back to end at 32); columns 0, 8, 12
    assert boxes[:, 0].unique().tolist() == [0, 12, 20] and boxes[:, 1].unique().tolist() == [0, 8, 12]
    assert len(boxes) == 9 and bool((boxes[:, 2] == 12).all() and (boxes[:, 3] == 8).all())
    assert neighbourhood_boxes((8, 8), (8, 8), (8, 8)).tolist() == [[0, 0, 8, 8]]
    assert neighbourhood_boxes((8, 8), (4, 4), (2, 2)).shape == (9, 4)


def test_crop_and_upscale_is_the_upscaled_input_cut_into_blocks() -> None:
    inputs = torch.randn(2, 3, 8, 12, generator=torch.Generator().manual_seed(0))
    boxes = torch.tensor([[0, 0, 4, 6], [4, 6, 4, 6], [2, 3, 4, 6], [0, 0, 8, 12]])
    sample = torch.tensor([0, 1, 1, 0])
    crops = crop_and_upscale(inputs, sample, boxes)
    # "the input is upscaled so that each neighbourhood has the input's size": 2x bilinear, then the block
    upscaled = F.interpolate(inputs, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(crops[0], upscaled[0, :, :8, :12], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(crops[1], upscaled[1, :, 8:, 12:], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(crops[2], upscaled[1, :, 4:12, 6:18], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(crops[3], inputs[0], rtol=1e-5, atol=1e-6)


def test_assemble_supermaps_by_hand() -> None:
    # slot 0: box A (columns 0..3) = 2, box B (columns 2..5) = 4 -> 2 | 3 (average) | 4; slot 1: a 2 x 2 map over 4 x 4
    local = torch.stack([torch.full((2, 2), 2.0), torch.full((2, 2), 4.0), torch.tensor([[0.0, 1.0], [2.0, 3.0]])])
    boxes = torch.tensor([[0, 0, 4, 4], [0, 2, 4, 4], [0, 1, 4, 4]])
    supermaps = assemble_supermaps(local, torch.tensor([0, 0, 1]), boxes, 2, (4, 6))
    torch.testing.assert_close(supermaps[0], torch.tensor([[2.0, 2, 3, 3, 4, 4]]).expand(4, 6))
    stretched = F.interpolate(local[2].view(1, 1, 2, 2), size=(4, 4), mode="bilinear", align_corners=False)[0, 0]
    torch.testing.assert_close(supermaps[1, :, 1:5], stretched)
    assert supermaps[1, :, 0].abs().max() == 0 and supermaps[1, :, 5].abs().max() == 0


def test_neighbourhoods_are_explained_by_expected_gradcam_at_the_input_size(strided: StridedNet) -> None:
    inputs = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([0, 2])
    sample = torch.tensor([0, 1, 1, 0, 1])
    boxes = torch.tensor([[0, 0, 12, 12], [0, 0, 6, 6], [6, 4, 6, 6], [2, 2, 8, 8], [0, 0, 12, 12]])
    egc = ExpectedGradCAM("features.5", "none", draws=3)
    maps = explain_neighbourhoods(strided, "features.5", inputs, targets, sample, boxes, egc, internal_batch_size=2)
    expected = ExpectedGradCAM("features.5", "none", draws=3)(strided, crop_and_upscale(inputs, sample, boxes), targets[sample])
    torch.testing.assert_close(maps, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(maps[0], ExpectedGradCAM("features.5", "none", draws=3)(strided, inputs[:1], targets[:1])[0])
    # one neighbourhood that is the whole input: the supermap is the Expected Grad-CAM map, stretched bilinearly
    whole = StageParameters((2, 2), torch.tensor([[6], [6]]), torch.tensor([1, 1]), torch.tensor([36, 36]))
    supermaps = feature_dependency_supermaps(strided, "features.5", inputs, targets, whole, egc, None, None)
    layer = ExpectedGradCAM("features.5", "none", draws=3)(strided, inputs, targets)
    torch.testing.assert_close(supermaps[:, 0], F.interpolate(layer.unsqueeze(1), size=(12, 12), mode="bilinear").squeeze(1), rtol=1e-5, atol=1e-6)


# 3. frequency decomposition


def test_frequency_layers_follow_the_one_plus_one_policy(strided: StridedNet) -> None:
    inputs = torch.randn(1, 3, 12, 12)
    # features.2 halves the resolution, features.3 is the ReLU after it; nothing inside or after the target
    assert frequency_layers(strided, inputs, "features.5") == ["features.2", "features.3"]
    assert frequency_layers(strided, inputs, "features.4") == ["features.2", "features.3"]
    pooled = nn.Sequential(OrderedDict(block1=nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
                                       block2=nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()),
                                       head=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))))
    assert frequency_layers(pooled, inputs, "block2") == ["block1.2"]  # the next layer (a conv) is no ReLU

    class Shared(nn.Module):  # one ReLU module run twice: it cannot be hooked as one layer, so it is skipped
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.conv2, self.relu = nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()
            self.head = nn.Linear(4, 2)

        def forward(self, x: Tensor) -> Tensor:
            return self.head(self.relu(self.conv2(self.relu(self.conv1(x)))).mean((2, 3)))

    assert frequency_layers(Shared(), inputs, "conv2") == ["conv1"]


def test_high_pass_filters() -> None:
    rows, cols = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    constant = torch.full((1, 16, 16), 3.0)
    checker = torch.cos(math.pi * (rows + cols)).unsqueeze(0)  # the highest frequency (0.5, 0.5)
    slow = torch.cos(2 * math.pi * cols / 16).unsqueeze(0)  # 1/16 cycle per position
    for kind in ("laplacian", "fft"):
        assert high_pass(constant, 1.0, kind).abs().max().item() < 1e-5
    fft_rate1 = high_pass(checker + slow, 1.0, "fft")  # cut-off 0.5 / 2 = 0.25: the checkerboard stays, the slow wave goes
    torch.testing.assert_close(fft_rate1, checker, rtol=1e-4, atol=1e-4)
    # a coarser neighbour (rate 4) lowers the cut-off to 1/16: the slow wave is kept as well
    torch.testing.assert_close(high_pass(slow, 4.0, "fft"), slow, rtol=1e-4, atol=1e-4)
    # laplacian: the Gaussian's response is 1/2 at the cut-off; the checkerboard passes almost whole, the slow wave mostly not
    kept = high_pass(checker, 1.0, "laplacian")[0, 4:12, 4:12] / checker[0, 4:12, 4:12]
    assert kept.min().item() > 0.9
    assert high_pass(slow, 1.0, "laplacian")[0, 4:12, 4:12].abs().max().item() < 0.15


def test_frequency_decomposition_by_hand() -> None:
    generator = torch.Generator().manual_seed(2)
    fine, middle, coarse = torch.rand(2, 8, 8, generator=generator), torch.rand(2, 4, 4, generator=generator), torch.rand(2, 2, 2, generator=generator)
    up = lambda m, s: F.interpolate(m.unsqueeze(1), size=(s, s), mode="bilinear", align_corners=False).squeeze(1)  # noqa: E731
    running = up(normalised(coarse), 4) + high_pass(normalised(middle), 2.0)
    running = up(running, 8) + high_pass(normalised(fine), 2.0)
    torch.testing.assert_close(frequency_decomposition([fine, middle, coarse]), torch.relu(running))
    torch.testing.assert_close(frequency_decomposition([coarse]), normalised(coarse))
    same = frequency_decomposition([middle, coarse * 0 + middle[:, :2, :2]], "fft")
    torch.testing.assert_close(same, torch.relu(up(normalised(middle[:, :2, :2]), 4) + high_pass(normalised(middle), 2.0, "fft")))


# 4. accumulation and fusion


def test_fuse_by_hand() -> None:
    supermaps = torch.tensor([[[[1.0, 2.0]], [[4.0, 2.0]]], [[[3.0, 1.0]], [[9.0, 9.0]]]])  # (2, 2 stages, 1, 2)
    stages = torch.tensor([2, 1])
    frequency = torch.tensor([[[0.5, 1.0]], [[2.0, 2.0]]])
    # sample 0: sum (5, 4) -> (1, 0.8); product (0.5, 1) * (1, 0.5) = (0.5, 0.5); times (0.5, 1) -> (0.25, 0.4)
    # sample 1: only stage 0: (1, 1/3) * (1, 1/3) * (2, 2) = (2, 2/9)
    torch.testing.assert_close(fuse(supermaps, stages, frequency), torch.tensor([[[0.25, 0.4]], [[2.0, 2 / 9]]]))


# the whole explainer


def test_explainer_is_the_composition_of_its_stages(strided: StridedNet) -> None:
    inputs = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(3))
    targets = torch.tensor([1, 0])
    explainer = HyperExpectedGradCAM("features.5", draws=2, max_stages=2, internal_batch_size=5)
    maps = explainer(strided, inputs, targets)
    egc = lambda layer: ExpectedGradCAM(layer, "none", draws=2)(strided, inputs, targets)  # noqa: E731
    layer_maps = [egc("features.2"), egc("features.3"), egc("features.5")]
    parameters = stage_parameters(layer_maps[-1], (12, 12), max_stages=2)
    supermaps = feature_dependency_supermaps(strided, "features.5", inputs, targets, parameters, ExpectedGradCAM("features.5", "none", draws=2), None, 3)
    frequency = F.interpolate(frequency_decomposition(layer_maps).unsqueeze(1), size=(12, 12), mode="bilinear").squeeze(1)
    peak = layer_maps[-1].flatten(1).amax(1).view(-1, 1, 1)
    torch.testing.assert_close(maps, fuse(supermaps, parameters.stages, frequency) * peak, rtol=1e-5, atol=1e-6)
    assert maps.shape == (2, 12, 12) and (maps >= 0).all() and maps.flatten(1).amax(1).min() > 0
    # the frequency layers can be named, or left out
    no_frequency = HyperExpectedGradCAM("features.5", draws=2, max_stages=2, frequency_layers=[])(strided, inputs, targets)
    torch.testing.assert_close(no_frequency, fuse(supermaps, parameters.stages, F.interpolate(normalised(layer_maps[-1]).unsqueeze(1), size=(12, 12), mode="bilinear").squeeze(1)) * peak, rtol=1e-5, atol=1e-6)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="high_pass must be one of"):
        HyperExpectedGradCAM(high_pass="wavelet")
    with pytest.raises(ValueError, match="threshold must be in"):
        HyperExpectedGradCAM(threshold=0.0)
    with pytest.raises(ValueError, match="max_stages must be a positive int"):
        HyperExpectedGradCAM(max_stages=0)
    with pytest.raises(ValueError, match="cutoff must be > 0"):
        HyperExpectedGradCAM(cutoff=0.0)
    with pytest.raises(ValueError, match="explains images"):
        HyperExpectedGradCAM()(nn.Sequential(nn.Conv1d(2, 3, 3), nn.Flatten(), nn.Linear(18, 2)), torch.randn(1, 2, 8))
