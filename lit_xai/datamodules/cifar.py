"""CIFAR-10 and CIFAR-100 from torchvision's python pickle batches."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Literal

from torch.utils.data import Dataset
from torchvision.datasets import CIFAR10, CIFAR100

from lit_xai.datamodules.vision import DatasetNotFoundError, MalformedDatasetError, VisionDataModule, dataset_message
from lit_xai.downloads import explain_download_failure

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR100_CLASSES = [
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
]  # fmt: skip

# per-channel mean and standard deviation of the training pixels in [0, 1]
CIFAR_STATS = {
    10: ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    100: ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


class CIFARDataModule(VisionDataModule):
    """CIFAR-10 (`variant=10`) or CIFAR-100 (`variant=100`, fine labels): 32x32 RGB images.

    Read with torchvision's `CIFAR10` / `CIFAR100` from `data_dir/cifar-10-batches-py/` (data_batch_1..5,
    test_batch, batches.meta) or `data_dir/cifar-100-python/` (train, test, meta); torchvision checks the
    md5 sums. `download=True` fetches the archive from https://www.cs.toronto.edu/~kriz/cifar.html in
    `prepare_data`. The validation split is a seeded `val_fraction` of the 50,000 training images; the
    test split is the official 10,000. Training augmentation: zero-padded random crop + horizontal flip;
    normalisation with the training set's per-channel statistics. `image_size` other than 32 resizes.

    Args:
        data_dir: torchvision's root holding `cifar-10-batches-py/` or `cifar-100-python/` (or that folder itself).
        variant: 10 or 100.
        download: download from the official site in `prepare_data` when missing or corrupted.
        batch_size: samples per batch.
        num_workers: DataLoader worker processes.
        image_size: side of the inputs (32 is native; other sizes resize).
        augment: training augmentation (else the evaluation transform for training too).
        val_fraction: fraction of the training images held out (seeded) for validation.
        seed: seed of the validation split.
    """

    augmentation = "pad_crop"

    def __init__(
        self,
        data_dir: str | Path = "data/cifar",
        variant: Literal[10, 100] = 10,
        download: bool = False,
        batch_size: int = 128,
        num_workers: int = 0,
        image_size: int = 32,
        augment: bool = True,
        val_fraction: float = 0.1,
        seed: int = 0,
    ) -> None:
        if variant not in (10, 100):
            raise ValueError(f"variant must be 10 or 100, got {variant!r}")
        super().__init__(data_dir, batch_size, num_workers, image_size, 1.0, augment, val_fraction, seed)
        self.save_hyperparameters()
        self.variant = variant
        self.download = download
        self.mean, self.std = CIFAR_STATS[variant]
        self._class_names: list[str] | None = None

    @property
    def dataset_class(self) -> type[CIFAR10]:
        """torchvision's dataset class of the variant."""
        return CIFAR10 if self.variant == 10 else CIFAR100

    @property
    def root(self) -> Path:
        """torchvision's `root` (the directory holding the batches folder); accepts the batches folder itself."""
        folder = self.dataset_class.base_folder
        return self.data_dir.parent if self.data_dir.name == folder else self.data_dir

    @property
    def num_classes(self) -> int:
        return self.variant

    @property
    def class_names(self) -> list[str]:
        """The meta file's label names when the data is on disk, else the published names (same order)."""
        if self._class_names is None:
            meta = self.root / self.dataset_class.base_folder / self.dataset_class.meta["filename"]
            names = CIFAR10_CLASSES if self.variant == 10 else CIFAR100_CLASSES
            if meta.is_file():
                try:
                    with meta.open("rb") as handle:
                        names = list(pickle.load(handle, encoding="latin1")[self.dataset_class.meta["key"]])
                except Exception as error:
                    raise MalformedDatasetError(self._message(f"cannot read the label names in {meta}: {error}")) from error
            self._class_names = names
        return self._class_names

    def _layout(self) -> str:
        cls = self.dataset_class
        files = [name for name, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
        return f"    {self.root}/{cls.base_folder}/{{{', '.join(files)}}} (python pickle batches)"

    def _message(self, problem: str) -> str:
        return dataset_message(
            problem,
            self.root / self.dataset_class.base_folder,
            self._layout(),
            f"{self.dataset_class.url} (https://www.cs.toronto.edu/~kriz/cifar.html); "
            f"pass download=True (--data.init_args.download=true) to fetch it",
        )

    def prepare_data(self) -> None:
        """Download and extract the archive when `download=True` (torchvision skips it when the md5 sums match)."""
        if self.download:
            cls = self.dataset_class
            with explain_download_failure(
                f"CIFAR-{self.variant} ({cls.filename})", cls.url,
                f"download it on a machine with internet and extract it into {self.root}, so that "
                f"{self.root / cls.base_folder} holds the python pickle batches",
                "download=false (--data.init_args.download=false) reads the batches already in data_dir",
            ):
                cls(str(self.root), train=True, download=True)

    def _read_split(self, split: str) -> Dataset:
        cls = self.dataset_class
        folder = self.root / cls.base_folder
        missing = [name for name, _ in cls.train_list + cls.test_list if not (folder / name).is_file()]
        if not (folder / cls.meta["filename"]).is_file():
            missing.append(cls.meta["filename"])
        if missing:
            raise DatasetNotFoundError(self._message(f"CIFAR-{self.variant} not found: missing {', '.join(missing)}"))
        try:
            dataset = cls(str(self.root), train=split == "train", download=False)
        except RuntimeError as error:  # torchvision's md5 check failed
            raise MalformedDatasetError(
                self._message(f"CIFAR-{self.variant} files in {folder} are corrupted ({error}); delete them and download again")
            ) from error
        except (pickle.UnpicklingError, KeyError, EOFError, ValueError) as error:
            raise MalformedDatasetError(self._message(f"cannot read the CIFAR-{self.variant} batches in {folder}: {error!r}")) from error
        if dataset.targets and not 0 <= min(dataset.targets) <= max(dataset.targets) < self.variant:
            raise MalformedDatasetError(self._message(f"labels outside 0..{self.variant - 1} in {folder}"))
        return dataset
