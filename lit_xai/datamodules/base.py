"""What every lit-xai datamodule shares: its four DataLoaders, built from `dataset(split)`."""

from __future__ import annotations

import abc

import lightning.pytorch as pl
from torch.utils.data import DataLoader, Dataset


class SplitDataModule(pl.LightningDataModule, abc.ABC):
    """A datamodule with "train", "val" and "test" splits; `predict` reads the test split.

    Subclasses set `batch_size` and `num_workers` and implement `dataset(split)`.
    """

    batch_size: int
    num_workers: int

    @abc.abstractmethod
    def dataset(self, split: str) -> Dataset:
        """The dataset of `split` ("train", "val" or "test")."""

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        return DataLoader(
            self.dataset(split), batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")
