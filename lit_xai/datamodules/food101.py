"""Food-101 in torchvision's layout (food-101/images/, food-101/meta/{train,test}.json)."""

from __future__ import annotations

import json
from pathlib import Path

from torch.utils.data import Dataset
from torchvision.datasets import Food101

from lit_xai.datamodules.vision import DatasetNotFoundError, MalformedDatasetError, VisionDataModule, dataset_message
from lit_xai.downloads import explain_download_failure

FOOD101_LAYOUT = """    food-101/meta/train.json   {"<class>": ["<class>/<image id>", ...], ...}  (75,750 images)
    food-101/meta/test.json    the same for the 25,250 test images
    food-101/images/<class>/<image id>.jpg"""
FOOD101_SOURCE = (
    "https://data.vision.ee.ethz.ch/cvl/datasets_extra/food-101/ (food-101.tar.gz, 5 GB); "
    "pass download=True (--data.init_args.download=true) to let torchvision fetch it"
)


class Food101DataModule(VisionDataModule):
    """Food-101: 101 dishes, 750 training and 250 test images each, read with torchvision's `Food101`.

    `data_dir` is torchvision's root (holding `food-101/`) or the `food-101` directory itself. Class
    names are the sorted keys of meta/train.json (torchvision's label order). The validation split is a
    seeded `val_fraction` of the training images. With `download=True` a missing copy is downloaded the
    first time metadata is needed (the CLI reads `num_classes` when it builds the model).

    Args:
        data_dir: torchvision's root holding `food-101/` (or the `food-101` directory itself).
        download: let torchvision download and extract the archive (5 GB) when it is missing.
        batch_size: samples per batch.
        num_workers: DataLoader worker processes.
        image_size: side of the square inputs `(3, image_size, image_size)`.
        crop_fraction: evaluation resizes the shorter side to `round(image_size / crop_fraction)`, then centre-crops.
        augment: training augmentation (else the evaluation transform for training too).
        val_fraction: fraction of the training images held out (seeded) for validation.
        seed: seed of the validation split.
    """

    def __init__(
        self,
        data_dir: str | Path = "data/food101",
        download: bool = False,
        batch_size: int = 32,
        num_workers: int = 0,
        image_size: int = 224,
        crop_fraction: float = 0.875,
        augment: bool = True,
        val_fraction: float = 0.1,
        seed: int = 0,
    ) -> None:
        super().__init__(data_dir, batch_size, num_workers, image_size, crop_fraction, augment, val_fraction, seed)
        self.save_hyperparameters()
        self.download = download
        self._names: list[str] | None = None

    @property
    def base_folder(self) -> Path:
        """The `food-101` directory."""
        if self.data_dir.name == "food-101" and not (self.data_dir / "food-101").is_dir():
            return self.data_dir
        return self.data_dir / "food-101"

    def _message(self, problem: str) -> str:
        return dataset_message(problem, self.base_folder, FOOD101_LAYOUT, FOOD101_SOURCE)

    def _check(self, split: str) -> Path:
        """The split's json file, after checking (or downloading) the layout."""
        meta = self.base_folder / "meta" / f"{split}.json"
        if self.download and not (meta.is_file() and (self.base_folder / "images").is_dir()):
            root = self.base_folder.parent
            with explain_download_failure(
                "Food-101 (food-101.tar.gz, 5 GB)", Food101._URL,
                f"download it on a machine with internet and extract it into {root}, so that {self.base_folder} "
                "holds images/ and meta/",
                "download=false (--data.init_args.download=false) reads the copy already in data_dir",
            ):
                Food101(str(root), split="train", download=True)
        missing = [str(p.relative_to(self.base_folder)) for p in (meta, self.base_folder / "images") if not p.exists()]
        if missing:
            raise DatasetNotFoundError(self._message(f"Food-101 not found: missing {', '.join(missing)}"))
        return meta

    def prepare_data(self) -> None:
        """Download the archive when `download=True` and it is not there yet."""
        if self.download:
            self._check("train")

    @property
    def class_names(self) -> list[str]:
        if self._names is None:
            meta = self._check("train")
            try:
                classes = json.loads(meta.read_text())
                if not isinstance(classes, dict) or not classes:
                    raise ValueError("expected a non-empty object class -> list of image ids")
            except ValueError as error:
                raise MalformedDatasetError(self._message(f"cannot read {meta}: {error}")) from error
            self._names = sorted(classes)
        return self._names

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def _read_split(self, split: str) -> Dataset:
        meta = self._check(split)
        dataset = Food101(str(self.base_folder.parent), split=split, download=False)
        if dataset.classes != self.class_names:
            raise MalformedDatasetError(self._message(f"{meta} lists other classes than meta/train.json"))
        absent = [path for path in dataset._image_files[:1] + dataset._image_files[-1:] if not path.is_file()]
        if absent:
            raise DatasetNotFoundError(self._message(f"image {absent[0]} listed in {meta} is missing"))
        dataset.targets = list(dataset._labels)  # torchvision's Food101 keeps its labels private
        return dataset
