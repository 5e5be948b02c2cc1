"""A LightningModule for remaining-useful-life regression on sensor windows (C-MAPSS)."""

from __future__ import annotations

from typing import Any, Optional

import lightning.pytorch as pl
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError

from lit_xai.metrics.rul import NASAScore
from lit_xai.models.optimization import OptimizerName, SchedulerName, build_optimization, check_optimization
from lit_xai.models.rul_networks import Architecture, CNNRecurrentNetwork


class RULRegressor(pl.LightningModule):
    """Remaining-useful-life regression with a CNN-LSTM, CNN-BiLSTM or multi-head CNN-BiLSTM
    (`lit_xai.models.rul_networks.CNNRecurrentNetwork`): inputs `(B, C, T)`, output the RUL `(B,)`.

    Loss: mean squared error. Logs `train/loss`, `val/loss`, `val/rmse`, `val/mae`, `val/nasa_score` and the
    same for test: RMSE and MAE are torchmetrics' `MeanSquaredError(squared=False)` and
    `MeanAbsoluteError`, the NASA score `lit_xai.metrics.NASAScore` (PHM08, summed over samples: over
    engines on the C-MAPSS test split, which has one window per engine). `default_target_layer` is the
    last Conv1d block (`net.features.block2`; `net.features.merge` for the multi-head network).
    `input_shape` is linked from the datamodule by the CLI.

    Args:
        arch: "cnn_lstm", "cnn_bilstm" or "multihead_cnn_bilstm".
        input_shape: `(C, T)`: sensors x cycles.
        conv_channels, kernel_size: width and first kernel of the Conv1d blocks.
        lstm_hidden, lstm_layers: LSTM size and depth (default 1, 2 for the multi-head network).
        dense, dropout: the dense head's width and dropout (also between stacked LSTM layers).
        sensor_groups: channel indices of each convolutional head (multi-head only; default one per sensor).
        lr, weight_decay, optimizer, momentum, scheduler, pct_start: as for `ImageClassifier`.
    """

    def __init__(
        self,
        arch: Architecture = "cnn_lstm",
        input_shape: tuple[int, ...] = (14, 30),
        conv_channels: int = 32,
        kernel_size: int = 5,
        lstm_hidden: int = 64,
        lstm_layers: Optional[int] = None,
        dense: int = 64,
        dropout: float = 0.2,
        sensor_groups: Optional[list[list[int]]] = None,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: OptimizerName = "adam",
        momentum: float = 0.9,
        scheduler: SchedulerName = "none",
        pct_start: float = 0.3,
    ) -> None:
        super().__init__()
        check_optimization(optimizer, scheduler)
        if len(input_shape) != 2:
            raise ValueError(f"input_shape must be (sensors, cycles), got {tuple(input_shape)}")
        self.save_hyperparameters()
        self.net = CNNRecurrentNetwork(arch, input_shape[0], conv_channels, kernel_size, lstm_hidden, lstm_layers, dense, dropout, sensor_groups)
        self.default_target_layer = f"net.{self.net.target_layer}"
        self.lr, self.weight_decay = lr, weight_decay
        self.val_metrics = self._metrics()
        self.test_metrics = self._metrics()

    @staticmethod
    def _metrics() -> MetricCollection:
        return MetricCollection({"rmse": MeanSquaredError(squared=False), "mae": MeanAbsoluteError(), "nasa_score": NASAScore()})

    def forward(self, inputs: Tensor) -> Tensor:
        return self.net(inputs)

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        loss = F.mse_loss(self(batch[0]), batch[1].to(batch[0].dtype))
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self(batch[0] if isinstance(batch, (tuple, list)) else batch)

    def _evaluate(self, batch: tuple[Tensor, ...], stage: str, metrics: MetricCollection) -> None:
        inputs, rul = batch[0], batch[1].to(batch[0].dtype)
        predictions = self(inputs)
        metrics.update(predictions, rul)
        self.log(f"{stage}/loss", F.mse_loss(predictions, rul), prog_bar=True, sync_dist=True)
        for name, metric in metrics.items():
            self.log(f"{stage}/{name}", metric, prog_bar=name == "rmse")

    def configure_optimizers(self) -> Any:
        h = self.hparams
        return build_optimization(self, h.optimizer, self.lr, self.weight_decay, h.momentum, h.scheduler, h.pct_start)
