"""Synthetic shapes with ground-truth masks and boxes: a dataset whose evidence is known by construction.

Every image holds one class shape (square, disc, triangle, cross, ring or diamond: the class) at a random
position, size and colour, a few distractors (thin line segments and 2 x 2 dots, same colours) that never
come near it, and Gaussian noise. Because only the shape decides the class, a faithful explanation of a
model that solved the task should point at the shape: the localisation metrics
(`lit_xai.metrics.localisation`) take the mask or box each sample carries. Nothing is read from disk:
sample i of a split is a pure function of (seed, split, i) and the rendering parameters.

A decoy (`decoy=`, after Ross et al.'s Decoy-MNIST, "Right for the Right Reasons: Training Differentiable
Models by Constraining their Explanations", IJCAI 2017) adds a dark grey square patch at a random corner
whose intensity encodes the class in a share `decoy` of the training and validation images (random in the
rest, and in every test image): a shortcut a model can learn instead of the shape. The patch's mask is
among the annotations, and `lit_xai.datamodules.decoy` measures how much a model relies on it by
intervention (re-rendering an image with only the decoy, or only the shape, changed).
"""

from __future__ import annotations

import functools
import random
from typing import NamedTuple

import torch
from torch import Tensor
from torch.utils.data import Dataset

from lit_xai.datamodules.base import SplitDataModule

SHAPES = ("square", "disc", "triangle", "cross", "ring", "diamond")
"""Class names in label order; `num_classes = k` uses the first k."""

SPLITS = ("train", "val", "test")
DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))
GAP = 2
"""Distractor pixels stay more than this many pixels (per axis) away from the class shape's box."""
NORMALISATION_SAMPLES = 256
"""Mean and std for standardising come from the first this many training items (any split size)."""
RENDER_CHUNK = 512
DECOY_LEVELS = (-0.3, -1.5)
"""The decoy of class k has the raw level -0.3 - 1.2 k / (num_classes - 1) on every channel: darker than
the background (0), unlike any object pixel (colours 0.5 to 1), the levels 0.4 apart for 4 classes (4 noise
stds at the default noise). With levels among the objects' colours (1.0 down to 0.3, as Decoy-MNIST's
grey levels among the strokes') a small CNN (width 16, 6 epochs on 1,500 32 px images, 4 classes) trained
with a 100 % decoy learned the shapes instead: 1 % (4 px patch) to 42 % (8 px) of its predictions changed
with the decoy; with these levels, 99 % (4 px) and 100 % (8 px) do."""


def decoy_level(decoy_class: Tensor, num_classes: int) -> Tensor:
    """Raw grey level of the decoy patch that encodes `decoy_class` (float32)."""
    high, low = DECOY_LEVELS
    return high - (high - low) * decoy_class.float() / (num_classes - 1)


class RenderedShapes(NamedTuple):
    """A batch of rendered samples: images `(n, 3, H, W)` float32 (raw, before standardising), labels
    `(n,)` int64, masks `(n, H, W)` bool (the class shape's pixels), boxes `(n, 4)` int64 as
    `(x_min, y_min, x_max, y_max)`, inclusive pixel indices, the tight box around the mask;
    `decoy_masks` `(n, H, W)` bool the decoy patch's pixels (all False without a decoy) and
    `decoy_classes` `(n,)` int64 the class its grey level encodes (-1 without a decoy)."""

    images: Tensor
    labels: Tensor
    masks: Tensor
    boxes: Tensor
    decoy_masks: Tensor
    decoy_classes: Tensor


class DecoyLayout(NamedTuple):
    corner: tuple[int, int]  # (0 or 1, 0 or 1): top / bottom, left / right
    follows_class: bool
    decoy_class: int


class SampleLayout(NamedTuple):
    label: int
    radius: float
    centre: tuple[float, float]
    colour: tuple[float, float, float]
    distractor_pixels: list[tuple[int, int]]
    distractor_colours: list[tuple[float, float, float]]
    noise_seed: int


def sample_layout(index: int, split: str, image_size: int, num_classes: int, seed: int, distractors: int) -> SampleLayout:
    """The random choices of one sample, from a generator seeded by (seed, split, index) only."""
    rng = random.Random(f"lit-xai-shapes/{seed}/{split}/{index}")
    label = index % num_classes
    radius = rng.uniform(0.15, 0.21) * image_size
    cy, cx = (rng.uniform(radius + 1, image_size - 2 - radius) for _ in range(2))
    colour = tuple(rng.uniform(0.5, 1.0) for _ in range(3))
    # forbidden zone: the pixel box that can hold the shape, widened by GAP
    low_y, high_y = int(cy - radius) - GAP, int(cy + radius) + 1 + GAP
    low_x, high_x = int(cx - radius) - GAP, int(cx + radius) + 1 + GAP
    pixels: list[tuple[int, int]] = []
    colours: list[tuple[float, float, float]] = []
    for _ in range(distractors):
        shade = tuple(rng.uniform(0.5, 1.0) for _ in range(3))
        for _attempt in range(100):
            if rng.random() < 0.5:
                length = rng.randint(3, max(3, image_size // 4))
                dy, dx = rng.choice(DIRECTIONS)
                span = length - 1
                y0 = rng.randint(0, image_size - 1 - span * dy)
                x0 = rng.randint(span if dx < 0 else 0, image_size - 1 - (span if dx > 0 else 0))
                candidate = [(y0 + k * dy, x0 + k * dx) for k in range(length)]
            else:
                y0, x0 = rng.randint(0, image_size - 2), rng.randint(0, image_size - 2)
                candidate = [(y0, x0), (y0 + 1, x0), (y0, x0 + 1), (y0 + 1, x0 + 1)]
            if all(not (low_y <= y <= high_y and low_x <= x <= high_x) for y, x in candidate):
                pixels.extend(candidate)
                colours.extend([shade] * len(candidate))
                break
    return SampleLayout(label, radius, (cy, cx), colour, pixels, colours, rng.getrandbits(63))


def decoy_layout(index: int, split: str, layout: SampleLayout, image_size: int, num_classes: int, seed: int, decoy: float, size: int) -> DecoyLayout:
    """The decoy's random choices for one sample, from their own generator seeded by (seed, split, index)
    (so the image without the decoy is the same sample): a corner whose `size` x `size` patch stays off
    the pixel box that can hold the shape (for `size` <= image_size / 4 at most one corner is too close:
    the box is at most 0.42 image_size + 2 px wide), whether the patch encodes
    the label (probability `decoy` in train and val, never in test) and otherwise a uniformly drawn class."""
    rng = random.Random(f"lit-xai-shapes-decoy/{seed}/{split}/{index}")
    cy, cx = layout.centre
    low_y, high_y = int(cy - layout.radius), int(cy + layout.radius) + 1
    low_x, high_x = int(cx - layout.radius), int(cx + layout.radius) + 1

    def overlaps(corner: tuple[int, int]) -> bool:
        rows = (0, size - 1) if corner[0] == 0 else (image_size - size, image_size - 1)
        cols = (0, size - 1) if corner[1] == 0 else (image_size - size, image_size - 1)
        return rows[0] <= high_y and rows[1] >= low_y and cols[0] <= high_x and cols[1] >= low_x

    free = [corner for corner in ((0, 0), (0, 1), (1, 0), (1, 1)) if not overlaps(corner)]
    corner = rng.choice(free)
    follows = split != "test" and rng.random() < decoy
    random_class = rng.randrange(num_classes)
    return DecoyLayout(corner, follows, layout.label if follows else random_class)


def shape_mask(shape: int, dy: Tensor, dx: Tensor, radius: Tensor) -> Tensor:
    """The pixels of class shape `SHAPES[shape]` `(n, H, W)` for offsets `dy`, `dx` `(n, H, W)` from each
    centre (pixel centres) and half-sizes `radius` `(n, 1, 1)`; every shape lies within `radius` of its
    centre along each axis."""
    ay, ax = dy.abs(), dx.abs()
    name = SHAPES[shape]
    if name == "square":
        return (ay <= 0.8 * radius) & (ax <= 0.8 * radius)
    if name == "disc":
        return dy.square() + dx.square() <= radius.square()
    if name == "triangle":  # apex up, base 2 radius wide
        return (dy <= radius) & (ax <= (dy + radius) / 2)
    if name == "cross":  # arms 0.6 radius thick
        arm = 0.3 * radius
        return ((ax <= arm) & (ay <= radius)) | ((ay <= arm) & (ax <= radius))
    if name == "ring":  # inner radius half the outer one
        distance2 = dy.square() + dx.square()
        return (distance2 <= radius.square()) & (distance2 > (0.5 * radius).square())
    return ax + ay <= radius  # diamond


def tight_boxes(masks: Tensor) -> Tensor:
    """`(x_min, y_min, x_max, y_max)` inclusive of non-empty `(n, H, W)` masks, int64 `(n, 4)`."""
    rows, cols = masks.any(dim=2), masks.any(dim=1)
    row_index = torch.arange(masks.shape[1]).expand_as(rows)
    col_index = torch.arange(masks.shape[2]).expand_as(cols)
    y_min = torch.where(rows, row_index, masks.shape[1]).amin(dim=1)
    y_max = torch.where(rows, row_index, -1).amax(dim=1)
    x_min = torch.where(cols, col_index, masks.shape[2]).amin(dim=1)
    x_max = torch.where(cols, col_index, -1).amax(dim=1)
    return torch.stack([x_min, y_min, x_max, y_max], dim=1)


def render_shapes(
    indices: list[int] | range,
    split: str = "train",
    image_size: int = 32,
    num_classes: int = 4,
    seed: int = 0,
    noise: float = 0.1,
    distractors: int = 3,
    decoy: float | None = None,
    decoy_size: int | None = None,
    shapes: Tensor | list[int] | None = None,
    decoy_classes: Tensor | list[int] | None = None,
) -> RenderedShapes:
    """Render samples `indices` of `split` (raw pixel values: background 0, colours in [0.5, 1], plus
    N(0, noise^2) per pixel and channel). The shapes of a batch are drawn together; sample i comes out
    the same whichever batch it is rendered in.

    `decoy` (a share in [0, 1], None: no decoy) adds the decoy patch (`decoy_layout`), `decoy_size`
    pixels wide (default image_size // 8), grey at `decoy_level(class)` on every channel, drawn over any
    distractor pixel there, before the noise. Interventions: `shapes` draws these classes' shapes instead
    of the samples' own (the labels follow the drawn shape), `decoy_classes` sets the class the decoy
    encodes; everything else (position, size, colour, distractors, corner, noise) stays the sample's."""
    layouts = [sample_layout(i, split, image_size, num_classes, seed, distractors) for i in indices]
    n = len(layouts)
    labels = torch.tensor([layout.label for layout in layouts], dtype=torch.long)
    if shapes is not None:
        shapes = torch.as_tensor(shapes, dtype=torch.long)
        if shapes.shape != (n,) or bool(((shapes < 0) | (shapes >= num_classes)).any()):
            raise ValueError(f"shapes must be {n} class indices in [0, {num_classes}), got {shapes.tolist()}")
        labels = shapes.clone()
    radius = torch.tensor([layout.radius for layout in layouts], dtype=torch.float64).view(n, 1, 1)
    centres = torch.tensor([layout.centre for layout in layouts], dtype=torch.float64).view(n, 2, 1, 1)
    grid = torch.arange(image_size, dtype=torch.float64)
    dy = grid.view(1, -1, 1) - centres[:, 0]
    dx = grid.view(1, 1, -1) - centres[:, 1]
    dy, dx = dy.expand(n, image_size, image_size), dx.expand(n, image_size, image_size)
    masks = torch.zeros(n, image_size, image_size, dtype=torch.bool)
    for shape in labels.unique().tolist():
        chosen = labels == shape
        masks[chosen] = shape_mask(shape, dy[chosen], dx[chosen], radius[chosen])
    colours = torch.tensor([layout.colour for layout in layouts], dtype=torch.float32).view(n, 3, 1, 1)
    images = torch.where(masks.unsqueeze(1), colours, torch.zeros(()))
    owners = [i for i, layout in enumerate(layouts) for _ in layout.distractor_pixels]
    if owners:
        ys, xs = zip(*(pixel for layout in layouts for pixel in layout.distractor_pixels))
        shades = torch.tensor([shade for layout in layouts for shade in layout.distractor_colours], dtype=torch.float32)
        images[torch.tensor(owners), :, torch.tensor(ys), torch.tensor(xs)] = shades
    decoy_masks = torch.zeros(n, image_size, image_size, dtype=torch.bool)
    encoded = torch.full((n,), -1, dtype=torch.long)
    if decoy is not None and n:
        size = decoy_size or max(2, image_size // 8)
        decoys = [decoy_layout(i, split, layout, image_size, num_classes, seed, decoy, size) for i, layout in zip(indices, layouts)]
        encoded = torch.tensor([d.decoy_class for d in decoys], dtype=torch.long)
        if decoy_classes is not None:
            decoy_classes = torch.as_tensor(decoy_classes, dtype=torch.long)
            if decoy_classes.shape != (n,) or bool(((decoy_classes < 0) | (decoy_classes >= num_classes)).any()):
                raise ValueError(f"decoy_classes must be {n} class indices in [0, {num_classes}), got {decoy_classes.tolist()}")
            encoded = decoy_classes.clone()
        for i, d in enumerate(decoys):
            top = 0 if d.corner[0] == 0 else image_size - size
            left = 0 if d.corner[1] == 0 else image_size - size
            decoy_masks[i, top : top + size, left : left + size] = True
        levels = decoy_level(encoded, num_classes).view(n, 1, 1, 1)
        images = torch.where(decoy_masks.unsqueeze(1), levels, images)
    elif decoy_classes is not None:
        raise ValueError("decoy_classes needs a decoy (decoy= a share in [0, 1])")
    if noise > 0:
        draws = [
            torch.randn(3, image_size, image_size, generator=torch.Generator().manual_seed(layout.noise_seed)) for layout in layouts
        ]
        images = images + noise * torch.stack(draws)
    return RenderedShapes(images, labels, masks, tight_boxes(masks), decoy_masks, encoded)


@functools.lru_cache(maxsize=32)
def reference_statistics(image_size: int, num_classes: int, seed: int, noise: float, distractors: int) -> tuple[float, float]:
    """Mean and std of the first `NORMALISATION_SAMPLES` raw training images (shared by all splits; without
    the decoy, so images with and without one are standardised alike)."""
    images = render_shapes(range(NORMALISATION_SAMPLES), "train", image_size, num_classes, seed, noise, distractors).images
    return images.mean().item(), images.std().item()


class ShapesDataset(Dataset):
    """`size` samples of one split, rendered at construction (about 13 * image_size^2 bytes per sample)
    and standardised with the training split's reference mean and std.

    Items are `(image (3, S, S) float32, label int64)`, or `(image, label, mask (S, S) bool, box (4,)
    int64)` with `return_annotations=True` (both collate with PyTorch's default collate). `mask(i)` and
    `box(i)` give the annotations of item i either way; boxes are `(x_min, y_min, x_max, y_max)` with
    inclusive pixel indices (the convention of `lit_xai.metrics.localisation`).

    With a decoy (`decoy` a share in [0, 1], module docstring), `decoy_masks` `(n, S, S)` and
    `decoy_classes` `(n,)` hold each item's patch and the class it encodes; `annotated="decoy"` makes
    the items' mask and box those of the patch (e.g. for `lit_xai.metrics.DecoyMass` in the callback).
    """

    def __init__(
        self,
        size: int,
        split: str = "train",
        image_size: int = 32,
        num_classes: int = 4,
        seed: int = 0,
        noise: float = 0.1,
        distractors: int = 3,
        return_annotations: bool = False,
        decoy: float | None = None,
        decoy_size: int | None = None,
        annotated: str = "shape",
    ) -> None:
        check_shapes_arguments(image_size, num_classes, noise, distractors)
        check_decoy_arguments(decoy, decoy_size, annotated, image_size)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"size must be an int >= 0, got {size!r}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.split, self.return_annotations = split, return_annotations
        settings = (image_size, num_classes, seed, float(noise), distractors)
        self.settings, self.decoy, self.decoy_size, self.annotated = settings, decoy, decoy_size, annotated
        self.mean, self.std = reference_statistics(*settings)
        chunks = [
            render_shapes(range(start, min(start + RENDER_CHUNK, size)), split, *settings, decoy=decoy, decoy_size=decoy_size)
            for start in range(0, size, RENDER_CHUNK)
        ]
        if chunks:
            self.images = (torch.cat([c.images for c in chunks]) - self.mean) / self.std
            self.labels, self.masks, self.boxes, self.decoy_masks, self.decoy_classes = (
                torch.cat([getattr(c, k) for c in chunks]) for k in ("labels", "masks", "boxes", "decoy_masks", "decoy_classes")
            )
        else:
            self.images = torch.empty(0, 3, image_size, image_size)
            self.labels, self.masks = torch.empty(0, dtype=torch.long), torch.empty(0, image_size, image_size, dtype=torch.bool)
            self.boxes = torch.empty(0, 4, dtype=torch.long)
            self.decoy_masks, self.decoy_classes = self.masks.clone(), self.labels.clone()
        if annotated == "decoy":
            self.masks, self.boxes = self.decoy_masks, tight_boxes(self.decoy_masks)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        if self.return_annotations:
            return self.images[index], self.labels[index], self.masks[index], self.boxes[index]
        return self.images[index], self.labels[index]

    def mask(self, index: int) -> Tensor:
        """The annotated object's pixels of item `index` (the class shape's; the decoy's with `annotated='decoy'`), `(S, S)` bool."""
        return self.masks[index]

    def box(self, index: int) -> Tensor:
        """The tight inclusive box `(x_min, y_min, x_max, y_max)` around `mask(index)`, int64."""
        return self.boxes[index]


def check_decoy_arguments(decoy: float | None, decoy_size: int | None, annotated: str, image_size: int) -> None:
    if decoy is not None and (isinstance(decoy, bool) or not isinstance(decoy, (int, float)) or not 0 <= decoy <= 1):
        raise ValueError(f"decoy must be None (no decoy) or the share of training images whose decoy encodes the class, in [0, 1]; got {decoy!r}")
    if decoy_size is not None and (isinstance(decoy_size, bool) or not isinstance(decoy_size, int) or not 1 <= decoy_size <= image_size // 4):
        raise ValueError(f"decoy_size must be None (image_size // 8) or an int in [1, image_size // 4 = {image_size // 4}], got {decoy_size!r}")
    if annotated not in ("shape", "decoy"):
        raise ValueError(f"annotated must be 'shape' (the class shape's mask and box) or 'decoy' (the decoy patch's), got {annotated!r}")
    if annotated == "decoy" and decoy is None:
        raise ValueError("annotated='decoy' needs a decoy: set decoy= a share in [0, 1]")


def check_shapes_arguments(image_size: int, num_classes: int, noise: float, distractors: int) -> None:
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 16:
        raise ValueError(f"image_size must be an int >= 16 (shapes are 30 to 42 % of it wide), got {image_size!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or not 2 <= num_classes <= len(SHAPES):
        raise ValueError(f"num_classes must be an int in [2, {len(SHAPES)}] (one shape each: {', '.join(SHAPES)}), got {num_classes!r}")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
        raise ValueError(f"noise must be a number >= 0 (the std of the pixel noise), got {noise!r}")
    if isinstance(distractors, bool) or not isinstance(distractors, int) or distractors < 0:
        raise ValueError(f"distractors must be an int >= 0, got {distractors!r}")


class ShapesDataModule(SplitDataModule):
    """Synthetic shape classification with object masks and boxes (no files, no download).

    Class k is the shape `SHAPES[k]` (labels cycle through the classes, so every split is balanced to
    within one sample); it is drawn with a half-size of 15 to 21 % of `image_size`, fully inside the image,
    among `distractors` line segments (1 px wide, 3 to image_size / 4 px long) and 2 x 2 dots that keep
    more than `GAP` = 2 px away from the shape's box, plus N(0, noise^2) pixel noise. Images are RGB
    `(3, image_size, image_size)`, standardised with the mean and std of the first 256 training images.
    Item i of a split depends only on (seed, split, i) and the rendering arguments, not on the split sizes.

    Batches are `(images, labels)` by default; `return_annotations=True` adds `(masks, boxes)` (see
    `ShapesDataset`), which `ImageClassifier` does not expect: use it for evaluation code that scores
    localisation. `dataset(split)` gives the split's dataset with `mask(i)` and `box(i)` either way.

    `decoy` (Ross et al.'s Decoy-MNIST, module docstring): a dark grey `decoy_size` px patch (default
    image_size // 8) at a random corner away from the shape, whose level encodes the label in a share
    `decoy` of the training and validation images (0: never, 1: always) and a random class otherwise and
    at test. `annotated="decoy"` makes the annotations (masks, boxes) the patch's.
    `lit_xai.datamodules.decoy.intervention_rates` measures a model's reliance on the decoy.
    """

    def __init__(
        self,
        image_size: int = 32,
        num_classes: int = 4,
        train_size: int = 2000,
        val_size: int = 500,
        test_size: int = 500,
        seed: int = 0,
        batch_size: int = 64,
        num_workers: int = 0,
        noise: float = 0.1,
        distractors: int = 3,
        return_annotations: bool = False,
        decoy: float | None = None,
        decoy_size: int | None = None,
        annotated: str = "shape",
    ) -> None:
        super().__init__()
        check_shapes_arguments(image_size, num_classes, noise, distractors)
        check_decoy_arguments(decoy, decoy_size, annotated, image_size)
        for name, value in (("train_size", train_size), ("val_size", val_size), ("test_size", test_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.save_hyperparameters()
        self.image_size, self.num_classes = image_size, num_classes
        self.input_shape = (3, image_size, image_size)
        self.class_names = list(SHAPES[:num_classes])
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.seed, self.noise, self.distractors = seed, noise, distractors
        self.batch_size, self.num_workers = batch_size, num_workers
        self.return_annotations = return_annotations
        self.decoy, self.decoy_size, self.annotated = decoy, decoy_size, annotated
        self.splits: dict[str, ShapesDataset] = {}

    def dataset(self, split: str) -> ShapesDataset:
        """The dataset of `split` ("train", "val" or "test"), rendered on first use."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if split not in self.splits:
            self.splits[split] = ShapesDataset(
                self.sizes[split], split, self.image_size, self.num_classes, self.seed, self.noise, self.distractors,
                self.return_annotations, self.decoy, self.decoy_size, self.annotated,
            )
        return self.splits[split]

    def setup(self, stage: str | None = None) -> None:
        needed = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}.get(stage or "", SPLITS)
        for split in needed:
            self.dataset(split)

    def baseline_bank(self, size: int, seed: int = 0) -> Tensor:
        """`size` standardised training images `(size, 3, S, S)` drawn with `seed` (baselines for Expected Grad-CAM)."""
        images = self.dataset("train").images
        return images[torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:size]]
