"""scikit-learn's bundled 8x8 digits: the embedded default (no download, no files)."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from torch import Tensor
from torch.utils.data import TensorDataset

from lit_xai.datamodules.base import SplitDataModule


def split_indices(n: int, fractions: tuple[float, float], seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """A fixed random split of range(n) into train / val / test given the val and test fractions."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val, n_test = round(n * fractions[0]), round(n * fractions[1])
    return order[n_val + n_test :], order[:n_val], order[n_val : n_val + n_test]


class DigitsDataModule(SplitDataModule):
    """1,797 grey 8x8 images of handwritten digits 0-9 (scikit-learn's copy of the UCI set).

    Pixels (0..16) are scaled to [0, 1] and standardised with the training split's mean and standard
    deviation. The train / val / test split is fixed by `seed` (default 60 / 20 / 20 %).
    Samples are `(image (1, 8, 8) float32, label int64)`.
    """

    num_classes = 10
    input_shape = (1, 8, 8)
    class_names = [str(digit) for digit in range(10)]

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ValueError(
                f"val_fraction and test_fraction must be in (0, 1) and sum to less than 1, got {val_fraction} and {test_fraction}"
            )
        self.save_hyperparameters()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.fractions = (val_fraction, test_fraction)
        self.seed = seed
        self.splits: dict[str, TensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        digits = load_digits()
        images = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        labels = torch.as_tensor(digits.target, dtype=torch.long)
        train, val, test = split_indices(len(labels), self.fractions, self.seed)
        mean, std = images[train].mean(), images[train].std()
        images = (images - mean) / std
        self.splits = {name: TensorDataset(images[idx], labels[idx]) for name, idx in (("train", train), ("val", val), ("test", test))}

    def dataset(self, split: str) -> TensorDataset:
        self.setup()
        return self.splits[split]

    def baseline_bank(self, size: int, seed: int = 0) -> Tensor:
        """`size` normalised training images `(size, 1, 8, 8)` drawn with `seed` (baselines for Expected Grad-CAM)."""
        self.setup()
        images = self.splits["train"].tensors[0]
        return images[torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:size]]
