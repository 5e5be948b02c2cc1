"""Caltech-UCSD Birds-200-2011 (CUB): 200 bird species with one bounding box per image."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors

from lit_xai.datamodules.vision import (
    DatasetNotFoundError,
    MalformedDatasetError,
    TransformedSubset,
    VisionDataModule,
    dataset_message,
)

CUB_FOLDER = "CUB_200_2011"
CUB_SOURCE = (
    "https://www.vision.caltech.edu/datasets/cub_200_2011/ (CUB_200_2011.tgz; extract it into data_dir); "
    "torchvision cannot download it"
)
CUB_FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "bounding_boxes.txt")
CUB_LAYOUT = """    CUB_200_2011/images.txt              <image_id> <class folder>/<file>.jpg
    CUB_200_2011/image_class_labels.txt  <image_id> <class_id, 1-based>
    CUB_200_2011/train_test_split.txt    <image_id> <1 = train, 0 = test>
    CUB_200_2011/bounding_boxes.txt      <image_id> <x> <y> <width> <height>  (pixels of the original image)
    CUB_200_2011/classes.txt             <class_id> <class folder>  (optional: names come from the folders otherwise)
    CUB_200_2011/images/<class folder>/<file>.jpg"""


@dataclass(frozen=True)
class CUBRecord:
    """One image of CUB: path relative to images/, 0-based label, box (x, y, width, height) in original pixels."""

    path: str
    label: int
    box: tuple[float, float, float, float]
    is_train: bool


class CUBImages(Dataset):
    """Raw CUB samples `(PIL RGB image, label, BoundingBoxes XYWH on the original canvas)`.

    Grey-scale (and any non-RGB) images are converted to RGB. Transforms are applied by
    `TransformedSubset`, which moves the box with the image.
    """

    def __init__(self, images_dir: Path, records: list[CUBRecord]) -> None:
        self.images_dir = images_dir
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    @property
    def targets(self) -> list[int]:
        """The labels of all samples, without reading images."""
        return [record.label for record in self.records]

    def __getitem__(self, index: int) -> tuple[Image.Image, int, tv_tensors.BoundingBoxes]:
        record = self.records[index]
        with Image.open(self.images_dir / record.path) as opened:
            image = opened.convert("RGB")
        boxes = tv_tensors.BoundingBoxes([record.box], format="XYWH", canvas_size=(image.height, image.width))
        return image, record.label, boxes


class CUBDataModule(VisionDataModule):
    """CUB-200-2011 from its original text files (see `CUB_LAYOUT`); `data_dir` holds `CUB_200_2011/` or is it.

    Train / test follow train_test_split.txt; the validation split is a seeded `val_fraction` of the
    training images. Samples are `(image, label)`, or `(image, label, box)` with `return_boxes=True`,
    where `box` is `(x_min, y_min, x_max, y_max)` in pixels of the transformed image: the bird's box
    resized, cropped and flipped together with the image and clamped to it (for localisation metrics).
    `box_dataset(split)` gives the boxes whatever `return_boxes` is. Labels are `class_id - 1`. Boxes are in
    edge coordinates (the whole image is `(0, 0, image_size, image_size)`); `pixel_centre_boxes(box)` converts
    them to the inclusive pixel convention of `lit_xai.metrics.localisation`.

    Args:
        data_dir: directory holding `CUB_200_2011/` (or that directory itself).
        batch_size: samples per batch.
        num_workers: DataLoader worker processes.
        image_size: side of the square inputs `(3, image_size, image_size)`.
        crop_fraction: evaluation resizes the shorter side to `round(image_size / crop_fraction)`, then centre-crops.
        augment: training augmentation (else the evaluation transform for training too).
        val_fraction: fraction of the training images held out (seeded) for validation.
        seed: seed of the validation split.
        return_boxes: samples `(image, label, box)` instead of `(image, label)`.
    """

    def __init__(
        self,
        data_dir: str | Path = "data/cub",
        batch_size: int = 32,
        num_workers: int = 0,
        image_size: int = 224,
        crop_fraction: float = 0.875,
        augment: bool = True,
        val_fraction: float = 0.1,
        seed: int = 0,
        return_boxes: bool = False,
    ) -> None:
        super().__init__(data_dir, batch_size, num_workers, image_size, crop_fraction, augment, val_fraction, seed)
        self.save_hyperparameters()
        self.return_boxes = return_boxes
        self._records: list[CUBRecord] | None = None
        self._names: list[str] | None = None

    @property
    def root(self) -> Path:
        """The `CUB_200_2011` directory (`data_dir/CUB_200_2011`, or `data_dir` when it holds images.txt)."""
        if (self.data_dir / CUB_FOLDER).is_dir() or not (self.data_dir / "images.txt").is_file():
            return self.data_dir / CUB_FOLDER
        return self.data_dir

    def _message(self, problem: str) -> str:
        return dataset_message(problem, self.root, CUB_LAYOUT, CUB_SOURCE)

    def _table(self, name: str, columns: int) -> dict[int, list[str]]:
        """`image_id -> fields` of a whitespace-separated metadata file with `columns` fields per line."""
        path = self.root / name
        table: dict[int, list[str]] = {}
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            fields = line.split(maxsplit=columns - 1) if name in ("images.txt", "classes.txt") else line.split()
            try:
                if len(fields) != columns:
                    raise ValueError(f"{len(fields)} fields instead of {columns}")
                key = int(fields[0])
            except ValueError as error:
                raise MalformedDatasetError(self._message(f"{path} line {number}: {error}: {line!r}")) from error
            table[key] = fields[1:]
        return table

    def _load_metadata(self) -> None:
        missing = [name for name in CUB_FILES if not (self.root / name).is_file()]
        if not (self.root / "images").is_dir():
            missing.append("images/")
        if missing:
            raise DatasetNotFoundError(self._message(f"CUB-200-2011 not found: missing {', '.join(missing)}"))
        paths = self._table("images.txt", 2)
        labels = self._table("image_class_labels.txt", 2)
        splits = self._table("train_test_split.txt", 2)
        boxes = self._table("bounding_boxes.txt", 5)
        for name, table in (("image_class_labels.txt", labels), ("train_test_split.txt", splits), ("bounding_boxes.txt", boxes)):
            if set(table) != set(paths):
                odd = sorted(set(table) ^ set(paths))[:5]
                raise MalformedDatasetError(self._message(f"{self.root / name} and images.txt list different image ids (e.g. {odd})"))
        records = []
        try:
            for image_id in sorted(paths):
                x, y, width, height = (float(value) for value in boxes[image_id])
                records.append(CUBRecord(paths[image_id][0], int(labels[image_id][0]) - 1, (x, y, width, height), splits[image_id][0] == "1"))
        except ValueError as error:
            raise MalformedDatasetError(self._message(f"non-numeric label or box in {self.root}: {error}")) from error
        class_ids = sorted({record.label for record in records})
        if not records or class_ids[0] < 0:
            raise MalformedDatasetError(self._message("no images listed, or a class id below 1 in image_class_labels.txt"))
        if (self.root / "classes.txt").is_file():
            classes = self._table("classes.txt", 2)
            folders = [classes[key][0] for key in sorted(classes)]
            if sorted(classes) != list(range(1, len(classes) + 1)) or (class_ids and class_ids[-1] >= len(classes)):
                raise MalformedDatasetError(self._message(f"{self.root / 'classes.txt'} must number classes 1..K and cover every label"))
        else:
            folder_of = {record.label: record.path.split("/")[0] for record in records}
            if class_ids != list(range(len(class_ids))):
                raise MalformedDatasetError(self._message("class ids in image_class_labels.txt are not 1..K (and there is no classes.txt)"))
            folders = [folder_of[label] for label in class_ids]
        self._records = records
        self._names = [folder.split(".", 1)[1] if folder.split(".", 1)[0].isdigit() and "." in folder else folder for folder in folders]

    @property
    def records(self) -> list[CUBRecord]:
        """Every image's metadata, in image id order (read from the text files on first use)."""
        if self._records is None:
            self._load_metadata()
        assert self._records is not None
        return self._records

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def class_names(self) -> list[str]:
        """Species names without the numeric prefix ("Black_footed_Albatross")."""
        if self._names is None:
            self._load_metadata()
        assert self._names is not None
        return self._names

    def _read_split(self, split: str) -> Dataset:
        chosen = [record for record in self.records if record.is_train == (split == "train")]
        if not chosen:
            raise MalformedDatasetError(self._message(f"train_test_split.txt puts no image in the {split} split"))
        return CUBImages(self.root / "images", chosen)

    def box_dataset(self, split: str = "test") -> TransformedSubset:
        """`split` with samples `(image, label, box)` and the evaluation transform (boxes scaled with the image)."""
        base = self.dataset(split)  # type: ignore[arg-type]
        return TransformedSubset(base.dataset, base.indices, self.eval_transform, return_boxes=True)
