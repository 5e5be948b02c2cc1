"""MassPreservingUpsampler: each property of the USU abstract as a number, its potentials, and its use as
`upsample=` of a CAM."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_xai.explainers import ExpectedGradCAM, GradCAM, JitterCAM, MassPreservingUpsampler
from lit_xai.explainers.resolution.mass_preserving import nearest_cells, redistribute, sobel_edges
from tests.conftest import SmallNet

MAPS = torch.tensor([[[3.0, 0.5, 2.0], [1.0, 4.0, 0.0], [0.25, 1.5, 2.5], [0.0, 0.75, 5.0]]])  # (1, 4, 3)
from tests.shapes_helpers import single_thread


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Small convolutions on a busy 2-core machine run several times faster on one thread."""
    with single_thread():
        yield


def fixed(potential: Tensor):
    return lambda model, inputs, targets: potential


def cell_sums(fine: Tensor, coarse: tuple[int, ...]) -> Tensor:
    """Sum of `fine` (B, *S) over the pixels of each nearest-neighbour cell of a `coarse` grid."""
    cells = [nearest_cells(s, S, fine.device) for s, S in zip(coarse, fine.shape[1:])]
    flat = (cells[0].view(-1, 1) * coarse[1] + cells[1].view(1, -1)).flatten() if len(coarse) == 2 else cells[0]
    out = fine.new_zeros(fine.shape[0], int(torch.tensor(coarse).prod()))
    return out.index_add_(1, flat, fine.flatten(1)).view(fine.shape[0], *coarse)


def upsampled(maps: Tensor, size: tuple[int, ...], potential: Tensor, bandwidth: float = 0.0) -> Tensor:
    model = nn.Identity()
    inputs = torch.zeros(maps.shape[0], 1, *size)
    return MassPreservingUpsampler(fixed(potential), bandwidth=bandwidth)(maps, size, model=model, inputs=inputs)


@pytest.mark.parametrize("size", [(8, 9), (10, 7)])
def test_mass_is_preserved_per_cell_and_in_total_and_bilinear_breaks_it(size: tuple[int, int]) -> None:
    potential = torch.rand(1, *size, generator=torch.Generator().manual_seed(0)) ** 3
    fine = upsampled(MAPS, size, potential)
    torch.testing.assert_close(cell_sums(fine, (4, 3)), MAPS, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(fine.sum(), MAPS.sum())
    # the order of cell masses is the order of the map's values
    assert torch.equal(cell_sums(fine, (4, 3)).flatten().argsort(), MAPS.flatten().argsort())
    # bilinear interpolation, read as density (divided by the cell area), does not keep the cells' masses
    area = cell_sums(torch.ones(1, *size), (4, 3))
    bilinear = F.interpolate(MAPS.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)
    error = (cell_sums(bilinear, (4, 3)) / area - MAPS).abs().max().item()
    assert error > 0.5  # measured 1.28 on (8, 9), 1.19 on (10, 7) for masses of 0..5
    # nor exactly in total (measured 20.4949 for 20.5 on (10, 7))
    if size == (10, 7):
        assert abs((bilinear * (MAPS.numel() / (10 * 7))).sum().item() - MAPS.sum().item()) > 1e-3


@pytest.mark.parametrize("size", [(8, 9), (10, 7)])
def test_constant_potential_is_nearest_divided_by_the_cell_area(size: tuple[int, int]) -> None:
    fine = upsampled(MAPS, size, torch.full((1, *size), 0.3))
    nearest = F.interpolate(MAPS.unsqueeze(1), size=size, mode="nearest").squeeze(1)
    area = F.interpolate(cell_sums(torch.ones(1, *size), (4, 3)).unsqueeze(1), size=size, mode="nearest").squeeze(1)
    torch.testing.assert_close(fine, nearest / area, rtol=1e-6, atol=1e-7)
    # a zero potential is the uniform split too
    torch.testing.assert_close(upsampled(MAPS, size, torch.zeros(1, *size)), nearest / area, rtol=1e-6, atol=1e-7)


def test_boundaries_of_the_potential_are_not_crossed() -> None:
    # 2 x 2 cells of 3 x 3 pixels; the object (potential 1) is the columns < 4, so the right cells straddle it.
    # Mass in the cells touching the object stays on the object's pixels, with or without smoothing.
    maps = torch.tensor([[[2.0, 1.0], [4.0, 3.0]]])
    potential = torch.zeros(1, 6, 6)
    potential[..., :4] = 1.0
    outside = potential == 0
    for bandwidth in (0.0, 1.0, 3.0):
        fine = upsampled(maps, (6, 6), potential, bandwidth)
        assert fine[outside].abs().max().item() == 0.0, bandwidth
        torch.testing.assert_close(fine.sum(), maps.sum())
    fine = upsampled(maps, (6, 6), potential)
    # by hand: cell (0, 1) puts its mass 1 on its 3 x 1 object pixels (column 3): 1/3 each
    torch.testing.assert_close(fine[0, :3, 3], torch.full((3,), 1 / 3))
    torch.testing.assert_close(fine[0, :3, :3], torch.full((3, 3), 2 / 9))
    bilinear = F.interpolate(maps.unsqueeze(1), size=(6, 6), mode="bilinear", align_corners=False).squeeze(1)
    assert bilinear[outside].min().item() > 0.9  # interpolation bleeds everywhere


def test_bandwidth_smoothing_conserves_every_cells_mass() -> None:
    size = (10, 7)
    potential = torch.rand(1, *size, generator=torch.Generator().manual_seed(1)) + 0.1
    # each cell alone (a one-hot map) puts exactly its mass somewhere: linear, so every cell keeps its mass
    one_hot = torch.eye(12).view(12, 4, 3)
    spread = upsampled(one_hot, size, potential.expand(12, *size), bandwidth=2.0)
    torch.testing.assert_close(spread.flatten(1).sum(1), torch.ones(12))
    assert (spread >= 0).all()
    kept = cell_sums(spread, (4, 3)).flatten(1).diagonal()
    assert kept.max().item() < 0.5  # mass does cross the cell borders (measured: 0.14..0.36 of each cell's mass stays in it)
    smooth = upsampled(MAPS, size, potential, bandwidth=2.0)
    torch.testing.assert_close(smooth.sum(), MAPS.sum())
    torch.testing.assert_close(smooth, (MAPS.flatten().view(12, 1, 1) * spread).sum(0, keepdim=True), rtol=1e-5, atol=1e-6)
    # a tiny bandwidth is the unsmoothed operator
    torch.testing.assert_close(upsampled(MAPS, size, potential, bandwidth=1e-3), upsampled(MAPS, size, potential), rtol=1e-5, atol=1e-6)


def test_series_are_redistributed_along_time() -> None:
    maps = torch.tensor([[1.0, 3.0]])
    potential = torch.tensor([[0.0, 1.0, 3.0, 1.0, 1.0, 2.0]])
    torch.testing.assert_close(redistribute(maps, potential), torch.tensor([[0.0, 0.25, 0.75, 0.75, 0.75, 1.5]]))


def test_input_edges_by_hand() -> None:
    image = torch.zeros(1, 2, 4, 5)
    image[:, 0, :, 3:] = 1.0  # a vertical step between columns 2 and 3 in channel 0
    edges = sobel_edges(image)
    # Sobel x on a unit step: 1 + 2 + 1 = 4 on the two columns beside it, 0 elsewhere (replicate padding)
    expected = torch.zeros(1, 4, 5)
    expected[..., 2:4] = 4.0
    torch.testing.assert_close(edges, expected)
    series = torch.tensor([[[0.0, 0.0, 2.0, 2.0]]])
    torch.testing.assert_close(sobel_edges(series), torch.tensor([[0.0, 1.0, 1.0, 0.0]]))


def test_activation_and_gradient_potentials(small_net: SmallNet) -> None:
    small_net.eval()
    inputs = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([1, 2])
    found = MassPreservingUpsampler("activations").potential_map(small_net, inputs, targets, (8, 8))
    with torch.no_grad():
        deepest_full_resolution = small_net.features(inputs)  # features.4 (ReLU) is the last 8 x 8 layer
        first = small_net.features[0](inputs)
    torch.testing.assert_close(found, deepest_full_resolution.abs().sum(1))
    named = MassPreservingUpsampler("activations", layer="features.0").potential_map(small_net, inputs, targets, (16, 16))
    resized = F.interpolate(first.abs().sum(1, keepdim=True), size=(16, 16), mode="bilinear").squeeze(1)
    torch.testing.assert_close(named, resized.clamp_min(0))
    x = inputs.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(small_net(x).gather(1, targets.view(-1, 1)).sum(), x)
    gradients = MassPreservingUpsampler("gradients").potential_map(small_net, inputs, targets, (8, 8))
    torch.testing.assert_close(gradients, grad.abs().sum(1))
    edges = MassPreservingUpsampler("input_edges").potential_map(small_net, inputs, None, (8, 8))
    torch.testing.assert_close(edges, sobel_edges(inputs))


@pytest.mark.parametrize("potential", ["activations", "gradients", "input_edges"])
def test_as_the_upsampler_of_cams(potential: str, small_net: SmallNet) -> None:
    small_net.eval()
    model = nn.Sequential(small_net.features, nn.MaxPool2d(2), small_net.head)  # a 4 x 4 target layer
    inputs = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    upsampler = MassPreservingUpsampler(potential)
    for explainer, coarse in (
        (GradCAM("1", upsample=upsampler), GradCAM("1", upsample="none")),
        (ExpectedGradCAM("1", upsample=upsampler, draws=3), ExpectedGradCAM("1", upsample="none", draws=3)),
        (JitterCAM(GradCAM("1"), grid=6, upsample=upsampler), JitterCAM(GradCAM("1"), grid=6, upsample="none")),
    ):
        layer = coarse(model, inputs)
        with torch.inference_mode():
            fine = explainer(model, inputs)
        assert fine.shape == (2, 8, 8) and (fine >= 0).all()
        torch.testing.assert_close(cell_sums(fine, tuple(layer.shape[1:])), layer, rtol=1e-5, atol=1e-6)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="potential must be one of"):
        MassPreservingUpsampler("edges")
    with pytest.raises(ValueError, match="bandwidth must be"):
        MassPreservingUpsampler(bandwidth=-1.0)
    with pytest.raises(ValueError, match="layer= names the layer"):
        MassPreservingUpsampler("gradients", layer="features.0")
    with pytest.raises(ValueError, match="call it with model= and inputs="):
        MassPreservingUpsampler()(MAPS, (8, 6))
    with pytest.raises(ValueError, match="negative or non-finite"):
        upsampled(MAPS, (8, 6), -torch.ones(1, 8, 6))
