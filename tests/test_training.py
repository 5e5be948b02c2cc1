"""Training options through the real CLI on a fixture dataset: Lightning's LR finder and batch-size finder
(`--trainer.callbacks+=...`), and one-cycle scheduling (the model's `scheduler` or `--lr_scheduler OneCycleLR`)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import torchvision.datasets.cifar
from lightning.pytorch.callbacks import BatchSizeFinder, LearningRateFinder

from lit_xai.cli import build_cli
from tests.dataset_fixtures import one_torch_thread, write_cifar10, write_run_config  # noqa: F401  (autouse fixture)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CIFAR-10 fixture of 40 training images (32 train + 8 val, seeded) and a small-CNN run config."""
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    data_dir = write_cifar10(tmp_path / "data", per_batch=8)
    data = {"data_dir": data_dir, "variant": 10, "val_fraction": 0.2, "batch_size": 4, "image_size": 16}
    return write_run_config(tmp_path / "run.yaml", "CIFARDataModule", data, tmp_path / "logs")


def logged_column(metrics_csv: Path, column: str) -> list[float]:
    with metrics_csv.open() as handle:
        return [float(row[column]) for row in csv.DictReader(handle) if row.get(column)]


def test_learning_rate_finder(config: Path) -> None:
    cli = build_cli([
        "fit", "-c", str(config), "--data.init_args.batch_size=2",
        "--trainer.callbacks+=LearningRateFinder", "--trainer.callbacks.min_lr=1e-4", "--trainer.callbacks.max_lr=1.0",
        "--trainer.callbacks.num_training_steps=14", "--trainer.callbacks.early_stop_threshold=null",
    ])  # fmt: skip
    finder = next(c for c in cli.trainer.callbacks if isinstance(c, LearningRateFinder))
    lrs = finder.optimal_lr.results["lr"]
    assert len(lrs) == 14 and lrs[0] == pytest.approx(1e-4) and lrs[-1] <= 1.0
    assert all(b > a for a, b in zip(lrs, lrs[1:]))  # exponential sweep
    suggestion = finder.optimal_lr.suggestion()
    assert suggestion is not None and suggestion in lrs[10:13]  # steepest descent, skipping 10 first and 1 last
    # the model trained with the suggested rate (its `lr` attribute, used by configure_optimizers)
    assert cli.model.lr == suggestion
    assert cli.trainer.optimizers[0].param_groups[0]["lr"] == suggestion
    assert cli.trainer.current_epoch == 1  # the run itself went on after the search


def test_batch_size_finder(config: Path) -> None:
    cli = build_cli([
        "fit", "-c", str(config),
        "--trainer.callbacks+=BatchSizeFinder", "--trainer.callbacks.mode=power", "--trainer.callbacks.init_val=2",
        "--trainer.callbacks.max_trials=3", "--trainer.callbacks.steps_per_trial=1",
    ])  # fmt: skip
    finder = next(c for c in cli.trainer.callbacks if isinstance(c, BatchSizeFinder))
    # power scaling: 2 -> 4 -> 8 in 3 trials, each succeeding; the datamodule and its loader use the result
    assert finder.optimal_batch_size == 8
    assert cli.datamodule.batch_size == 8 and cli.datamodule.hparams.batch_size == 8
    assert cli.trainer.train_dataloader.batch_size == 8
    assert cli.trainer.num_training_batches == 4  # 32 training images / 8


def reference_lrs(scheduler_name: str, lr: float, total_steps: int) -> list[float]:
    """The learning rate before each step of a reference scheduler over `total_steps` steps."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)
    if scheduler_name == "onecycle":
        scheduler: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps)
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    values = []
    for _ in range(total_steps):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return values


@pytest.mark.parametrize("scheduler", ["onecycle", "cosine"])
def test_model_scheduler_steps_every_batch(config: Path, tmp_path: Path, scheduler: str) -> None:
    cli = build_cli([
        "fit", "-c", str(config), "--trainer.max_epochs=2",
        "--model.init_args.optimizer=sgd", "--model.init_args.lr=0.05", f"--model.init_args.scheduler={scheduler}",
        "--trainer.callbacks+=LearningRateMonitor", "--trainer.callbacks.logging_interval=step",
    ])  # fmt: skip
    assert cli.trainer.global_step == 16  # 2 epochs x 8 batches
    logged = logged_column(tmp_path / "logs" / "run" / "version_0" / "metrics.csv", "lr-SGD")
    expected = reference_lrs(scheduler, 0.05, 16)
    assert logged == pytest.approx(expected, rel=1e-6)
    if scheduler == "onecycle":  # super-convergence: from lr/25 up to lr at 30 % of the run, then down
        assert logged[0] == pytest.approx(0.05 / 25) and max(logged) == pytest.approx(max(expected))
        assert logged.index(max(logged)) == 4 and logged[-1] == pytest.approx(0.05 / 25 / 1e4)


def test_cli_lr_scheduler_one_cycle(config: Path, tmp_path: Path) -> None:
    """LightningCLI's own `--optimizer` / `--lr_scheduler OneCycleLR` work, and one-cycle steps every batch."""
    cli = build_cli([
        "fit", "-c", str(config), "--trainer.max_epochs=3", "--trainer.limit_train_batches=2",
        "--optimizer=SGD", "--optimizer.lr=0.01", "--optimizer.momentum=0.9",
        "--lr_scheduler=OneCycleLR", "--lr_scheduler.max_lr=0.1", "--lr_scheduler.total_steps=6",
        "--trainer.callbacks+=LearningRateMonitor", "--trainer.callbacks.logging_interval=step",
    ])  # fmt: skip
    scheduler = cli.trainer.lr_scheduler_configs[0]
    assert isinstance(scheduler.scheduler, torch.optim.lr_scheduler.OneCycleLR) and scheduler.interval == "step"
    logged = logged_column(tmp_path / "logs" / "run" / "version_0" / "metrics.csv", "lr-SGD")
    assert logged == pytest.approx(reference_lrs("onecycle", 0.1, 6), rel=1e-6)  # 3 epochs x 2 batches
