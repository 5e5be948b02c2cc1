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


class CrossingRULData(TinyRULData):
    """TinyRULData with a test split: the same 20 windows, in batches of 6."""

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=6)


class CrossingRULRegressor(TinyRULRegressor):
    """TinyRULRegressor whose predictions on TinyRULData's 20 windows cross 0, as a RUL regressor's do near
    failure: the head's weights scaled by 1000 and its bias set to minus the mean of the two middle
    predictions, so 10 windows are predicted below 0 and 10 above (none at 0)."""

    def __init__(self) -> None:
        super().__init__()
        head = self.net.head[-1]
        with torch.no_grad():
            head.weight.mul_(1000.0)
            head.bias.zero_()
            self.eval()
            middle = self(series_windows(20, 1).tensors[0]).sort().values[9:11]
            self.train()
            head.bias.fill_(-float(middle.mean()))
