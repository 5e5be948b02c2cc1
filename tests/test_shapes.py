"""ShapesDataModule: shapes by hand, determinism per (seed, split, index), balance, masks and boxes that
match the drawn shape with distractors kept away, a small CNN that learns it, and Grad-CAM that points at it."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from lit_xai.datamodules.shapes import GAP, SHAPES, ShapesDataModule, ShapesDataset, render_shapes, shape_mask
from lit_xai.explainers import GradCAM, RandomSaliency
from lit_xai.metrics.localisation import EnergyPointingGame, PointingGame, WeakLocalization
from tests.shapes_helpers import single_thread, trained_shapes_classifier


@pytest.mark.parametrize(
    ("shape", "pixels"),
    # radius 5 at a pixel centre: square |d| <= 4 -> 9 x 9; disc: Gauss circle N(5) = 81; triangle rows of
    # width 1, 1, 3, 3, ..., 9, 9, 11 -> 61; cross: two 3 x 11 bars sharing 3 x 3 -> 57; ring: 81 minus the
    # 21 points with d^2 <= 6.25; diamond |x| + |y| <= 5 -> 61
    [("square", 81), ("disc", 81), ("triangle", 61), ("cross", 57), ("ring", 60), ("diamond", 61)],
)
def test_shapes_by_hand(shape: str, pixels: int) -> None:
    grid = torch.arange(21, dtype=torch.float64) - 10
    dy, dx = grid.view(1, 21, 1).expand(1, 21, 21), grid.view(1, 1, 21).expand(1, 21, 21)
    mask = shape_mask(SHAPES.index(shape), dy, dx, torch.full((1, 1, 1), 5.0))
    assert mask.sum().item() == pixels
    rows, cols = mask[0].nonzero().unbind(1)
    assert rows.min() >= 5 and rows.max() <= 15 and cols.min() >= 5 and cols.max() <= 15  # within radius of the centre


def test_items_depend_on_seed_split_and_index_only() -> None:
    small, large = ShapesDataset(6, "val", seed=3), ShapesDataset(40, "val", seed=3)
    for index in range(6):
        for a, b in zip(small[index], large[index]):
            assert torch.equal(a, b)
    alone = render_shapes([5], "val", seed=3)
    together = render_shapes(range(8), "val", seed=3)
    assert all(torch.equal(x[0], y[5]) for x, y in zip(alone, together))
    assert not torch.equal(ShapesDataset(6, "val", seed=4).images, small.images)
    assert not torch.equal(ShapesDataset(6, "test", seed=3).images, small.images)
    data, again = (ShapesDataModule(train_size=8, val_size=8, test_size=8, seed=3) for _ in range(2))
    assert torch.equal(data.baseline_bank(4, seed=1), again.baseline_bank(4, seed=1))
    assert not torch.equal(data.baseline_bank(4, seed=1), data.baseline_bank(4, seed=2))
    assert data.baseline_bank(4).shape == (4, 3, 32, 32)


def test_class_balance_and_metadata() -> None:
    data = ShapesDataModule(num_classes=5, image_size=24, train_size=101, val_size=50, test_size=7)
    assert data.num_classes == 5 and data.input_shape == (3, 24, 24)
    assert data.class_names == ["square", "disc", "triangle", "cross", "ring"]
    assert torch.bincount(data.dataset("train").labels).tolist() == [21, 20, 20, 20, 20]
    assert torch.bincount(data.dataset("val").labels).tolist() == [10] * 5
    images = data.dataset("train").images
    assert images.shape == (101, 3, 24, 24)
    with pytest.raises(ValueError, match="num_classes must be an int in"):
        ShapesDataModule(num_classes=7)
    with pytest.raises(ValueError, match="train_size must be a positive int"):
        ShapesDataModule(train_size=0)


def test_masks_boxes_and_distractors() -> None:
    rendered = render_shapes(range(300), "val", noise=0.0)
    images, masks, boxes = rendered.images, rendered.masks, rendered.boxes
    foreground = images.abs().sum(dim=1) > 0
    rows = torch.arange(32).view(1, 32, 1)
    cols = torch.arange(32).view(1, 1, 32)
    x_min, y_min, x_max, y_max = (boxes[:, k].view(-1, 1, 1) for k in range(4))
    in_box = (cols >= x_min) & (cols <= x_max) & (rows >= y_min) & (rows <= y_max)
    near_box = (cols >= x_min - GAP) & (cols <= x_max + GAP) & (rows >= y_min - GAP) & (rows <= y_max + GAP)
    # the mask lies inside its box, touches all four sides, and is the shape's pixels exactly
    assert not bool((masks & ~in_box).any())
    assert bool(((masks & (cols == x_min)).flatten(1).any(1) & (masks & (cols == x_max)).flatten(1).any(1)).all())
    assert bool(((masks & (rows == y_min)).flatten(1).any(1) & (masks & (rows == y_max)).flatten(1).any(1)).all())
    assert torch.equal(foreground & near_box, masks)  # no distractor pixel within GAP px of the box
    # one colour on the whole shape
    for i in range(20):
        colours = images[i][:, masks[i]]
        assert torch.equal(colours, colours[:, :1].expand_as(colours))
    # distractors are there (measured: every one of 300 images has some), outside the box
    assert (foreground & ~masks).flatten(1).any(1).float().mean().item() > 0.95
    # sizes: radius 15..21 % of 32 px; measured areas 45..~140 px, mean 82
    areas = masks.flatten(1).sum(1)
    assert areas.min().item() >= 30 and 60 < areas.float().mean().item() < 110


def test_annotated_batches_collate_and_feed_the_localisation_metrics() -> None:
    data = ShapesDataModule(train_size=8, val_size=24, test_size=8, batch_size=12, return_annotations=True)
    data.setup("validate")
    images, labels, masks, boxes = next(iter(data.val_dataloader()))
    assert images.shape == (12, 3, 32, 32) and labels.shape == (12,) and masks.dtype == torch.bool and boxes.dtype == torch.long
    assert torch.equal(masks[3], data.dataset("val").mask(3)) and torch.equal(boxes[3], data.dataset("val").box(3))
    # the mask itself as the saliency is a perfect explanation for each metric
    saliency = masks.float()
    for metric, truth in ((PointingGame(tolerance=0), masks), (EnergyPointingGame(), boxes), (WeakLocalization(iou=0.99), boxes)):
        metric.update(saliency, truth)
        assert metric.compute().item() == 1.0, type(metric).__name__
    plain = ShapesDataModule(train_size=8, val_size=8, test_size=8)
    assert len(plain.dataset("val")[0]) == 2


def test_small_cnn_learns_the_shapes_and_gradcam_points_at_them() -> None:
    trained = trained_shapes_classifier()
    assert trained.val_acc >= 0.9  # measured 0.9925 (400 validation images, 5 epochs on 1,500, ~5 s)
    dataset = trained.data.dataset("val")
    inputs, labels, masks = dataset.images[:200], dataset.labels[:200], dataset.masks[:200]
    scores = {}
    with single_thread():
        for name, explainer in (("gradcam", GradCAM()), ("random", RandomSaliency())):
            saliency = explainer(trained.model, inputs, labels)
            pointing, energy = PointingGame(tolerance=0), EnergyPointingGame()
            pointing.update(saliency, masks)
            energy.update(saliency, masks)
            scores[name] = (pointing.compute().item(), energy.compute().item())
    # measured: Grad-CAM 0.80 / 0.535, random 0.08 / 0.079 (the shapes cover 8 % of the image)
    assert scores["gradcam"][0] >= 0.65 and scores["gradcam"][1] >= 0.45
    assert scores["random"][0] <= 0.2 and scores["random"][1] <= 0.15
    loader = DataLoader(dataset, batch_size=100)
    with torch.no_grad():
        correct = sum((trained.model(x).argmax(1) == y).sum().item() for x, y in loader)
    assert correct / len(dataset) == pytest.approx(trained.val_acc)
