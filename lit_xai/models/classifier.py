"""A LightningModule for classification of images (or 1-D series) with a named backbone."""

from __future__ import annotations

from typing import Any, Optional

import lightning.pytorch as pl
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from lit_xai.models.backbones import build_backbone
from lit_xai.models.optimization import OptimizerName, SchedulerName, build_optimization, check_optimization


class ImageClassifier(pl.LightningModule):
    """Cross-entropy classifier over a named backbone.

    Logs `train/loss`, `train/acc`, `val/loss`, `val/acc`, `test/loss`, `test/acc` (top-1) and, when
    `num_classes >= 5`, `val/acc_top5` and `test/acc_top5`. `num_classes` and `input_shape` are linked
    from the datamodule by the CLI. `default_target_layer` names the layer explainer callbacks use for CAM
    methods: `net.block3` for small_cnn, `net.layer4` for ResNets, `net.features.<last conv's ReLU>` for
    VGGs, `net.features` for DenseNets, the last `net.features` block for MobileNet-V3, EfficientNet,
    ConvNeXt and Swin (its last stage), and the last encoder block's first norm for ViTs ("vit_b_16",
    "vit_b_32", "vit_tiny": `net.encoder.layers.encoder_layer_<L-1>.ln_1`, whose patch tokens still reach
    the class token; see `lit_xai.models.torchvision_backbones._vit_target`).

    Args:
        num_classes: output classes.
        input_shape: `(C, H, W)` (or `(C, T)` for small_cnn on series).
        backbone: "small_cnn" or a torchvision name (see `lit_xai.models.backbones.BACKBONES`).
        width: channels of small_cnn, hidden width of vit_tiny (ignored by torchvision backbones).
        lr: learning rate (the peak rate with `scheduler="onecycle"`); the attribute `lr` is what
            Lightning's `LearningRateFinder` sets.
        weight_decay: weight decay of the optimizer.
        weights: torchvision pretrained weights: None (random), "DEFAULT" or a name ("IMAGENET1K_V2").
        optimizer: "adam", "adamw" or "sgd" (with `momentum`, Nesterov). LightningCLI's `--optimizer`
            and `--lr_scheduler` replace this choice when given.
        momentum: SGD momentum.
        scheduler: "none"; "onecycle" (one-cycle policy, Smith & Topin 2017 "Super-convergence": the rate
            rises from lr/25 to `lr` over `pct_start` of the run then anneals to lr/1e4, stepped every
            batch); "cosine" (cosine annealing to 0, stepped every batch).
        pct_start: fraction of the steps spent rising with "onecycle".
        cifar_stem: ResNets only, 3x3 stride-1 stem without max-pool for 32x32 inputs.
    """

    def __init__(
        self,
        num_classes: int = 10,
        input_shape: tuple[int, ...] = (1, 8, 8),
        backbone: str = "small_cnn",
        width: int = 32,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        weights: Optional[str] = None,
        optimizer: OptimizerName = "adam",
        momentum: float = 0.9,
        scheduler: SchedulerName = "none",
        pct_start: float = 0.3,
        cifar_stem: bool = False,
    ) -> None:
        super().__init__()
        check_optimization(optimizer, scheduler)
        self.save_hyperparameters()
        self.net, target = build_backbone(backbone, tuple(input_shape), num_classes, width, weights, cifar_stem)
        self.default_target_layer = f"net.{target}"
        self.lr, self.weight_decay = lr, weight_decay
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_metrics = self._accuracies(num_classes)
        self.test_metrics = self._accuracies(num_classes)

    @staticmethod
    def _accuracies(num_classes: int) -> MetricCollection:
        metrics: dict[str, Any] = {"acc": MulticlassAccuracy(num_classes, average="micro")}
        if num_classes >= 5:
            metrics["acc_top5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro")
        return MetricCollection(metrics)

    def forward(self, inputs: Tensor) -> Tensor:
        return self.net(inputs)

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        inputs, labels = batch[0], batch[1]
        logits = self(inputs)
        loss = F.cross_entropy(logits, labels)
        self.train_acc(logits, labels)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(inputs).argmax(dim=1)

    def _evaluate(self, batch: tuple[Tensor, ...], stage: str, metrics: MetricCollection) -> None:
        inputs, labels = batch[0], batch[1]
        logits = self(inputs)
        metrics.update(logits, labels)
        self.log(f"{stage}/loss", F.cross_entropy(logits, labels), prog_bar=True, sync_dist=True)
        for name, metric in metrics.items():
            self.log(f"{stage}/{name}", metric, prog_bar=name == "acc")

    def configure_optimizers(self) -> Any:
        h = self.hparams
        return build_optimization(self, h.optimizer, self.lr, self.weight_decay, h.momentum, h.scheduler, h.pct_start)
