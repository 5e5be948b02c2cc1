"""Two processes (ddp_fork, gloo, CPU) log the same explainer metrics as one, each explaining half the probe."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.loggers import CSVLogger
import pytest

from lit_xai.callbacks import ExplainerCallback
from lit_xai.explainers import RandomSaliency
from lit_xai.metrics import Deletion, Insertion
from tests.helpers import RecordingGradCAM, TinyData, TinyModule


def validate(devices: int, count_dir: Path) -> dict[str, float]:
    """validate then test, with a CSV logger and figures (rank 0 draws; every rank joins the collectives)."""
    pl.seed_everything(0)
    callback = ExplainerCallback(
        explainers={"gradcam": RecordingGradCAM(str(count_dir)), "random": RandomSaliency()},
        metrics=[Insertion(steps=8), Deletion(steps=8)],
        probe_size=16,
        log_images=2,
        print_table=False,
    )
    strategy = "ddp_fork" if devices > 1 else "auto"
    run = pl.Trainer(
        accelerator="cpu", devices=devices, strategy=strategy, logger=CSVLogger(count_dir, name="logs"), enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[callback],
    )
    run.validate(TinyModule(), TinyData(), verbose=False)
    values = {k: v.item() for k, v in run.callback_metrics.items() if k.startswith("xai/") and not k.endswith("seconds_per_sample")}
    pl.seed_everything(0)  # the same weights for the test run in both cases (validate consumed the RNG in one only)
    run.test(TinyModule(), TinyData(), verbose=False)
    return values


@pytest.mark.xdist_group("ddp")  # spawns DDP processes: one at a time, on one xdist worker (Makefile: --dist loadgroup)
def test_two_processes_equal_one(tmp_path: Path) -> None:
    single_dir, ddp_dir = tmp_path / "single", tmp_path / "ddp"
    single_dir.mkdir()
    ddp_dir.mkdir()
    single = validate(1, single_dir)
    double = validate(2, ddp_dir)
    assert set(single) == {f"xai/{e}/{m}" for e in ("gradcam", "random") for m in ("insertion", "deletion")}
    assert set(double) == set(single)
    for key, value in single.items():
        assert double[key] == pytest.approx(value, abs=1e-6), key
    # validate: 16 probe samples; test: 20 samples in batches of 8 (DistributedSampler: 10 per rank, as 8 + 2)
    assert (single_dir / "rank0.txt").read_text().split() == ["16", "8", "8", "4"]
    assert (ddp_dir / "rank0.txt").read_text().split() == ["8", "8", "2"]
    assert (ddp_dir / "rank1.txt").read_text().split() == ["8", "8", "2"]
    for directory in (single_dir, ddp_dir):
        logs = directory / "logs"  # one version directory, or one per spawned run under ddp_spawn
        assert {p.name for p in logs.rglob("*.png")} == {
            f"xai_{stage}_{kind}_step000000.png" for stage in ("validate", "test") for kind in ("overlays", "curves")
        } | {"xai_test_ranking_step000000.png"}
        (results,) = logs.rglob("xai_results.csv")
        assert results.read_text().startswith("explainer,insertion,insertion_se,deletion,deletion_se")
    # every test image's value, gathered from both ranks: the same 20 values per explainer and metric
    scores = {}
    for name, directory in (("single", single_dir), ("ddp", ddp_dir)):
        (path,) = (directory / "logs").rglob("xai_scores.csv")
        rows = list(csv.DictReader(path.open()))
        scores[name] = {
            (e, m): sorted(float(r["value"]) for r in rows if (r["explainer"], r["metric"]) == (e, m))
            for e in ("gradcam", "random") for m in ("insertion", "deletion")
        }
    for key, values in scores["single"].items():
        assert len(values) == 20, key
        assert scores["ddp"][key] == pytest.approx(values, abs=1e-6), key
    # the paired ranking from 2 processes equals 1 (same ranks, means, p-values and reliabilities)
    rankings = {}
    for name, directory in (("single", single_dir), ("ddp", ddp_dir)):
        (ranking,) = (directory / "logs").rglob("xai_ranking.csv")
        (pairs,) = (directory / "logs").rglob("xai_ranking_pairs.csv")
        rankings[name] = (list(csv.DictReader(ranking.open())), list(csv.DictReader(pairs.open())))
    (single_ranks, single_pairs), (ddp_ranks, ddp_pairs) = rankings["single"], rankings["ddp"]
    assert len(single_ranks) == 4 and len(single_pairs) == 2
    for one, two in zip(single_ranks, ddp_ranks):
        assert (one["metric"], one["explainer"], one["rank"], one["images"]) == (two["metric"], two["explainer"], two["rank"], "20")
        for column in ("mean", "mean_rank", "krippendorff_alpha"):
            assert float(two[column]) == pytest.approx(float(one[column]), abs=1e-6), column
    for one, two in zip(single_pairs, ddp_pairs):
        assert (one["first"], one["second"], one["separable"]) == (two["first"], two["second"], two["separable"])
        for column in ("mean_difference", "standard_error", "p", "p_holm"):
            assert float(two[column]) == pytest.approx(float(one[column]), abs=1e-6), column


def metric_values(devices: int) -> dict[str, float]:
    from tests.helpers import MetricsModule

    pl.seed_everything(0)
    run = pl.Trainer(
        accelerator="cpu", devices=devices, strategy="ddp_fork" if devices > 1 else "auto", logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    run.validate(MetricsModule(), TinyData(batch_size=5), verbose=False)
    return {k: v.item() for k, v in run.callback_metrics.items() if k.startswith("metric/")}


@pytest.mark.xdist_group("ddp")  # spawns DDP processes: one at a time, on one xdist worker (Makefile: --dist loadgroup)
def test_metrics_sync_two_processes_equal_one() -> None:
    single, double = metric_values(1), metric_values(2)
    assert len(single) == 6 and set(double) == set(single)
    for key, value in single.items():
        assert double[key] == pytest.approx(value, abs=1e-6), key


@pytest.mark.xdist_group("ddp")  # spawns DDP processes: one at a time, on one xdist worker (Makefile: --dist loadgroup)
def test_model_randomization_similarity_two_processes_equal_one() -> None:
    from tests.helpers import RandomizationModule

    values = []
    for devices in (1, 2):
        pl.seed_everything(0)
        run = pl.Trainer(
            accelerator="cpu", devices=devices, strategy="ddp_fork" if devices > 1 else "auto", logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        )
        run.validate(RandomizationModule(), TinyData(batch_size=5), verbose=False)
        values.append(run.callback_metrics["metric/randomization"].item())
    assert -1 <= values[0] <= 1
    assert values[1] == pytest.approx(values[0], abs=1e-6)


@pytest.mark.xdist_group("ddp")  # spawns DDP processes: one at a time, on one xdist worker (Makefile: --dist loadgroup)
def test_cli_validate_on_two_processes_exits_0_without_sync_dist_warnings(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """`lit-xai validate` with 2 spawned gloo processes: the xai values (synchronised by torchmetrics) are
    logged without Lightning's "use sync_dist=True" warning (the workers write to the captured stderr),
    and the workers, whose gloo group the callback destroys at exit with nothing registered by the user,
    exit cleanly (a worker that aborts makes the spawn launcher raise)."""
    from lit_xai.cli import build_cli
    from tests.test_cli import ROOT, last_values

    build_cli([
        "validate", "-c", str(ROOT / "configs" / "quickstart.yaml"),
        "--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp_spawn",
        f"--trainer.logger.init_args.save_dir={tmp_path}", "--trainer.limit_val_batches=2",
        "--trainer.enable_model_summary=false", "--trainer.enable_progress_bar=false",
        "--xai.probe_size=16", "--xai.print_table=false",
    ])
    out, err = capfd.readouterr()
    assert "sync_dist" not in out + err
    assert "terminate called" not in err
    (metrics,) = tmp_path.rglob("metrics.csv")
    values = last_values(metrics)
    assert {f"xai/{e}/{m}" for e in ("gradcam", "random") for m in ("insertion", "deletion")} <= set(values)
    assert 0 <= values["xai/gradcam/deletion"] <= 1
