"""JitterCAM: n = m is the base explainer, the grid bookkeeping by hand, and the authors' loop ported."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_xai.explainers import ExpectedGradCAM, GradCAM, JitterCAM, LayerExplainer
from lit_xai.explainers.resolution.jitter_cam import cell_counts
from tests.conftest import SmallNet
from tests.shapes_helpers import single_thread


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Small convolutions on a busy 2-core machine run several times faster on one thread."""
    with single_thread():
        yield


class PooledNet(nn.Module):
    """`pool`: 2x2 average pool of the input (the target layer, half resolution), then a linear head."""

    def __init__(self, channels: int = 2, size: tuple[int, int] = (8, 6)) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels * size[0] * size[1] // 4, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pool(x))


class PoolExplainer(LayerExplainer):
    """A stand-in base whose layer map is channel 0 of the target layer: each cell's mean input value."""

    def layer_map(self, model: nn.Module, layer_name: str, inputs: Tensor, targets: Tensor | None) -> Tensor:
        return F.avg_pool2d(inputs[:, :1], 2).squeeze(1)


def test_counts_by_hand() -> None:
    # n = 5 cells, crops of m = 3 at offsets 0, 1, 2: cell r is covered by the crops with i <= r < i + 3
    assert cell_counts(3, 5).tolist() == [1.0, 2.0, 3.0, 2.0, 1.0]
    assert cell_counts(4, 4).tolist() == [1.0] * 4
    assert cell_counts(2, 6).tolist() == [1.0, 2.0, 2.0, 2.0, 2.0, 1.0]


def test_grid_bookkeeping_on_a_constructed_example() -> None:
    # input 8 x 6, layer 4 x 3 (cell = 2 px); grid (6, 5): the input is enlarged by 2 x 2 cells to 12 x 10 and
    # (6 - 4 + 1) * (5 - 3 + 1) = 9 crops are explained. Every crop covering grid cell (r, c) sees there the
    # same 2 x 2 pixels of the enlarged image, so J = count * pool(enlarged) and J / count = pool(enlarged).
    inputs = torch.arange(2 * 2 * 8 * 6, dtype=torch.float32).view(2, 2, 8, 6) ** 1.5 / 50
    model = PooledNet().eval()
    enlarged = F.interpolate(inputs, size=(12, 10), mode="nearest")
    cells = F.avg_pool2d(enlarged[:, :1], 2).squeeze(1)
    explainer = JitterCAM(PoolExplainer("pool"), grid=(6, 5), upsample="none", internal_batch_size=4)
    torch.testing.assert_close(explainer(model, inputs), cells, rtol=1e-6, atol=1e-6)
    counts = torch.outer(torch.tensor([1.0, 2, 3, 3, 2, 1]), torch.tensor([1.0, 2, 3, 2, 1]))
    authors = JitterCAM(PoolExplainer("pool"), grid=(6, 5), upsample="none", counter_start=1.0)(model, inputs)
    torch.testing.assert_close(authors, cells * counts / (counts + 1), rtol=1e-6, atol=1e-6)
    # scale 1.5 on (4, 3) rounds to (6, 4); the chunk size changes nothing
    scaled = JitterCAM(PoolExplainer("pool"), scale=1.5, upsample="none", internal_batch_size=1)(model, inputs)
    enlarged = F.interpolate(inputs, size=(12, 8), mode="nearest")
    torch.testing.assert_close(scaled, F.avg_pool2d(enlarged[:, :1], 2).squeeze(1), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("base", [GradCAM(), ExpectedGradCAM(draws=3)])
def test_grid_equal_to_the_layer_is_the_base_explainer(base: LayerExplainer, small_net: SmallNet) -> None:
    small_net.eval()
    inputs = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([0, 2, 1])
    torch.testing.assert_close(JitterCAM(base, grid=8)(small_net, inputs, targets), base(small_net, inputs, targets))
    torch.testing.assert_close(JitterCAM(base, scale=1.0, upsample="nearest")(small_net, inputs), base(small_net, inputs))


def published_loop(model: nn.Module, image: Tensor, target: int, new_size: int, model_blocks: int) -> Tensor:
    """A straightforward port of the authors' JitterCam.__call__ (square images, jitter stride 1), with
    Grad-CAM at layer resolution as their make_gcam, the counter started at one, without the final resize."""
    image_size = image.shape[-1]
    block_size = image_size // model_blocks
    x = torch.zeros(new_size, new_size)
    counter = torch.ones(new_size, new_size)
    resized = F.interpolate(image, image_size + (new_size - model_blocks) * block_size)
    gcam = GradCAM("features.3", upsample="none")
    for i in range(0, new_size - model_blocks + 1):
        for j in range(0, new_size - model_blocks + 1):
            patch = resized[:, :, j * block_size : image_size + j * block_size, i * block_size : image_size + i * block_size]
            x[j : model_blocks + j, i : model_blocks + i] += gcam(model, patch, target)[0]
            counter[j : model_blocks + j, i : model_blocks + i] += 1.0
    return x / counter


class StridedNet(nn.Module):
    """Conv stride 2 (12 -> 6) + ReLU, conv + ReLU (the target, 6 x 6), average pool + linear."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict([("0", nn.Conv2d(3, 6, 3, stride=2, padding=1)), ("1", nn.ReLU()), ("2", nn.Conv2d(6, 6, 3, padding=1)), ("3", nn.ReLU())])
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def test_counter_start_one_and_nearest_is_the_published_loop() -> None:
    torch.manual_seed(0)
    model = StridedNet().eval()
    inputs = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(3))
    targets = torch.tensor([1, 3])
    explainer = JitterCAM(GradCAM("features.3"), grid=9, counter_start=1.0, resize="nearest", upsample="none")
    maps = explainer(model, inputs, targets)
    expected = torch.stack([published_loop(model, inputs[b : b + 1], int(targets[b]), 9, 6) for b in range(2)])
    assert maps.shape == (2, 9, 9)
    torch.testing.assert_close(maps, expected, rtol=1e-5, atol=1e-6)
    # the final step of the paper: bilinear resizing of that grid to the input
    full = JitterCAM(GradCAM("features.3"), grid=9, counter_start=1.0)(model, inputs, targets)
    torch.testing.assert_close(full, F.interpolate(expected.unsqueeze(1), size=(12, 12), mode="bilinear").squeeze(1), rtol=1e-5, atol=1e-6)


def test_targets_default_to_the_class_of_the_whole_input() -> None:
    torch.manual_seed(0)
    model = StridedNet().eval()
    inputs = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(4))
    predicted = model(inputs).argmax(1)
    explainer = JitterCAM(GradCAM("features.3"), grid=8)
    torch.testing.assert_close(explainer(model, inputs), explainer(model, inputs, predicted))


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="base must be a layer explainer"):
        JitterCAM(base="gradcam")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="resize must be one of"):
        JitterCAM(resize="bicubic")
    with pytest.raises(ValueError, match="counter_start must be >= 0"):
        JitterCAM(counter_start=-1.0)
    with pytest.raises(ValueError, match="scale must be >= 1"):
        JitterCAM(scale=0.5)
    with pytest.raises(ValueError, match="at least the target layer's size"):
        JitterCAM(GradCAM("features.3"), grid=4)(StridedNet().eval(), torch.randn(1, 3, 12, 12))
    with pytest.raises(ValueError, match="explains images"):
        JitterCAM()(nn.Sequential(nn.Conv1d(2, 3, 3), nn.Flatten(), nn.Linear(3 * 6, 2)), torch.randn(1, 2, 8))
