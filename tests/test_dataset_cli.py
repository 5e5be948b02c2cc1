"""`lit-xai fit` / `lit-xai test` on every fixture dataset, through `build_cli` and `python -m lit_xai`,
and every shipped dataset config parsed against the fixtures."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torchvision.datasets.cifar
from torch import nn

from lit_xai.callbacks import ExplainerCallback
from lit_xai.cli import build_cli
from tests.test_cli import last_values
from tests.dataset_fixtures import (
    one_torch_thread,  # noqa: F401  (autouse)
    write_cifar10,
    write_cifar100,
    write_cub,
    write_food101,
    write_imagenet,
    write_run_config,
)

ROOT = Path(__file__).resolve().parents[1]

# name -> (fixture writer, datamodule class, extra init args, num_classes, test samples)
DATASETS: dict[str, tuple[Callable[[Path], Path], str, dict, int, int]] = {
    "imagenet": (write_imagenet, "ImageNetDataModule", {}, 3, 6),
    "imagenet_folder": (lambda p: write_imagenet(p, torchvision_layout=False), "ImageNetDataModule", {}, 3, 6),
    "cifar10": (write_cifar10, "CIFARDataModule", {"variant": 10, "val_fraction": 0.2}, 10, 6),
    "cifar100": (write_cifar100, "CIFARDataModule", {"variant": 100, "val_fraction": 0.25}, 100, 5),
    "cub": (write_cub, "CUBDataModule", {"return_boxes": True, "val_fraction": 0.25}, 3, 3),
    "food101": (write_food101, "Food101DataModule", {}, 3, 6),
}


@pytest.fixture(autouse=True)
def no_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CIFAR fixtures cannot match the real md5 sums (patched in the test, never in the library)."""
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)


def accuracies(model: nn.Module, loader: torch.utils.data.DataLoader) -> tuple[float, float, int]:
    """Top-1 and top-5 accuracy of `model` over `loader`, and the number of samples."""
    model.eval()
    top1 = top5 = total = 0
    with torch.no_grad():
        for batch in loader:
            logits = model(batch[0])
            top = logits.topk(min(5, logits.shape[1]), dim=1).indices
            top1 += int((top[:, 0] == batch[1]).sum())
            top5 += int((top == batch[1][:, None]).any(dim=1).sum())
            total += len(batch[1])
    return top1 / total, top5 / total, total


def make_config(name: str, tmp_path: Path, **model_args: object) -> Path:
    writer, data_class, extra, _, _ = DATASETS[name]
    data_dir = writer(tmp_path / "data")
    data_args = {"data_dir": data_dir, "image_size": 16, "batch_size": 4, **extra}
    return write_run_config(tmp_path / "run.yaml", data_class, data_args, tmp_path / "logs", model_args or None)


@pytest.mark.parametrize("name", list(DATASETS))
def test_fit_fast_dev_run_then_test(name: str, tmp_path: Path) -> None:
    _, _, _, num_classes, test_size = DATASETS[name]
    config = make_config(name, tmp_path)
    fit = build_cli(["fit", "-c", str(config), "--trainer.fast_dev_run=true"])
    # the datamodule's metadata reached the model through the CLI links
    assert fit.model.hparams.num_classes == num_classes and tuple(fit.model.hparams.input_shape) == (3, 16, 16)
    assert fit.model.net.head[-1].out_features == num_classes
    assert fit.trainer.global_step == 1
    metrics = fit.trainer.callback_metrics
    assert 0.0 <= float(metrics["val/acc"]) <= 1.0 and torch.isfinite(metrics["train/loss"])
    assert 0.0 <= float(metrics["xai/gradcam/deletion"]) <= 1.0 and 0.0 <= float(metrics["xai/random/insertion"]) <= 1.0

    test = build_cli(["test", "-c", str(config)])
    top1, top5, total = accuracies(test.model, test.datamodule.test_dataloader())
    assert total == test_size
    logged = test.trainer.callback_metrics
    assert float(logged["test/acc"]) == pytest.approx(top1)
    assert ("test/acc_top5" in logged) == (num_classes >= 5)
    if num_classes >= 5:
        assert float(logged["test/acc_top5"]) == pytest.approx(top5)
    run_dir = tmp_path / "logs" / "run" / "version_0"
    assert last_values(run_dir / "metrics.csv")["test/acc"] == pytest.approx(top1)
    rows = {row["explainer"]: row for row in csv.DictReader((run_dir / "xai_results.csv").open())}
    assert set(rows) == {"gradcam", "random"}
    assert all(0.0 <= float(rows[e][m]) <= 1.0 for e in rows for m in ("insertion", "deletion"))


def lit_xai(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny tensors: one thread, as in-process (one_torch_thread)
    return subprocess.run([sys.executable, "-m", "lit_xai", *args], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def test_python_dash_m_fit_and_test(tmp_path: Path) -> None:
    """The real entry point: fit a ResNet-18 on the ImageNet fixture, test a small CNN on CUB with boxes."""
    imagenet = make_config("imagenet", tmp_path / "imagenet", backbone="resnet18")
    fit = lit_xai("fit", "-c", str(imagenet), "--trainer.fast_dev_run=true", "--data.init_args.image_size=32")
    assert fit.returncode == 0, fit.stderr[-3000:]
    assert "explainer faithfulness" in fit.stdout and "gradcam" in fit.stdout

    cub = make_config("cub", tmp_path / "cub")
    test = lit_xai("test", "-c", str(cub))
    assert test.returncode == 0, test.stderr[-3000:]
    # the same seed builds the same model here: its accuracy is the one the subprocess logged
    same = build_cli(["-c", str(cub)], run=False)
    top1, _, total = accuracies(same.model, same.datamodule.test_dataloader())
    run_dir = tmp_path / "cub" / "logs" / "run" / "version_0"
    assert total == 3 and last_values(run_dir / "metrics.csv")["test/acc"] == pytest.approx(top1)
    assert {row["explainer"] for row in csv.DictReader((run_dir / "xai_results.csv").open())} == {"gradcam", "random"}


# ---- the shipped configs -----------------------------------------------------------------------------
CONFIGS = {
    "cifar10_resnet18.yaml": ("cifar10", "resnet18", 10),
    "cifar10_resnet18_eval.yaml": ("cifar10", "resnet18", 10),
    "cifar100_resnet18.yaml": ("cifar100", "resnet18", 100),
    "cifar100_resnet18_eval.yaml": ("cifar100", "resnet18", 100),
    "cub_resnet50.yaml": ("cub", "resnet50", 3),
    "cub_resnet50_eval.yaml": ("cub", "resnet50", 3),
    "food101_resnet50.yaml": ("food101", "resnet50", 3),
    "food101_resnet50_eval.yaml": ("food101", "resnet50", 3),
    "imagenet_resnet50.yaml": ("imagenet", "resnet50", 3),
    "imagenet_resnet50_eval.yaml": ("imagenet", "resnet50", 3),
    "imagenet_vgg16_eval.yaml": ("imagenet", "vgg16", 3),
}


def test_every_dataset_config_is_listed() -> None:
    shipped = {p.name for p in (ROOT / "configs").glob("*.yaml")} - {"quickstart.yaml", "all_explainers.yaml", "all_metrics.yaml", "faithfulness_metrics.yaml", "shapes_vit_tiny.yaml"}
    cmapss = {p.name for p in (ROOT / "configs").glob("cmapss_*.yaml")}  # tests/test_cmapss_cli.py builds them
    assert shipped - cmapss == set(CONFIGS)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_dataset_config_builds_on_fixture(config: str, tmp_path: Path) -> None:
    """Each config builds (offline: weights=null, data_dir = the fixture) with its logger, explainers and metrics."""
    from lightning.pytorch.loggers import CSVLogger

    import lit_xai.metrics as metrics_module

    dataset, backbone, num_classes = CONFIGS[config]
    data_dir = DATASETS[dataset][0](tmp_path / "data")
    cli = build_cli(
        ["-c", str(ROOT / "configs" / config), f"--data.init_args.data_dir={data_dir}", "--model.init_args.weights=null",
         f"--trainer.logger.init_args.save_dir={tmp_path}", "--data.init_args.num_workers=0"],
        run=False,
    )
    assert cli.model.hparams.backbone == backbone and cli.model.hparams.num_classes == num_classes
    assert isinstance(cli.trainer.logger, CSVLogger) and cli.trainer.logger.name == config.removesuffix(".yaml")
    cli.model.get_submodule(cli.model.default_target_layer)
    callback = next(c for c in cli.trainer.callbacks if isinstance(c, ExplainerCallback))
    if config.endswith("_eval.yaml"):  # every explainer of configs/all_explainers.yaml, every metric
        every = build_cli(["-c", str(ROOT / "configs" / "quickstart.yaml"), "-c", str(ROOT / "configs" / "all_explainers.yaml")], run=False)
        reference = next(c for c in every.trainer.callbacks if isinstance(c, ExplainerCallback))
        assert {k: type(v) for k, v in callback.explainers.items()} == {k: type(v) for k, v in reference.explainers.items()}
        faithfulness = {  # every metric with update(model, inputs, saliency, targets)
            metrics_module.Insertion, metrics_module.Deletion, metrics_module.InsertionDeletion,
            metrics_module.AverageDrop, metrics_module.IncreaseInConfidence, metrics_module.AverageDropInDeletion,
        }
        assert {type(m) for m in callback.metric_templates.values()} == faithfulness
    else:
        assert {"gradcam", "random"} <= set(callback.explainers) and len(callback.metric_templates) >= 2
