"""The `lit-xai` command: the quickstart end to end, help, and config errors."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lit_xai.cli import build_cli
from tests.dataset_fixtures import one_torch_thread  # noqa: F401  (autouse: tiny tensors, one thread)

ROOT = Path(__file__).resolve().parents[1]


def lit_xai(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lit_xai", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def last_values(metrics_csv: Path) -> dict[str, float]:
    """The last non-empty value of every column of a CSVLogger metrics.csv."""
    values: dict[str, float] = {}
    with metrics_csv.open() as handle:
        for row in csv.DictReader(handle):
            values.update({key: float(value) for key, value in row.items() if value})
    return values


def test_quickstart_fit_then_test(tmp_path: Path) -> None:
    start = time.perf_counter()
    fit = lit_xai("fit", "--config", "configs/quickstart.yaml", f"--trainer.logger.init_args.save_dir={tmp_path}")
    seconds = time.perf_counter() - start
    assert fit.returncode == 0, fit.stderr[-3000:]
    assert seconds < 600  # ~20 s on a quiet 2-core machine; a loose bound (timings belong in benchmarks/, and CI shares its cores)
    run_dir = tmp_path / "quickstart" / "version_0"
    values = last_values(run_dir / "metrics.csv")
    assert values["val/acc"] >= 0.95
    # Grad-CAM must beat the random baseline on both metrics of the printed table
    assert values["xai/gradcam/deletion"] < values["xai/random/deletion"] - 0.05
    assert values["xai/gradcam/insertion"] > values["xai/random/insertion"] + 0.05
    assert 0.4 < values["xai/random/deletion"] < 0.6
    assert "explainer faithfulness" in fit.stdout and "gradcam" in fit.stdout
    assert f"{values['xai/gradcam/deletion']:.4g}" in fit.stdout  # the table shows the logged numbers
    assert (run_dir / "config.yaml").exists()

    test = lit_xai(
        "test", "--config", "configs/quickstart.yaml", f"--trainer.logger.init_args.save_dir={tmp_path}",
        f"--ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}",
    )
    assert test.returncode == 0, test.stderr[-3000:]
    results = list(csv.DictReader((tmp_path / "quickstart" / "version_1" / "xai_results.csv").open()))
    table = {row["explainer"]: row for row in results}
    assert set(table) == {"gradcam", "random"}
    assert float(table["gradcam"]["deletion"]) < float(table["random"]["deletion"])
    assert last_values(tmp_path / "quickstart" / "version_1" / "metrics.csv")["test/acc"] >= 0.95


@pytest.mark.parametrize("subcommand", ["fit", "validate", "test", "predict"])
def test_help(subcommand: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_cli([subcommand, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--config" in out and "--model" in out and "--data" in out


def test_python_dash_m_works() -> None:
    result = lit_xai("--help")
    assert result.returncode == 0 and "fit" in result.stdout and "test" in result.stdout


def test_unknown_config_key_gives_jsonargparse_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = (ROOT / "configs" / "quickstart.yaml").read_text().replace("probe_size: 128", "probe_sise: 128")
    (tmp_path / "bad.yaml").write_text(config)
    with pytest.raises(SystemExit) as exit_info:
        build_cli(["--config", str(tmp_path / "bad.yaml")], run=False)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Option 'probe_sise' is not accepted" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        build_cli(["--config", str(ROOT / "configs" / "quickstart.yaml"), "--trainer.max_epoch=3"], run=False)
    assert "unrecognized arguments: --trainer.max_epoch=3" in capsys.readouterr().err


def test_configs_compose_and_link_datamodule_to_model(tmp_path: Path) -> None:
    (tmp_path / "small.yaml").write_text("model:\n  init_args:\n    width: 8\ntrainer:\n  max_epochs: 1\n")
    cli = build_cli(["-c", str(ROOT / "configs" / "quickstart.yaml"), "-c", str(tmp_path / "small.yaml")], run=False)
    assert cli.model.hparams.width == 8 and cli.model.hparams.lr == 0.003  # both files applied
    assert cli.model.hparams.num_classes == 10 and tuple(cli.model.hparams.input_shape) == (1, 8, 8)
    assert cli.trainer.max_epochs == 1


def test_every_explainer_builds_from_yaml() -> None:
    import lit_xai.explainers as ex
    from lit_xai.callbacks import ExplainerCallback

    cli = build_cli(["-c", str(ROOT / "configs" / "quickstart.yaml"), "-c", str(ROOT / "configs" / "all_explainers.yaml")], run=False)
    callback = next(c for c in cli.trainer.callbacks if isinstance(c, ExplainerCallback))
    built = {type(e).__name__ for e in callback.explainers.values()}
    exported = {name for name in ex.__all__ if isinstance(getattr(ex, name), type) and issubclass(getattr(ex, name), ex.Explainer)}
    vit_only = {"AttentionRollout", "LeGrad", "HeadDecomposition"}  # configs/shapes_vit_tiny.yaml (tests/explainers/transformers/test_vit_shapes.py)
    assert built == exported - {"Explainer", "GradientCAM", "LayerExplainer"} - vit_only
    assert callback.explainers["expected_gradcam"].batches == 2 and callback.explainers["expected_gradcam"].draws == 16
    assert callback.explainers["gradcam_pp"].eps == 1e-12
    assert type(callback.explainers["jitter_cam"].base).__name__ == "GradCAM"
    assert type(callback.explainers["gradcam_mass_preserving"].upsample).__name__ == "MassPreservingUpsampler"
    assert callback.explainers["hyper_expected_gradcam"].draws == 8


def test_explainer_and_metric_sets_compose_from_separate_files(tmp_path: Path) -> None:
    """`lit-xai test -c quickstart.yaml -c all_explainers.yaml -c all_metrics.yaml`: the `xai` group takes the
    explainers of one file and the metrics of another (a callback list in `trainer.callbacks` would keep one)."""
    from lit_xai.callbacks import ExplainerCallback

    configs = [f"-c={ROOT / 'configs' / name}" for name in ("quickstart.yaml", "all_explainers.yaml", "all_metrics.yaml")]
    cli = build_cli([
        "test", *configs, f"--trainer.logger.init_args.save_dir={tmp_path}", "--trainer.limit_test_batches=1",
        "--xai.limit_test_samples=4", "--xai.baseline_bank_size=4", "--xai.log_images=0", "--trainer.enable_progress_bar=false",
    ])
    (callback,) = [c for c in cli.trainer.callbacks if isinstance(c, ExplainerCallback)]
    assert callback.probe_size == 128  # quickstart's, kept under the other two files
    results = list(csv.DictReader((tmp_path / "quickstart" / "version_0" / "xai_results.csv").open()))
    assert [row["explainer"] for row in results] == list(callback.explainers)  # every explainer of all_explainers.yaml
    assert len(results) > 40
    metrics = [
        "insertion", "deletion", "insertion_deletion", "average_drop", "increase_in_confidence", "average_drop_in_deletion",
        "road_morf", "road_lerf", "road_combined", "infidelity", "max_sensitivity", "faithfulness_correlation", "sparseness",
        "complexity", "pixel_flipping", "selectivity", "sensitivity_n", "irof", "region_perturbation", "faithfulness_estimate", "monotonicity", "monotonicity_correlation",
        "effective_complexity", "completeness", "non_sensitivity", "input_invariance", "avg_sensitivity", "local_lipschitz_estimate", "continuity",
        "relative_input_stability", "relative_output_stability", "relative_representation_stability", "random_logit",
        "efficient_mprt", "smooth_mprt", "focus", "sufficiency", "consistency",
    ]
    assert [column for column in results[0] if not column.endswith(("_se", "_skipped"))] == ["explainer", *metrics, "seconds_per_sample"]
    for row in results:  # each explainer scored by each metric on the same 4 samples: values in their ranges
        values = {m: float(row[m]) for m in metrics}
        assert all(0 <= values[m] <= 1 for m in ("insertion", "deletion", "average_drop", "increase_in_confidence")), row
        assert values["insertion_deletion"] == pytest.approx(values["insertion"] - values["deletion"], abs=1e-6), row


def test_xai_group_is_optional_and_not_given_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lit_xai.callbacks import ExplainerCallback, ProcessGroupTeardown

    quickstart = str(ROOT / "configs" / "quickstart.yaml")
    plain = build_cli(["-c", quickstart, "--xai=null"], run=False)  # no `xai`: no ExplainerCallback
    assert not [c for c in plain.trainer.callbacks if isinstance(c, ExplainerCallback)]
    assert [type(c) for c in plain.trainer.callbacks].count(ProcessGroupTeardown) == 1
    by_hand = tmp_path / "by_hand.yaml"  # the callback attached by hand in trainer.callbacks keeps working
    by_hand.write_text("trainer:\n  callbacks:\n    - class_path: lit_xai.callbacks.ExplainerCallback\n      init_args: {probe_size: 7}\n")
    (callback,) = [c for c in build_cli(["-c", quickstart, "--xai=null", "-c", str(by_hand)], run=False).trainer.callbacks if isinstance(c, ExplainerCallback)]
    assert callback.probe_size == 7
    with pytest.raises(SystemExit) as exit_info:
        build_cli(["-c", quickstart, "-c", str(by_hand)], run=False)
    assert exit_info.value.code == 2
    assert "an ExplainerCallback is given twice: in the `xai` group and in `trainer.callbacks`" in capsys.readouterr().err
