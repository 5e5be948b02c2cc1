"""ExplainerCallback under injected faults: a failed explainer's partial numbers are not reported, a diverged
model skips the round, and training goes on."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from lit_xai.callbacks import ExplainerCallback
from lit_xai.metrics import Deletion
from tests.fault_helpers import DivergingModule, FlakyGradCAM
from tests.helpers import RecordingGradCAM, TinyData, TinyModule


def trainer(callbacks: list[pl.Callback], max_epochs: int = 1, **kwargs: object) -> pl.Trainer:
    options = dict(
        max_epochs=max_epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )
    options.update(kwargs)
    return pl.Trainer(callbacks=callbacks, **options)


def logged_rows(directory: Path) -> list[dict[str, str]]:
    (path,) = directory.rglob("metrics.csv")
    return list(csv.DictReader(path.open()))


def test_explainer_failing_mid_round_reports_the_flag_only(tmp_path: Path) -> None:
    """20 test images in batches of 8: the explainer runs on the first batch and fails on the second; its
    numbers from the first batch are computed but neither logged, nor in the tables, nor in xai_scores.csv."""
    pl.seed_everything(0)
    callback = ExplainerCallback(
        {"gradcam": RecordingGradCAM(), "flaky": FlakyGradCAM(fail_calls=(2,))}, metrics=[Deletion(steps=4)], print_table=False
    )
    run = trainer([callback], logger=CSVLogger(tmp_path, name="run"))
    with pytest.warns(UserWarning, match="explainer 'flaky' failed.*flaky on call 2"):
        run.test(TinyModule(), TinyData(), verbose=False)
    assert callback.metrics["flaky"]["deletion"].count.item() == 8  # the partial numbers exist ...
    assert sorted(k for k in run.callback_metrics if k.startswith("xai/flaky")) == ["xai/flaky/failed"]  # ... and are not reported
    assert run.callback_metrics["xai/flaky/failed"].item() == 1.0
    assert all(math.isnan(v) for v in callback.results["test"]["flaky"].values())
    log_dir = Path(run.log_dir)
    rows = list(csv.reader((log_dir / "xai_results.csv").open()))
    assert rows[0] == ["explainer", "deletion", "deletion_se", "seconds_per_sample"]
    assert rows[2] == ["flaky", "nan", "nan", "nan"]
    assert "| flaky | failed | failed | failed |" in (log_dir / "xai_results.md").read_text()
    scores = list(csv.DictReader((log_dir / "xai_scores.csv").open()))
    assert {r["explainer"] for r in scores} == {"gradcam"}
    assert [int(r["sample"]) for r in scores] == list(range(20))
    # the explainer that ran is reported as in a run without the failing one
    pl.seed_everything(0)
    alone = ExplainerCallback({"gradcam": RecordingGradCAM()}, metrics=[Deletion(steps=4)], print_table=False)
    again = trainer([alone])
    again.test(TinyModule(), TinyData(), verbose=False)
    assert run.callback_metrics["xai/gradcam/deletion"].item() == pytest.approx(again.callback_metrics["xai/gradcam/deletion"].item(), abs=1e-7)


def test_printed_table_says_failed(capsys: pytest.CaptureFixture[str]) -> None:
    from lit_xai.callbacks.results import print_results

    print_results({"gradcam": {"deletion": 0.25}, "flaky": {"deletion": math.nan}}, "t", {"flaky": "RuntimeError: boom"})
    out = capsys.readouterr().out
    assert "0.25" in out and "failed" in out.split("flaky", 1)[1].splitlines()[0]


def test_diverged_model_skips_the_round_says_so_once_and_training_goes_on(tmp_path: Path) -> None:
    pl.seed_everything(0)
    recorder = RecordingGradCAM()
    callback = ExplainerCallback({"gradcam": recorder}, metrics=[Deletion(steps=4)], probe_size=6, print_table=False)
    module = DivergingModule(epochs=(1,))
    run = trainer([callback], max_epochs=3, logger=CSVLogger(tmp_path, name="run"))
    with pytest.warns(UserWarning, match="NaN or inf at validation epoch 1") as record:
        run.fit(module, TinyData())
    assert sum("diverged" in str(w.message) for w in record) == 1
    assert len(module.losses) == 18  # training went on: 3 epochs x 6 steps
    assert len(recorder.maps) == 2  # explained at epochs 0 and 2, not 1
    by_epoch: dict[int, dict[str, str]] = {}
    for row in logged_rows(tmp_path):
        by_epoch.setdefault(int(row["epoch"]), {}).update({k: v for k, v in row.items() if v != ""})
    assert by_epoch[1].get("xai/diverged") == "1.0" and "xai/gradcam/deletion" not in by_epoch[1]
    for epoch in (0, 2):
        assert "xai/diverged" not in by_epoch[epoch] and 0 <= float(by_epoch[epoch]["xai/gradcam/deletion"]) <= 1
    # test on a diverged model: nothing explained, the flag logged, the table all NaN, no per-image scores
    module.nan_epochs = (0,)  # the test run's epoch
    test_run = trainer([callback], logger=CSVLogger(tmp_path, name="test"))
    with pytest.warns(UserWarning, match="NaN or inf in test"):
        test_run.test(module, TinyData(), verbose=False)
    assert test_run.callback_metrics["xai/diverged"].item() == 1.0
    assert not [k for k in test_run.callback_metrics if k.startswith("xai/gradcam")]
    assert all(math.isnan(v) for v in callback.results["test"]["gradcam"].values())
    assert (Path(test_run.log_dir) / "xai_scores.csv").read_text().splitlines() == ["explainer,metric,sample,value"]
    assert len(recorder.maps) == 2


@pytest.mark.xdist_group("ddp")  # spawns DDP processes: one at a time, on one xdist worker (Makefile: --dist loadgroup)
def test_two_processes_explainer_failing_on_one_rank_and_model_diverging_on_one_rank(tmp_path: Path) -> None:
    """ddp_fork, 2 CPU processes, 2 epochs: at epoch 0 `flaky` fails on rank 1 only (rank 0's numbers for
    it are not logged); at epoch 1 the model's outputs are NaN on rank 1 only (both ranks skip the round)."""
    pl.seed_everything(0)
    callback = ExplainerCallback(
        {"gradcam": RecordingGradCAM(), "flaky": FlakyGradCAM(fail_calls=(1,), ranks=(1,))},
        metrics=[Deletion(steps=4)], probe_size=8, print_table=False, log_images=0,
    )
    run = trainer(
        [callback], max_epochs=2, strategy="ddp_fork", devices=2, logger=CSVLogger(tmp_path, name="run"),
    )
    run.fit(DivergingModule(epochs=(1,), ranks=(1,)), TinyData())
    by_epoch: dict[int, dict[str, str]] = {}
    for row in logged_rows(tmp_path):
        by_epoch.setdefault(int(row["epoch"]), {}).update({k: v for k, v in row.items() if v != ""})
    assert by_epoch[0]["xai/flaky/failed"] == "1.0"
    assert not [k for k in by_epoch[0] if k.startswith("xai/flaky/") and k != "xai/flaky/failed"]
    assert 0 <= float(by_epoch[0]["xai/gradcam/deletion"]) <= 1 and "xai/diverged" not in by_epoch[0]
    assert by_epoch[1]["xai/diverged"] == "1.0"
    assert not [k for k in by_epoch[1] if k.startswith("xai/") and k != "xai/diverged"]
