"""A RUL regressor whose predictions cross 0 scored with Average Drop, Increase in Confidence and ADD in
ExplainerCallback: the windows predicted <= 0 are left out and counted (`<metric>_skipped`), marked NaN in
`xai_scores.csv` in their own rows, and two processes (ddp_fork, gloo, CPU) give what one gives."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from lit_xai.callbacks import ExplainerCallback
from lit_xai.explainers import GradCAM, RandomSaliency
from lit_xai.metrics import AverageDrop, AverageDropInDeletion, IncreaseInConfidence
from tests.rul_helpers import CrossingRULData, CrossingRULRegressor

EXPLAINERS = ("gradcam", "random")
# The model itself rounds by batch size: on an AVX-512 CPU its predictions (about 1e3; head scaled by 1000)
# for batches of 3 and of 6 differ by up to 8e-6 (batches of 4 and 8 agree bit for bit), and Grad-CAM's
# maps and the metrics' passes run on each process's 3 windows a batch instead of 6; Average Drop divides
# by predictions near 0, which makes that up to 3e-6 of a score.
ROUNDING = 2e-5
METRICS = ("average_drop", "increase_in_confidence", "average_drop_in_deletion")


def run(devices: int, directory: Path) -> dict[str, float]:
    """validate (the 20 windows as the probe) then test (the same 20 windows in batches of 6)."""
    pl.seed_everything(0)
    callback = ExplainerCallback(
        explainers={"gradcam": GradCAM(), "random": RandomSaliency()},
        metrics=[AverageDrop(), IncreaseInConfidence(), AverageDropInDeletion()],
        probe_size=20,
        log_images=0,
        print_table=False,
    )
    trainer = pl.Trainer(
        accelerator="cpu", devices=devices, strategy="ddp_fork" if devices > 1 else "auto", logger=CSVLogger(directory, name="logs"),
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[callback],
    )
    trainer.validate(CrossingRULRegressor(), CrossingRULData(), verbose=False)
    values = {k: v.item() for k, v in trainer.callback_metrics.items() if k.startswith("xai/") and not k.endswith("seconds_per_sample")}
    trainer.test(CrossingRULRegressor(), CrossingRULData(), verbose=False)
    return values


def scores(directory: Path) -> dict[tuple[str, str], list[float]]:
    (path,) = (directory / "logs").rglob("xai_scores.csv")
    table: dict[tuple[str, str], list[float]] = {}
    for row in csv.DictReader(path.open()):
        table.setdefault((row["explainer"], row["metric"]), []).append(float(row["value"]))
    return table


@pytest.mark.xdist_group("ddp")  # spawns DDP processes: one at a time, on one xdist worker (Makefile: --dist loadgroup)
def test_predictions_crossing_zero_two_processes_equal_one(tmp_path: Path) -> None:
    model, data = CrossingRULRegressor().eval(), CrossingRULData()
    with torch.no_grad():
        predicted = model(data.val.tensors[0])
    left_out = (predicted <= 0).nonzero().flatten().tolist()
    assert len(left_out) == 10  # the model's predictions cross 0 (none is exactly 0)

    single = run(1, tmp_path / "single")
    double = run(2, tmp_path / "ddp")
    expected = {f"xai/{e}/{m}{suffix}" for e in EXPLAINERS for m in METRICS for suffix in ("", "_skipped")}
    assert set(single) == expected and set(double) == expected
    for key, value in single.items():
        assert math.isfinite(value), key
        assert double[key] == pytest.approx(value, rel=ROUNDING, abs=1e-9), key
        if key.endswith("_skipped"):
            assert value == 10, key  # synchronised: 5 + 5 under DDP
    assert 0 <= single["xai/gradcam/increase_in_confidence"] <= 1 and single["xai/gradcam/average_drop"] >= 0

    (results,) = (tmp_path / "single" / "logs").rglob("xai_results.csv")
    assert next(csv.reader(results.open()))[1:4] == ["average_drop", "average_drop_skipped", "average_drop_se"]
    one, two = scores(tmp_path / "single"), scores(tmp_path / "ddp")
    assert set(one) == set(two) == {(e, m) for e in EXPLAINERS for m in METRICS}
    for key, values in one.items():
        # one row per test window, in the loader's order, NaN exactly where the prediction is <= 0
        assert len(values) == 20 and [i for i, v in enumerate(values) if math.isnan(v)] == left_out, key
        assert sum(math.isnan(v) for v in two[key]) == 10 and len(two[key]) == 20, key  # rank order: rank 0's windows, then rank 1's
        assert sorted(v for v in two[key] if not math.isnan(v)) == pytest.approx(sorted(v for v in values if not math.isnan(v)), rel=ROUNDING, abs=1e-9), key
