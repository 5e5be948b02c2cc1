"""Localisation metrics (pointing game, energy pointing game, weak localisation) against hand-built maps,
scipy's distance transform and connected components, and DDP == one process."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from lit_xai.metrics.localisation import (
    EnergyPointingGame,
    PointingGame,
    WeakLocalization,
    component_labels,
    ground_truth_regions,
    largest_component,
    within_distance,
)


def point_map(size: int, row: int, col: int) -> Tensor:
    saliency = torch.zeros(1, size, size)
    saliency[0, row, col] = 1.0
    return saliency


def pointing(saliency: Tensor, truth: object, tolerance: int = 15) -> float:
    metric = PointingGame(tolerance)
    metric.update(saliency, truth)
    return metric.compute().item()


# ----------------------------------------------------------------------------------------------------------
# Ground truth parsing: the inclusive box convention


def test_boxes_are_inclusive_pixel_indices_clipped_and_fractional() -> None:
    saliency = torch.zeros(1, 8, 8)
    regions = ground_truth_regions(torch.tensor([[2, 3, 5, 4]]), saliency)  # x 2..5, y 3..4
    expected = torch.zeros(1, 8, 8, dtype=torch.bool)
    expected[0, 3:5, 2:6] = True
    assert torch.equal(regions.mask, expected) and regions.mask.sum().item() == 8
    assert regions.lower.tolist() == [[[3, 2]]] and regions.upper.tolist() == [[[4, 5]]]  # (row, col)
    # fractional coordinates cover the pixels whose centres are inside; boxes are clipped to the map
    fractional = ground_truth_regions(torch.tensor([[1.5, 2.6, 4.4, 3.0]]), saliency)
    assert fractional.lower.tolist() == [[[3, 2]]] and fractional.upper.tolist() == [[[3, 4]]]
    clipped = ground_truth_regions(torch.tensor([[-3, 6, 2, 20]]), saliency)
    assert clipped.mask.sum().item() == 3 * 2 and clipped.upper.tolist() == [[[7, 2]]]
    # a 0/1 float mask equals the bool mask; its box is the tight box around it
    as_mask = ground_truth_regions(expected.float(), saliency)
    assert torch.equal(as_mask.mask, expected) and as_mask.lower.tolist() == [[[3, 2]]] and as_mask.upper.tolist() == [[[4, 5]]]
    # several boxes per image: the union, each kept for IoU
    several = ground_truth_regions([torch.tensor([[0, 0, 1, 1], [6, 6, 7, 7]])], saliency)
    assert several.mask.sum().item() == 8 and several.valid.tolist() == [[True, True]]


def test_clear_errors() -> None:
    metric = PointingGame()
    with pytest.raises(ValueError, match="reduce the channels first"):
        metric.update(torch.rand(2, 3, 8, 8), torch.ones(2, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="NaN"):
        metric.update(torch.full((1, 8, 8), math.nan), torch.ones(1, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="masks must have the saliency's shape"):
        metric.update(torch.rand(1, 8, 8), torch.ones(1, 7, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool or hold only 0 and 1"):
        metric.update(torch.rand(1, 8, 8), torch.full((1, 8, 8), 0.5))
    with pytest.raises(ValueError, match=r"boxes of shape \(1, 4\)"):
        metric.update(torch.rand(1, 8, 8), torch.tensor([[1, 2, 3]]))
    with pytest.raises(ValueError, match="minimum greater than its maximum"):
        metric.update(torch.rand(1, 8, 8), torch.tensor([[5, 0, 4, 3]]))
    with pytest.raises(ValueError, match=r"images \[1\] have no ground-truth pixel"):
        metric.update(torch.rand(2, 8, 8), torch.tensor([[0, 0, 3, 3], [9, 9, 12, 12]]))
    with pytest.raises(ValueError, match="one entry per image"):
        metric.update(torch.rand(2, 8, 8), [torch.tensor([[0, 0, 1, 1]])])
    with pytest.raises(ValueError, match="tolerance must be an int >= 0"):
        PointingGame(tolerance=-1)
    with pytest.raises(ValueError, match="threshold must be"):
        WeakLocalization(threshold="otsu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"iou must be a number in \(0, 1\]"):
        WeakLocalization(iou=0.0)
    assert metric.count.item() == 0 and math.isnan(metric.compute().item())
    assert PointingGame.higher_is_better and EnergyPointingGame.higher_is_better and WeakLocalization.higher_is_better


# ----------------------------------------------------------------------------------------------------------
# Pointing game


@pytest.mark.parametrize(
    ("offset", "hit"),
    [((0, 15), 1.0), ((0, 16), 0.0), ((-15, 0), 1.0), ((16, 0), 0.0), ((9, 12), 1.0), ((-12, -9), 1.0), ((11, 11), 0.0), ((10, 11), 1.0)],
)
def test_pointing_tolerance_is_euclidean_in_pixels(offset: tuple[int, int], hit: float) -> None:
    # object: one pixel at (24, 24); distances 15, 16, 15 (9-12-15 triangle), 15.56 (11, 11), 14.87 (10, 11)
    mask = torch.zeros(1, 48, 48, dtype=torch.bool)
    mask[0, 24, 24] = True
    assert pointing(point_map(48, 24 + offset[0], 24 + offset[1]), mask) == hit


def test_pointing_tolerance_from_a_box_edge_and_zero_tolerance() -> None:
    box = torch.tensor([[10, 10, 19, 19]])  # x, y in 10..19 inclusive
    assert pointing(point_map(48, 15, 19 + 15), box) == 1.0
    assert pointing(point_map(48, 15, 19 + 16), box) == 0.0
    assert pointing(point_map(48, 15, 0), box, tolerance=10) == 1.0  # 10 px left of x_min = 10
    assert pointing(point_map(48, 15, 0), box, tolerance=9) == 0.0
    assert pointing(point_map(48, 15, 19), box, tolerance=0) == 1.0
    assert pointing(point_map(48, 15, 20), box, tolerance=0) == 0.0


def test_pointing_game_mean_over_batches_several_objects_and_series() -> None:
    metric = PointingGame(tolerance=2)
    saliency = torch.zeros(3, 16, 16)
    saliency[0, 1, 1] = 5.0  # on object -> hit
    saliency[1, 14, 14] = 5.0  # far -> miss
    saliency[2, 8, 11] = 5.0  # 2 px from the second box -> hit
    boxes = [torch.tensor([0, 0, 2, 2]), torch.tensor([[0, 0, 2, 2]]), torch.tensor([[0, 0, 1, 1], [7, 5, 9, 9]])]
    metric.update(saliency, boxes)
    assert metric.compute().item() == pytest.approx(2 / 3)
    metric.update(point_map(16, 0, 0), torch.tensor([[0, 0, 0, 0]]))
    assert metric.compute().item() == pytest.approx(3 / 4)
    # time series: interval t in 10..20, tolerance 15 reaches t = 35, not 36
    series = PointingGame(15)
    for peak in (35, 36, 15, 0):
        curve = torch.zeros(1, 50)
        curve[0, peak] = 1.0
        series.update(curve, torch.tensor([[10, 20]]))
    assert series.compute().item() == pytest.approx(3 / 4)


def test_pointing_ties_count_as_the_fraction_of_maxima_that_hit() -> None:
    mask = torch.zeros(1, 10, 10, dtype=torch.bool)
    mask[0, 0:2, 0:2] = True
    two = torch.zeros(1, 10, 10)
    two[0, 0, 0] = two[0, 9, 9] = 3.0
    assert pointing(two, mask, tolerance=0) == 0.5
    three = two.clone()
    three[0, 1, 1] = 3.0
    assert pointing(three, mask, tolerance=0) == pytest.approx(2 / 3)
    # a constant map scores the dilated object's share of the map: 4/100 with tolerance 0; with tolerance 1
    # the 2x2 corner block gains (2, 0), (2, 1), (0, 2), (1, 2) but not (2, 2) (sqrt 2 away): 8/100
    flat = torch.ones(1, 10, 10)
    assert pointing(flat, mask, tolerance=0) == pytest.approx(0.04)
    assert pointing(flat, mask, tolerance=1) == pytest.approx(0.08)


def test_dilation_matches_scipy_distance_transform() -> None:
    generator = torch.Generator().manual_seed(0)
    masks = torch.rand(4, 40, 33, generator=generator) > 0.995
    masks[:, 20, 16] = True
    for tolerance in (0, 1, 3, 7, 15):
        ours = within_distance(masks, tolerance)
        for image in range(4):
            distance = ndimage.distance_transform_edt(~masks[image].numpy())
            assert np.array_equal(ours[image].numpy(), distance <= tolerance), (tolerance, image)


# ----------------------------------------------------------------------------------------------------------
# Energy pointing game


def test_energy_share_by_hand() -> None:
    saliency = torch.tensor([[[4.0, -2.0], [1.0, 3.0]], [[0.0, 0.0], [0.0, 0.0]], [[-1.0, -5.0], [-2.0, -3.0]]])
    mask = torch.tensor([[[1, 0], [0, 0]], [[1, 1], [1, 1]], [[1, 1], [1, 1]]], dtype=torch.bool)
    metric = EnergyPointingGame()
    metric.update(saliency[:1], mask[:1])
    assert metric.compute().item() == pytest.approx(4 / 8)  # ReLU: 4 of 4 + 0 + 1 + 3
    metric.update(saliency[1:], mask[1:])  # all-zero and all-negative maps: no energy, share 0
    assert metric.compute().item() == pytest.approx(0.5 / 3)
    # boxes: inclusive (x 1..2, y 0..1) on a 3x4 map of 1..12 -> (2 + 3 + 6 + 7) / 78
    grid = torch.arange(1.0, 13.0).view(1, 3, 4)
    boxes = EnergyPointingGame()
    boxes.update(grid, torch.tensor([[1, 0, 2, 1]]))
    assert boxes.compute().item() == pytest.approx(18 / 78)
    # two boxes: the union (overlap counted once): x 0..1, y 0..0 and x 1..1, y 0..2 -> 1 + 2 + 6 + 10
    union = EnergyPointingGame()
    union.update(grid, [torch.tensor([[0, 0, 1, 0], [1, 0, 1, 2]])])
    assert union.compute().item() == pytest.approx(19 / 78)
    series = EnergyPointingGame()
    series.update(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([[2, 3]]))
    assert series.compute().item() == pytest.approx(7 / 10)


# ----------------------------------------------------------------------------------------------------------
# Weak localisation


def block_map() -> Tensor:
    """10x10 zeros with ones on rows 2..5, columns 3..6: the box (x 3..6, y 2..5), 16 px."""
    saliency = torch.zeros(1, 10, 10)
    saliency[0, 2:6, 3:7] = 1.0
    return saliency


@pytest.mark.parametrize(
    ("truth", "iou"),
    [
        (torch.tensor([[3, 2, 6, 5]]), 1.0),
        (torch.tensor([[3, 2, 6, 3]]), 0.5),  # 8 of 16 px: exactly at the default threshold
        (torch.tensor([[3, 2, 10, 5]]), 16 / 28),  # the box is clipped to x 3..9: 28 px
        (torch.tensor([[0, 0, 2, 1]]), 0.0),
    ],
)
def test_weak_localisation_iou_by_hand(truth: Tensor, iou: float) -> None:
    expected = iou
    metric = WeakLocalization(threshold="value", value=0.5, iou=0.5)
    metric.update(block_map(), truth)
    assert metric.mean_iou().item() == pytest.approx(expected)
    assert metric.compute().item() == (1.0 if expected >= 0.5 else 0.0)
    strict = WeakLocalization(threshold="value", iou=0.51)
    strict.update(block_map(), truth)
    assert strict.compute().item() == (1.0 if expected >= 0.51 else 0.0)


def test_value_threshold_is_a_fraction_of_the_min_max_range() -> None:
    # row 0 holds -1, 0, 1, 2, 3 (range 4): value 0.5 keeps >= 1 (x 2..4), value 0.75 keeps >= 2 (x 3..4)
    saliency = torch.tensor([[[-1.0, 0.0, 1.0, 2.0, 3.0]] + [[-1.0] * 5] * 4])
    truth = torch.tensor([[2, 0, 4, 0]])
    for value, iou in ((0.5, 1.0), (0.75, 2 / 3), (0.0, 3 / 25)):
        metric = WeakLocalization(threshold="value", value=value, component="all")
        metric.update(saliency, truth)
        assert metric.mean_iou().item() == pytest.approx(iou), value


def test_mean_threshold_by_hand() -> None:
    # mean of 4x4 map = (8 + 4 + 4) / 16 = 1: kept: the 8 (x 0, y 0) and the two 4's (x 1..2, y 0) -> box x 0..2, y 0
    saliency = torch.zeros(1, 4, 4)
    saliency[0, 0, 0], saliency[0, 0, 1], saliency[0, 0, 2] = 8.0, 4.0, 4.0
    metric = WeakLocalization(threshold="mean")
    metric.update(saliency, torch.tensor([[0, 0, 3, 0]]))  # 3 of 4 px
    assert metric.mean_iou().item() == pytest.approx(0.75)
    assert metric.compute().item() == 1.0


@pytest.mark.parametrize(("energy", "kept"), [(0.5, 1), (0.6, 2), (0.75, 2), (0.8, 3), (1.0, 5)])
def test_energy_threshold_keeps_the_smallest_top_set(energy: float, kept: int) -> None:
    # energies 8, 4, 2, 1, 1 (total 16) at x = 0..4 of row 0; negatives carry no energy
    saliency = torch.full((1, 3, 6), -1.0)
    saliency[0, 0, :5] = torch.tensor([8.0, 4.0, 2.0, 1.0, 1.0])
    metric = WeakLocalization(threshold="energy", energy=energy, component="all")
    lower, upper = metric.boxes(saliency)
    assert lower.tolist() == [[0, 0]] and upper.tolist() == [[0, kept - 1]]  # ties at 1 are kept together
    metric.update(saliency, torch.tensor([[0, 0, 1, 0]]))
    assert metric.mean_iou().item() == pytest.approx(min(kept, 2) / max(kept, 2))


def test_largest_component_or_all_selected_pixels() -> None:
    saliency = torch.zeros(1, 12, 12)
    saliency[0, 1:4, 1:4] = 1.0  # 3x3 blob, x 1..3, y 1..3
    saliency[0, 8:10, 8:10] = 1.0  # 2x2 blob, x 8..9, y 8..9
    saliency[0, 4, 4] = 1.0  # touches the 3x3 blob diagonally: 8-connectivity joins it (10 px)
    truth = torch.tensor([[1, 1, 4, 4]])
    largest = WeakLocalization(threshold="value", component="largest")
    largest.update(saliency, truth)
    assert largest.mean_iou().item() == pytest.approx(1.0)
    everything = WeakLocalization(threshold="value", component="all")
    everything.update(saliency, truth)
    assert everything.mean_iou().item() == pytest.approx(16 / 81)  # box x 1..9, y 1..9
    assert everything.compute().item() == 0.0
    # equally large components: the one with more saliency wins
    tie = torch.zeros(1, 12, 12)
    tie[0, 0:2, 0:2] = 1.0
    tie[0, 6:8, 6:8] = 2.0
    metric = WeakLocalization(threshold="value", value=0.4)
    metric.update(tie, torch.tensor([[6, 6, 7, 7]]))
    assert metric.mean_iou().item() == 1.0


def test_components_match_scipy() -> None:
    generator = torch.Generator().manual_seed(1)
    selected = torch.rand(5, 24, 19, generator=generator) > 0.5
    labels = component_labels(selected).view(5, 24, 19)
    for image in range(5):
        reference, count = ndimage.label(selected[image].numpy(), structure=np.ones((3, 3)))
        ours = labels[image].numpy()
        pairs = {(int(a), int(b)) for a, b in zip(reference[reference > 0], ours[reference > 0])}
        assert len(pairs) == count == len({b for _, b in pairs})  # the same partition
        assert (ours[reference == 0] == -1).all()
        sizes = np.bincount(reference.ravel())[1:]
        kept = largest_component(selected[image : image + 1], torch.rand(1, 24, 19, generator=generator))[0].numpy()
        assert kept.sum() == sizes.max() and len(np.unique(reference[kept])) == 1
    # a snake (rows joined at alternate ends, 496 px long) is one component, labelled by its last pixel
    snake = torch.zeros(1, 31, 31, dtype=torch.bool)
    snake[0, ::2, :] = True
    snake[0, 1::4, -1] = True
    snake[0, 3::4, 0] = True
    assert ndimage.label(snake[0].numpy(), structure=np.ones((3, 3)))[1] == 1
    assert component_labels(snake).unique().tolist() == [-1, 31 * 31 - 1]


def test_weak_localisation_misses_for_constant_maps_and_uses_the_best_of_several_boxes() -> None:
    metric = WeakLocalization(threshold="mean")
    metric.update(torch.zeros(2, 6, 6), torch.tensor([[0, 0, 5, 5], [1, 1, 2, 2]]))
    assert metric.compute().item() == 0.0 and metric.mean_iou().item() == 0.0
    best = WeakLocalization(threshold="value")
    best.update(block_map(), [torch.tensor([[0, 0, 1, 1], [3, 2, 6, 4], [3, 2, 9, 9]])])  # IoUs 0, 12/16, 16/56
    assert best.mean_iou().item() == pytest.approx(0.75) and best.compute().item() == 1.0
    # a mask as ground truth: its tight box (here an L shape boxed to x 3..6, y 2..5)
    mask = torch.zeros(1, 10, 10, dtype=torch.bool)
    mask[0, 2:6, 3] = True
    mask[0, 5, 3:7] = True
    from_mask = WeakLocalization()
    from_mask.update(block_map(), mask)
    assert from_mask.mean_iou().item() == 1.0
    # series: the interval around the selected steps
    series = WeakLocalization(threshold="value", component="all")
    series.update(torch.tensor([[0.0, 0.0, 1.0, 0.2, 1.0, 0.0]]), torch.tensor([[2, 5]]))
    assert series.mean_iou().item() == pytest.approx(3 / 4)


# ----------------------------------------------------------------------------------------------------------
# DDP: two processes give what one gives


def localisation_data(n: int = 16) -> TensorDataset:
    """Blob maps around random centres and ground-truth boxes/masks near them (a mix of hits and misses)."""
    generator = torch.Generator().manual_seed(0)
    centres = torch.randint(2, 14, (n, 2), generator=generator)
    rows, cols = torch.arange(16).view(1, 16, 1), torch.arange(16).view(1, 1, 16)
    distance2 = (rows - centres[:, 0].view(n, 1, 1)) ** 2 + (cols - centres[:, 1].view(n, 1, 1)) ** 2
    saliency = torch.exp(-distance2 / 2.0) + 0.1 * torch.rand(n, 16, 16, generator=generator) - 0.03
    shift = torch.randint(-3, 4, (n, 2), generator=generator)
    y, x = (centres + shift).clamp(2, 13).unbind(1)
    boxes = torch.stack([x - 2, y - 2, x + 2, y + 1], dim=1)
    masks = ground_truth_regions(boxes, saliency).mask
    return TensorDataset(saliency, masks, boxes)


class LocalisationModule(pl.LightningModule):
    """Logs the three localisation metrics of fixed maps during validation."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))  # DDP needs a parameter
        self.pointing = PointingGame(tolerance=0)
        self.energy = EnergyPointingGame()
        self.weak = WeakLocalization(threshold="energy", energy=0.5)

    def setup(self, stage: str) -> None:
        from tests.helpers import destroy_gloo_group_at_exit

        destroy_gloo_group_at_exit()

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        saliency, masks, boxes = batch
        self.pointing.update(saliency, masks)
        self.energy.update(saliency, masks)
        self.weak.update(saliency, boxes)
        self.log("pointing", self.pointing)
        self.log("energy", self.energy)
        self.log("weak", self.weak)

    def on_validation_epoch_end(self) -> None:
        self.log("weak_iou", self.weak.mean_iou())


def validate(devices: int) -> dict[str, float]:
    run = pl.Trainer(
        accelerator="cpu", devices=devices, strategy="ddp_fork" if devices > 1 else "auto", logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    run.validate(LocalisationModule(), DataLoader(localisation_data(), batch_size=4), verbose=False)
    return {key: value.item() for key, value in run.callback_metrics.items()}


@pytest.mark.xdist_group("ddp")  # spawns DDP processes: one at a time, on one xdist worker (Makefile: --dist loadgroup)
def test_two_processes_equal_one_and_the_direct_computation() -> None:
    data = localisation_data()
    saliency, masks, boxes = data.tensors
    direct = {"pointing": PointingGame(tolerance=0), "energy": EnergyPointingGame(), "weak": WeakLocalization(threshold="energy")}
    for name, metric in direct.items():
        metric.update(saliency, boxes if name == "weak" else masks)
    expected = {name: metric.compute().item() for name, metric in direct.items()}
    expected["weak_iou"] = direct["weak"].mean_iou().item()
    # the data mix hits and misses (measured: pointing 0.625, energy 0.280, weak 0.1875, IoU 0.308), and each
    # rank's half alone gives other values (rank 0: 0.75, 0.309, 0.125, 0.345), so only a synchronised
    # metric can match
    assert 0 < expected["pointing"] < 1 and 0 < expected["weak"] < 1 and 0 < expected["energy"] < 1
    rank0 = {"pointing": PointingGame(tolerance=0), "energy": EnergyPointingGame(), "weak": WeakLocalization(threshold="energy")}
    for name, metric in rank0.items():
        metric.update(saliency[::2], boxes[::2] if name == "weak" else masks[::2])
        assert abs(metric.compute().item() - expected[name]) > 0.02, name
    single, double = validate(1), validate(2)
    assert set(single) == set(double) == set(expected)
    for key, value in expected.items():
        assert single[key] == pytest.approx(value, abs=1e-6), key
        assert double[key] == pytest.approx(value, abs=1e-6), key
