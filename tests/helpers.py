"""A tiny LightningModule and DataModule for callback tests (importable by spawned DDP workers)."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from lit_xai.callbacks.process_group import destroy_gloo_group_at_exit as destroy_lightning_gloo_group_at_exit
from lit_xai.explainers import GradCAM
from tests.conftest import SmallNet


def make_images(n: int, seed: int) -> tuple[Tensor, Tensor]:
    """Noise images whose class (0, 1, 2) is the channel carrying a bright 3x3 patch."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, 8, 8, generator=generator) * 0.5
    labels = torch.randint(0, 3, (n,), generator=generator)
    rows, cols = torch.randint(0, 6, (2, n), generator=generator)
    for i in range(n):
        images[i, labels[i], rows[i] : rows[i] + 3, cols[i] : cols[i] + 3] += 2.0
    return images, labels


class TinyData(pl.LightningDataModule):
    """48 training and 20 validation images; the test split is the validation split."""

    def __init__(self, batch_size: int = 8) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.train = TensorDataset(*make_images(48, 0))
        self.val = TensorDataset(*make_images(20, 1))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True)

    def baseline_bank(self, size: int) -> Tensor:
        return self.train.tensors[0][:size]

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=self.batch_size)


def destroy_gloo_group_at_exit() -> None:
    """In a ddp_spawn / ddp_fork worker of a run without ExplainerCallback (which does it by itself), destroy the gloo
    process group that Lightning created when the process exits (lit_xai.callbacks.process_group)."""
    destroy_lightning_gloo_group_at_exit(existed_before=False)


class TinyModule(pl.LightningModule):
    """A user's own module: SmallNet (BatchNorm, Dropout) with SGD; records every training loss."""

    def __init__(self) -> None:
        super().__init__()
        self.net = SmallNet()
        self.default_target_layer = "net.features.3"
        self.losses: list[float] = []

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = F.cross_entropy(self(batch[0]), batch[1])
        self.losses.append(loss.item())
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log("val/loss", F.cross_entropy(self(batch[0]), batch[1]))

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log("test/loss", F.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class RecordingGradCAM(GradCAM):
    """Grad-CAM that keeps every map and target it produced (and, under DDP, counts samples per rank in files)."""

    def __init__(self, count_dir: str | None = None) -> None:
        super().__init__()
        self.maps: list[Tensor] = []
        self.targets: list[Tensor | None] = []
        self.count_dir = count_dir

    def __call__(self, model, inputs, targets=None):  # type: ignore[no-untyped-def]
        maps = super().__call__(model, inputs, targets)
        self.maps.append(maps.clone())
        self.targets.append(None if targets is None else targets.clone())
        if self.count_dir is not None:
            rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
            with (Path(self.count_dir) / f"rank{rank}.txt").open("a") as handle:
                handle.write(f"{len(inputs)}\n")
        return maps


class FailingExplainer(GradCAM):
    def explain(self, model, inputs, targets):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")


class MetricsModule(TinyModule):
    """Validation scores the input-gradient-free saliency |x| summed over channels with every faithfulness metric."""

    def setup(self, stage: str) -> None:
        destroy_gloo_group_at_exit()

    def __init__(self) -> None:
        super().__init__()
        from lit_xai.metrics import (
            AverageDrop,
            AverageDropInDeletion,
            Deletion,
            IncreaseInConfidence,
            Insertion,
            InsertionDeletion,
        )

        self.metrics = torch.nn.ModuleDict(
            {
                "insertion": Insertion(steps=8),
                "deletion": Deletion(steps=8, patch=2),
                "ins_del": InsertionDeletion(steps=8),
                "ad": AverageDrop(),
                "iic": IncreaseInConfidence(),
                "add": AverageDropInDeletion(),
            }
        )

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        inputs, labels = batch
        saliency = inputs.abs().sum(1)
        for name, metric in self.metrics.items():
            metric.update(self, inputs, saliency, labels)
            self.log(f"metric/{name}", metric, on_epoch=True)


class RandomizationModule(TinyModule):
    """Validation updates ModelRandomizationSimilarity (Grad-CAM, explicit cascade) and logs its last step."""

    def setup(self, stage: str) -> None:
        destroy_gloo_group_at_exit()

    def __init__(self) -> None:
        super().__init__()
        from lit_xai.metrics import ModelRandomizationSimilarity

        self.randomization = ModelRandomizationSimilarity(GradCAM(), layers=["net.head.3", "net.features.3", "net.features.0"])

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.randomization.update(self, batch[0], batch[1])
        self.log("metric/randomization", self.randomization, on_epoch=True)
