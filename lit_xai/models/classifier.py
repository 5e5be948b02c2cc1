"""A LightningModule for classification of images (or 1-D series) with a named backbone."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy

from lit_xai.models.backbones import build_backbone


class ImageClassifier(pl.LightningModule):
    """Cross-entropy classifier; logs `train/loss`, `val/loss`, `val/acc`, `test/loss`, `test/acc`.

    `num_classes` and `input_shape` are linked from the datamodule by the CLI. `default_target_layer`
    names the layer explainer callbacks use for CAM methods (`net.block3`, the last conv block).
    """

    def __init__(
        self,
        num_classes: int = 10,
        input_shape: tuple[int, ...] = (1, 8, 8),
        backbone: str = "small_cnn",
        width: int = 32,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net, target = build_backbone(backbone, tuple(input_shape), num_classes, width)
        self.default_target_layer = f"net.{target}"
        self.lr, self.weight_decay = lr, weight_decay
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, inputs: Tensor) -> Tensor:
        return self.net(inputs)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        inputs, labels = batch
        loss = F.cross_entropy(self(inputs), labels)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_acc)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_acc)

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self(batch[0]).argmax(dim=1)

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str, accuracy: MulticlassAccuracy) -> None:
        inputs, labels = batch
        logits = self(inputs)
        accuracy(logits, labels)
        self.log(f"{stage}/loss", F.cross_entropy(logits, labels), prog_bar=True, sync_dist=True)
        self.log(f"{stage}/acc", accuracy, prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
