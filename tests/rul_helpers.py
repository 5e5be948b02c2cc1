"""A tiny RUL regressor and windows datamodule, importable by spawned DDP workers."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lit_xai.models import RULRegressor
from tests.helpers import destroy_gloo_group_at_exit


def series_windows(n: int, seed: int, channels: int = 3, steps: int = 12) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, channels, steps, generator=generator)
    rul = torch.randint(0, 126, (n,), generator=generator).float()
    return TensorDataset(inputs, rul)


class TinyRULData(pl.LightningDataModule):
    """20 validation windows (3 sensors x 12 cycles) with RUL targets 0..125, in batches of 6."""

    def __init__(self) -> None:
        super().__init__()
        self.val = series_windows(20, 1)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=6)


class TinyRULRegressor(RULRegressor):
    def __init__(self) -> None:
        torch.manual_seed(0)
        super().__init__("cnn_bilstm", (3, 12), conv_channels=4, lstm_hidden=5, dense=6)
        with torch.no_grad():
            self.net.head[-1].bias.fill_(60.0)  # predictions near the targets' range: every NASA-score branch is used

    def setup(self, stage: str) -> None:
        destroy_gloo_group_at_exit()
