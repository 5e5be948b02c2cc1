"""What the image datamodules share: normalisation statistics, train / eval transforms, dataset errors,
a seeded validation split, a transformed view of a dataset, and the `VisionDataModule` base class."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from lit_xai.datamodules.base import SplitDataModule

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Augmentation = Literal["random_resized_crop", "pad_crop", "none"]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's directory or one of its files is missing (the message says where, what, and from where)."""


class MalformedDatasetError(ValueError):
    """A dataset's files exist but do not have the expected content (the message says which file and why)."""


def dataset_message(problem: str, searched: Path | str, layout: str, source: str) -> str:
    """The text of a dataset error: what is wrong, the directory searched, the layout expected, where data comes from."""
    return f"{problem}\n  searched: {searched}\n  expected layout:\n{layout}\n  where to get it: {source}"


def eval_transforms(
    image_size: int, mean: Sequence[float], std: Sequence[float], crop_fraction: float = 0.875
) -> v2.Compose:
    """Deterministic evaluation pipeline: resize the shorter side to `round(image_size / crop_fraction)`,
    centre-crop `image_size` x `image_size`, scale to [0, 1], normalise with `mean` / `std`.

    `crop_fraction=0.875` is the usual ImageNet protocol (resize 256, crop 224); 1.0 resizes the shorter
    side to `image_size` before the crop. Bounding boxes passed with the image (torchvision `BoundingBoxes`)
    are resized, shifted by the crop offset and clamped to the crop with it.
    """
    if not 0 < crop_fraction <= 1:
        raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(round(image_size / crop_fraction), antialias=True),
            v2.CenterCrop(image_size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
        ]
    )


def train_transforms(
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    augmentation: Augmentation = "random_resized_crop",
    crop_fraction: float = 0.875,
) -> v2.Compose:
    """Training pipeline with augmentation.

    "random_resized_crop": a random crop of 8-100 % of the area and 3/4-4/3 aspect ratio resized to
    `image_size`, then a horizontal flip with p = 0.5 (the ImageNet recipe).
    "pad_crop": resize the shorter side to `image_size`, centre-crop, pad by `image_size // 8` with zeros,
    take a random `image_size` crop and flip with p = 0.5 (the CIFAR recipe).
    "none": the evaluation pipeline (`eval_transforms`).
    """
    if augmentation == "none":
        return eval_transforms(image_size, mean, std, crop_fraction)
    if augmentation == "random_resized_crop":
        geometry: list[Any] = [v2.RandomResizedCrop(image_size, antialias=True)]
    elif augmentation == "pad_crop":
        geometry = [
            v2.Resize(image_size, antialias=True),
            v2.CenterCrop(image_size),
            v2.RandomCrop(image_size, padding=max(image_size // 8, 1)),
        ]
    else:
        raise ValueError(f"augmentation must be 'random_resized_crop', 'pad_crop' or 'none', got {augmentation!r}")
    return v2.Compose(
        [
            v2.ToImage(),
            *geometry,
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
        ]
    )


def seeded_split(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A fixed random split of range(n) into (train, val) indices, each sorted.

    The validation part has `round(n * val_fraction)` samples, at least 1 and at most n - 1, drawn by a
    `torch.randperm` seeded with `seed` (the same split on every machine and every run).
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if n < 2:
        raise ValueError(f"a validation split needs at least 2 training samples, got {n}")
    n_val = min(max(round(n * val_fraction), 1), n - 1)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


class TransformedSubset(Dataset):
    """The samples `indices` of `dataset` (all when None) passed through `transform`.

    `dataset` yields `(image, label)` or `(image, label, boxes)` with `boxes` a torchvision
    `BoundingBoxes`; boxes go through the (v2) transform together with the image, so resizes, crops and
    flips move them. With boxes, a sample is `(image, label, box)` where `box` is the first box as a float
    tensor `(x_min, y_min, x_max, y_max)` in pixels of the transformed image (clamped to it) when `return_boxes`, else
    `(image, label)`.
    """

    def __init__(
        self,
        dataset: Dataset,
        indices: Sequence[int] | None,
        transform: Callable[..., Any],
        return_boxes: bool = False,
    ) -> None:
        self.dataset = dataset
        self.indices = list(range(len(dataset))) if indices is None else list(indices)  # type: ignore[arg-type]
        self.transform = transform
        self.return_boxes = return_boxes

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def targets(self) -> list[int] | None:
        """The labels of the view's samples without reading images (None when the dataset has no `targets`);
        the explainer callback stratifies its probe by them."""
        labels = getattr(self.dataset, "targets", None)
        return None if labels is None else [int(labels[i]) for i in self.indices]

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        sample = self.dataset[self.indices[index]]
        if len(sample) == 3:
            image, label, boxes = sample
            image, boxes = self.transform(image, boxes)
            if not self.return_boxes:
                return image, label
            xyxy = v2.functional.convert_bounding_box_format(boxes, new_format=tv_tensors.BoundingBoxFormat.XYXY)
            height, width = boxes.canvas_size
            box = xyxy.as_subclass(Tensor).reshape(-1, 4)[0].to(torch.float32)
            limit = torch.tensor([width, height, width, height], dtype=torch.float32)
            return image, label, box.clamp(min=0.0).minimum(limit)  # rounding can leave 32.000004 on a 32 canvas
        if self.return_boxes:
            raise ValueError(f"return_boxes=True but {type(self.dataset).__name__} has no bounding boxes")
        image, label = sample
        return self.transform(image), label


def pixel_centre_boxes(boxes: Tensor) -> Tensor:
    """Boxes in edge coordinates (torchvision's: `(0, 0, W, H)` is a whole W x H image, what the datamodules
    yield) -> the inclusive pixel-centre coordinates of `lit_xai.metrics.localisation` (pixel (y, x) centred at
    the integer point, `(0, 0, W - 1, H - 1)` is the whole image): both corners move by -0.5, so exactly the
    pixels whose area centre lies in the box are covered. Works on `(4,)` or `(B, 4)`."""
    return boxes - 0.5


Split = Literal["train", "val", "test"]


class VisionDataModule(SplitDataModule, abc.ABC):
    """Shared behaviour of the RGB image datamodules (ImageNet, CIFAR, CUB, Food-101).

    Subclasses say how to read a raw split (`_read_split`: samples `(PIL image, label)` or
    `(PIL image, label, boxes)`), and give `num_classes` and `class_names` from metadata only. This class
    adds the transforms, the splits, the loaders and `baseline_bank`:

    - train: the raw "train" split (minus the validation part) with `train_transforms`;
    - val: a seeded `val_fraction` of the raw training split with `eval_transforms`, or, when the dataset
      has its own validation split (`has_val_split`, ImageNet), that split;
    - test: the raw "test" split with `eval_transforms` (ImageNet: the validation split, whose labels are public).

    Samples are `(image (3, image_size, image_size) float32 normalised, label int64)`.
    """

    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    augmentation: Augmentation = "random_resized_crop"
    has_val_split: bool = False
    return_boxes: bool = False

    def __init__(
        self,
        data_dir: str | Path,
        batch_size: int = 64,
        num_workers: int = 0,
        image_size: int = 224,
        crop_fraction: float = 0.875,
        augment: bool = True,
        val_fraction: float = 0.1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if image_size < 1 or batch_size < 1 or num_workers < 0:
            raise ValueError(
                f"image_size and batch_size must be >= 1 and num_workers >= 0, got {image_size}, {batch_size}, {num_workers}"
            )
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        if not 0 < crop_fraction <= 1:
            raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
        self.data_dir = Path(data_dir).expanduser()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.image_size = image_size
        self.crop_fraction = crop_fraction
        self.augment = augment
        self.val_fraction = val_fraction
        self.seed = seed
        self.splits: dict[str, TransformedSubset] = {}
        self._raw: dict[str, Dataset] = {}
        self._train_val: tuple[list[int], list[int]] | None = None

    # ---- what subclasses provide ----------------------------------------------------------------
    @property
    @abc.abstractmethod
    def num_classes(self) -> int:
        """Number of classes (from metadata; no image is read)."""

    @property
    @abc.abstractmethod
    def class_names(self) -> list[str]:
        """Class names in label order (from metadata; no image is read)."""

    @abc.abstractmethod
    def _read_split(self, split: str) -> Dataset:
        """The raw dataset of `split` ("train", "test", or "val" when `has_val_split`), without transforms."""

    # ---- shared ----------------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, int, int]:
        """`(3, image_size, image_size)`: what the model receives."""
        return (3, self.image_size, self.image_size)

    @property
    def eval_transform(self) -> v2.Compose:
        """The deterministic evaluation transform (resize, centre crop, normalise)."""
        return eval_transforms(self.image_size, self.mean, self.std, self.crop_fraction)

    @property
    def train_transform(self) -> v2.Compose:
        """The training transform (augmented unless `augment=False`)."""
        return train_transforms(
            self.image_size, self.mean, self.std, self.augmentation if self.augment else "none", self.crop_fraction
        )

    def _raw_split(self, split: str) -> Dataset:
        if split not in self._raw:
            self._raw[split] = self._read_split(split)
        return self._raw[split]

    def _train_val_indices(self) -> tuple[list[int], list[int]]:
        """(train, val) indices into the raw training split (val empty when the dataset has its own val split)."""
        if self._train_val is None:
            n = len(self._raw_split("train"))  # type: ignore[arg-type]
            self._train_val = (list(range(n)), []) if self.has_val_split else seeded_split(n, self.val_fraction, self.seed)
        return self._train_val

    def _build(self, split: Split) -> TransformedSubset:
        if split == "train":
            return TransformedSubset(self._raw_split("train"), self._train_val_indices()[0], self.train_transform, self.return_boxes)
        if split == "val":
            if self.has_val_split:
                return TransformedSubset(self._raw_split("val"), None, self.eval_transform, self.return_boxes)
            return TransformedSubset(self._raw_split("train"), self._train_val_indices()[1], self.eval_transform, self.return_boxes)
        raw = self._raw_split("val" if self.has_val_split else "test")
        return TransformedSubset(raw, None, self.eval_transform, self.return_boxes)

    def dataset(self, split: Split) -> TransformedSubset:
        """The transformed dataset of `split` ("train", "val" or "test"), built on first use."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        if split not in self.splits:
            self.splits[split] = self._build(split)
        return self.splits[split]

    def setup(self, stage: str | None = None) -> None:
        """Build the splits the stage needs: fit -> train + val, validate -> val, test / predict -> test."""
        needed: dict[str | None, tuple[Split, ...]] = {
            "fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",), None: ("train", "val", "test"),
        }
        for split in needed.get(stage, ("train", "val", "test")):
            self.dataset(split)

    def baseline_bank(self, n: int, seed: int = 0) -> Tensor:
        """`(min(n, N), 3, image_size, image_size)` training inputs with the evaluation transform, drawn with `seed`.

        They are the baselines of Expected Grad-CAM (drawn from the data distribution, not augmented).
        A dataset whose training split is absent (an ImageNet copy with only val/) falls back to its
        validation split, with a warning.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        try:
            source = TransformedSubset(self._raw_split("train"), self._train_val_indices()[0], self.eval_transform)
        except DatasetNotFoundError:
            if not self.has_val_split:
                raise
            rank_zero_warn(f"{type(self).__name__}: no training split in {self.data_dir}; baselines come from the validation split")
            source = TransformedSubset(self._raw_split("val"), None, self.eval_transform)
        picks = torch.randperm(len(source), generator=torch.Generator().manual_seed(seed))[:n].tolist()
        return torch.stack([source[i][0] for i in picks])
