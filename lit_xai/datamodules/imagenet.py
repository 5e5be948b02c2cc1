"""ImageNet (ILSVRC-2012) in torchvision's layout, or any ImageFolder with train/ and val/."""

from __future__ import annotations

import os
from pathlib import Path

from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder, ImageNet
from torchvision.datasets.imagenet import ARCHIVE_META, META_FILE, load_meta_file, parse_devkit_archive

from lit_xai.datamodules.vision import DatasetNotFoundError, MalformedDatasetError, VisionDataModule, dataset_message

IMAGENET_SOURCE = (
    "https://image-net.org/download.php (ILSVRC2012: ILSVRC2012_devkit_t12.tar.gz, ILSVRC2012_img_train.tar, "
    "ILSVRC2012_img_val.tar; log-in required, so no download=True: place the files in data_dir yourself)"
)


def imagenet_layout(root: Path) -> str:
    """The two layouts `ImageNetDataModule` reads, spelt out under `root`."""
    return (
        f"    torchvision's ImageNet layout:\n"
        f"      {root}/{META_FILE}  (torch.save'd (wnid -> class names, val wnids); or {ARCHIVE_META['devkit'][0]}, parsed into it)\n"
        f"      {root}/train/<wnid>/*.JPEG  (or {ARCHIVE_META['train'][0]}, extracted by torchvision)\n"
        f"      {root}/val/<wnid>/*.JPEG    (or {ARCHIVE_META['val'][0]}, extracted by torchvision)\n"
        f"    or a plain ImageFolder:\n"
        f"      {root}/train/<class>/<image>  and  {root}/val/<class>/<image>"
    )


class ImageNetDataModule(VisionDataModule):
    """ILSVRC-2012 classification, or any ImageFolder dataset with `train/` and `val/`.

    With `meta.bin` (or the devkit archive) in `data_dir`, splits are read by torchvision's `ImageNet`
    (which also extracts the official train / val archives found there, in `prepare_data`); class names
    are the first WordNet name of each class ("tench"). Without them, `train/` and `val/` are plain
    ImageFolders and the class names are the folder names. Labels follow the sorted folder (wnid) names in
    both cases. The validation split is the official one; it is also the test split (ImageNet's test
    labels are not public). Only `val/` is needed for `validate` / `test` (evaluation of pretrained models).

    Args:
        data_dir: directory with meta.bin (or the devkit) and train/ val/, or with ImageFolder train/ and val/.
        batch_size: samples per batch.
        num_workers: DataLoader worker processes.
        image_size: side of the square inputs `(3, image_size, image_size)`.
        crop_fraction: evaluation resizes the shorter side to `round(image_size / crop_fraction)`, then centre-crops.
        augment: training augmentation (else the evaluation transform for training too).
    """

    has_val_split = True

    def __init__(
        self,
        data_dir: str | Path = "data/imagenet",
        batch_size: int = 64,
        num_workers: int = 0,
        image_size: int = 224,
        crop_fraction: float = 0.875,
        augment: bool = True,
    ) -> None:
        super().__init__(data_dir, batch_size, num_workers, image_size, crop_fraction, augment)
        self.save_hyperparameters()
        self._classes: tuple[list[str], list[str], bool] | None = None

    def _message(self, problem: str) -> str:
        return dataset_message(problem, self.data_dir, imagenet_layout(self.data_dir), IMAGENET_SOURCE)

    @property
    def torchvision_layout(self) -> bool:
        """True when `data_dir` holds meta.bin or the devkit archive (read with torchvision's `ImageNet`)."""
        return (self.data_dir / META_FILE).is_file() or (self.data_dir / ARCHIVE_META["devkit"][0]).is_file()

    def _metadata(self) -> tuple[list[str], list[str], bool]:
        """(wnids or folder names in label order, class names, torchvision layout?) without reading images."""
        if self._classes is not None:
            return self._classes
        if not self.data_dir.is_dir():
            raise DatasetNotFoundError(self._message(f"ImageNet not found: {self.data_dir} is not a directory"))
        if self.torchvision_layout:
            if not (self.data_dir / META_FILE).is_file():
                try:
                    parse_devkit_archive(str(self.data_dir))  # writes meta.bin from the devkit's meta.mat
                except (RuntimeError, OSError, KeyError, ValueError) as error:  # md5 mismatch, bad archive
                    raise MalformedDatasetError(
                        self._message(f"cannot parse {self.data_dir / ARCHIVE_META['devkit'][0]} into {META_FILE}: {error}")
                    ) from error
            try:
                wnid_to_classes, _ = load_meta_file(str(self.data_dir))
                wnids = sorted(wnid_to_classes)
                names = [
                    str(wnid_to_classes[w][0]) if isinstance(wnid_to_classes[w], (tuple, list)) else str(wnid_to_classes[w])
                    for w in wnids
                ]
            except Exception as error:
                raise MalformedDatasetError(
                    self._message(f"cannot read {self.data_dir / META_FILE} as (wnid -> class names dict, val wnids list): {error!r}")
                ) from error
            if not wnids:
                raise MalformedDatasetError(self._message(f"{self.data_dir / META_FILE} lists no classes"))
            self._classes = (wnids, names, True)
            return self._classes
        folders = [self.data_dir / split for split in ("train", "val") if (self.data_dir / split).is_dir()]
        if not folders:
            raise DatasetNotFoundError(self._message(f"ImageNet not found: no {META_FILE}, devkit archive, train/ or val/ in {self.data_dir}"))
        classes = sorted(entry.name for entry in os.scandir(folders[0]) if entry.is_dir())
        if not classes:
            raise MalformedDatasetError(self._message(f"{folders[0]} has no class sub-directories"))
        self._classes = (classes, classes, False)
        return self._classes

    @property
    def wnids(self) -> list[str]:
        """Folder names (WordNet ids for ImageNet) in label order."""
        return self._metadata()[0]

    @property
    def class_names(self) -> list[str]:
        return self._metadata()[1]

    @property
    def num_classes(self) -> int:
        return len(self._metadata()[0])

    def prepare_data(self) -> None:
        """In torchvision's layout, let torchvision extract an official archive whose folder is missing."""
        if not self.torchvision_layout:
            return
        for split in ("train", "val"):
            if not (self.data_dir / split).is_dir() and (self.data_dir / ARCHIVE_META[split][0]).is_file():
                ImageNet(str(self.data_dir), split=split)

    def _read_split(self, split: str) -> Dataset:
        wnids, _, torchvision_layout = self._metadata()
        folder = self.data_dir / split
        if not folder.is_dir():
            archive = ARCHIVE_META[split][0]
            if torchvision_layout and (self.data_dir / archive).is_file():
                ImageNet(str(self.data_dir), split=split)  # extracts the archive (normally done by prepare_data)
            else:
                raise DatasetNotFoundError(self._message(f"ImageNet {split} split not found: {folder} is missing"))
        found = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())
        if found != wnids:
            source = self.data_dir / META_FILE if torchvision_layout else self.data_dir / ("train" if (self.data_dir / "train").is_dir() else "val")
            extra, absent = sorted(set(found) - set(wnids))[:3], sorted(set(wnids) - set(found))[:3]
            raise MalformedDatasetError(
                self._message(
                    f"{folder} has {len(found)} class folders but {source} lists {len(wnids)} classes "
                    f"(extra e.g. {extra}, missing e.g. {absent})"
                )
            )
        try:
            return ImageNet(str(self.data_dir), split=split) if torchvision_layout else ImageFolder(str(folder))
        except (FileNotFoundError, RuntimeError) as error:  # e.g. a class folder without images
            raise MalformedDatasetError(self._message(f"cannot read {folder}: {error}")) from error
