"""The shipped C-MAPSS configs through `lit-xai`: a CNN-LSTM trained on fixture data by the real entry point
(`python -m lit_xai fit`) and tested from its checkpoint, and every C-MAPSS config parsed against the fixtures."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lit_xai.callbacks import ExplainerCallback
from lit_xai.cli import build_cli
from lit_xai.datamodules import CMAPSSDataModule
from tests.cmapss_fixtures import write_cmapss
from tests.dataset_fixtures import one_torch_thread  # noqa: F401  (autouse)
from tests.test_cli import last_values

ROOT = Path(__file__).resolve().parents[1]
RATIO_METRICS = ("average_drop", "increase_in_confidence", "average_drop_in_deletion")
SMALL = [
    "--trainer.accelerator=cpu", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
    "--model.init_args.conv_channels=16", "--model.init_args.lstm_hidden=32", "--model.init_args.dense=32",
]


def lit_xai(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "lit_xai", *args], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def test_cnn_lstm_fit_then_test_beats_the_training_mean(tmp_path: Path) -> None:
    data = write_cmapss(tmp_path / "data", train_units=8, test_units=8)
    common = [
        "-c", "configs/cmapss_fd001_cnn_lstm.yaml", f"--data.init_args.data_dir={data}", "--data.init_args.download=false",
        "--data.init_args.window_size=20", f"--trainer.logger.init_args.save_dir={tmp_path / 'logs'}", *SMALL,
    ]
    fit = lit_xai(
        "fit", *common, "--trainer.max_epochs=6", "--data.init_args.batch_size=16", "--model.init_args.lr=0.01",
        "--model.init_args.scheduler=none",
    )
    assert fit.returncode == 0, fit.stderr[-3000:]
    run_dir = tmp_path / "logs" / "cmapss_fd001_cnn_lstm"
    fitted = last_values(run_dir / "version_0" / "metrics.csv")
    assert {"val/rmse", "val/mae", "val/nasa_score", "xai/gradcam/deletion", "xai/expected_gradcam/insertion"} <= set(fitted)
    assert "explainer faithfulness" in fit.stdout
    # the thesis's ratio metrics on the predicted RUL (Table 3): logged and finite for every explainer
    ratios = {f"xai/{e}/{m}" for e in ("gradcam", "expected_gradcam", "random") for m in RATIO_METRICS}
    assert ratios <= set(fitted) and all(math.isfinite(fitted[key]) for key in ratios), {k: fitted.get(k) for k in ratios}
    assert all(0 <= fitted[f"xai/{e}/increase_in_confidence"] <= 1 for e in ("gradcam", "expected_gradcam", "random"))
    assert "is <= 0" not in fit.stderr and "failed and is skipped" not in fit.stderr

    test = build_cli(["test", *common, f"--ckpt_path={run_dir / 'version_0' / 'checkpoints' / 'best.ckpt'}"])
    tested = last_values(run_dir / "version_1" / "metrics.csv")
    with torch.no_grad():  # the logged RMSE is the RMSE of the checkpoint's predictions on the test windows
        inputs, truth = next(iter(test.datamodule.test_dataloader()))
        predicted = test.model.eval()(inputs)
    assert tested["test/rmse"] == pytest.approx(float((predicted - truth).pow(2).mean().sqrt()), rel=1e-5)
    module = CMAPSSDataModule(data, window_size=20)
    truth, train_mean = module.dataset("test").targets, module.dataset("train").targets.mean()
    assert len(truth) == 8
    mean_rmse = float((truth - train_mean).pow(2).mean().sqrt())
    assert tested["test/rmse"] < 0.5 * mean_rmse, (tested["test/rmse"], mean_rmse)
    assert tested["test/mae"] <= tested["test/rmse"] and tested["test/nasa_score"] > 0
    rows = {row["explainer"]: row for row in csv.DictReader((run_dir / "version_1" / "xai_results.csv").open())}
    assert set(rows) == {"gradcam", "expected_gradcam", "random"}
    assert all(math.isfinite(float(row[m])) for row in rows.values() for m in RATIO_METRICS), rows


@pytest.mark.parametrize(
    ("config", "subset", "arch", "window", "target_layer"),
    [
        ("cmapss_fd001_cnn_lstm", "FD001", "cnn_lstm", 30, "net.features.block2"),
        ("cmapss_fd001_cnn_bilstm", "FD001", "cnn_bilstm", 30, "net.features.block2"),
        ("cmapss_fd002_multihead", "FD002", "multihead_cnn_bilstm", 20, "net.features.merge"),
    ],
)
def test_configs_build_against_fixtures(config: str, subset: str, arch: str, window: int, target_layer: str, tmp_path: Path) -> None:
    data = write_cmapss(tmp_path, subset, train_units=5, test_units=2)
    cli = build_cli(["-c", str(ROOT / "configs" / f"{config}.yaml"), f"--data.init_args.data_dir={data}"], run=False)
    assert cli.model.hparams.arch == arch and tuple(cli.model.hparams.input_shape) == (14, window)  # linked from the data
    assert cli.model.default_target_layer == target_layer
    assert cli.datamodule.subset == subset and cli.datamodule.per_regime == (subset == "FD002")
    callback = next(c for c in cli.trainer.callbacks if isinstance(c, ExplainerCallback))
    assert set(callback.explainers) == {"gradcam", "expected_gradcam", "random"}
    assert callback.metric_templates["deletion"].steps == window
    assert list(callback.metric_templates) == ["insertion", "deletion", *RATIO_METRICS]
    inputs, rul = next(iter(cli.datamodule.train_dataloader()))
    assert cli.model(inputs).shape == rul.shape and torch.isfinite(cli.model(inputs)).all()
