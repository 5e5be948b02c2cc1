"""The evaluation study (benchmarks/study.py): its paired verdicts by hand, and the whole pipeline in --quick
mode (lit-xai fit / test of every study model, scores read back, docs and figures written under tmp_path)."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_study():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("study", ROOT / "benchmarks" / "study.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["study"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_paired_verdicts_by_hand() -> None:
    study = load_study()
    claim = study.Claim("k", "s", "src", "g", "insertion-deletion", "a", "b", True, (None, None), False, "p")
    scores = {
        ("a", "insertion"): [0.9, 0.8, 0.7, 0.9], ("a", "deletion"): [0.1, 0.2, 0.1, 0.1],
        ("b", "insertion"): [0.6, 0.6, 0.6, 0.7], ("b", "deletion"): [0.2, 0.2, 0.2, 0.3],
    }
    verdict = study.judge(claim, scores)
    # per image: a's Ins - Del = 0.8, 0.6, 0.6, 0.8; b's = 0.4, 0.4, 0.4, 0.4; differences 0.4, 0.2, 0.2, 0.4
    assert verdict.ours[0] == pytest.approx(0.7) and verdict.baseline == pytest.approx((0.4, 0.0))
    assert verdict.difference[0] == pytest.approx(0.3)
    assert verdict.difference[1] == pytest.approx(math.sqrt(4 * 0.01 / 3 / 4))  # sample std 0.1155 / sqrt(4)
    assert verdict.images == 4 and verdict.holds == "holds"
    lower = study.Claim("k", "s", "src", "g", "insertion-deletion", "a", "b", False, (None, None), False, "p")
    assert study.judge(lower, scores).holds == "does not hold"
    noisy = {("a", "deletion"): [0.1, 0.5, 0.2, 0.6], ("b", "deletion"): [0.3, 0.2, 0.4, 0.4]}  # differences -0.2, 0.3, -0.2, 0.2
    assert study.judge(study.Claim("k", "s", "src", "g", "deletion", "a", "b", False, (None, None), False, "p"), noisy).holds.startswith("not resolved")
    assert study.judge(claim, {}) is None  # a method that did not run gives no row, not a made-up one
    # an image a ratio metric left out (nan: its score was <= 0) drops out of the pair on both sides
    ratio = study.Claim("k", "s", "src", "g", "average_drop", "a", "b", False, (None, None), False, "p")
    marked = {("a", "average_drop"): [0.1, math.nan, 0.3, 0.2], ("b", "average_drop"): [0.4, math.nan, 0.5, 0.6]}
    verdict = study.judge(ratio, marked)  # differences -0.3, -0.2, -0.4: mean -0.3, sample std 0.1
    assert verdict.images == 3 and verdict.ours[0] == pytest.approx(0.2) and verdict.baseline[0] == pytest.approx(0.5)
    assert verdict.difference == pytest.approx((-0.3, 0.1 / math.sqrt(3))) and verdict.holds == "holds"
    assert study.judge(ratio, {k: [math.nan] * 2 for k in marked}) is None
    assert study.mean_se([0.1, math.nan, 0.3]) == pytest.approx((0.2, 0.1)) and all(map(math.isnan, study.mean_se([math.nan])))


def test_pooled_verdicts_over_models_by_hand() -> None:
    study = load_study()
    claim = study.Claim("k", "s", "src", "g", "deletion", "a", "b", False, (None, None), False, "p")
    models = [  # per-model paired differences a - b: -0.1 on every image, -0.2 on every image, 0.0 on every image
        {("a", "deletion"): [0.1, 0.2, 0.3], ("b", "deletion"): [0.2, 0.3, 0.4]},
        {("a", "deletion"): [0.1, 0.2, 0.3], ("b", "deletion"): [0.3, 0.4, 0.5]},
        {("a", "deletion"): [0.4, 0.2, 0.3], ("b", "deletion"): [0.3, 0.3, 0.3]},
    ]
    pooled = study.judge_models(claim, models)
    assert [study.verdict_word(v.holds) for v in pooled.per_model] == ["holds", "holds", "not resolved"]
    assert pooled.changes and pooled.models == 3 and pooled.images == 3
    # per-model mean differences -0.1, -0.2, 0.0: mean -0.1, sd 0.1, se 0.1 / sqrt(3); t(0.975, 2) = 4.303
    assert pooled.difference[0] == pytest.approx(-0.1) and pooled.difference[1] == pytest.approx(0.1 / math.sqrt(3))
    assert pooled.critical == pytest.approx(4.302652729911275)
    assert pooled.holds.startswith("not resolved")  # 0.1 < 4.30 x 0.0577: one model disagrees, so the pooled claim is open
    # -0.1, -0.2, -0.1: every model says "holds", yet the pooled mean 0.133 is within 4.30 x 0.0333 = 0.143 of zero
    consistent = study.judge_models(claim, models[:2] + [models[0]])
    assert consistent.difference == pytest.approx((-0.4 / 3, 0.1 / 3)) and not consistent.changes
    assert consistent.holds.startswith("not resolved (within 4.3 SE)")
    single = study.judge_models(claim, models[:1])
    assert single.models == 1 and single.critical == 2.0 and single.holds == "holds"
    assert study.judge_models(claim, [{}]) is None


def test_shortcut_claims_by_hand() -> None:
    study = load_study()
    rho, agree, disagree = study.spearman_permutation([1.0, 2.0, 3.0, 4.0], [0.1, 0.2, 0.3, 0.9])
    assert rho == pytest.approx(1.0) and agree == pytest.approx(1 / 24) and disagree == pytest.approx(1.0)
    reliance = {"shortcut_0": [0.0, 0.01], "shortcut_50": [0.4, 0.5], "shortcut_100": [0.95, 0.99]}
    scores, interventions = {}, {}
    for group, rates in reliance.items():
        scores[group], interventions[group] = [], []
        for rate in rates:
            scores[group].append({("tracker", "decoy_mass"): [rate * 0.5 + 0.01 * k for k in range(4)], ("flat", "decoy_mass"): [0.02] * 4})
            interventions[group].append({"decoy_changed": rate, "decoy_followed": rate, "shape_changed": 1 - rate, "shape_followed": 1 - rate, "test_acc": 0.5})
    lines, counts = study.shortcut_section(scores, interventions)
    text = "\n".join(lines)
    # tracker: mass 0.5 x reliance + image offsets; per model +0.475 and +0.49 on every image (zero spread within a model)
    assert "`tracker` puts more of its mass on the decoy for the 100 % model than for the 0 % model" in text
    tracker_rows = [line for line in lines if line.startswith("| `tracker`")]
    assert tracker_rows[0].endswith("| **holds** |") and "holds / holds" in tracker_rows[0]
    # 6 models ordered exactly alike: Spearman 1, permutation p = 1 / 720
    assert "Spearman 1.000, p 0.00139" in tracker_rows[1] and tracker_rows[1].endswith("| **holds** |")
    flat_rows = [line for line in lines if line.startswith("| `flat`")]
    assert "not resolved" in flat_rows[0] and "a constant column" in flat_rows[1]
    assert counts == {"holds": 2, "not resolved": 2, "does not hold": 0}


def quick_study(tmp_path: Path, *options: str) -> str:
    docs = tmp_path / "docs"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "study.py"), "--quick", *options, "--out", str(tmp_path / "runs"), "--docs", str(docs), "--threads", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=1100,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return (docs / "study.md").read_text()


@pytest.mark.timeout(1200)
def test_quick_study_runs_every_model_and_writes_the_report(tmp_path: Path) -> None:
    report = quick_study(tmp_path, "--seeds", "1", "--only", "cams", "hyper", "spectral", "cmapss")
    study = load_study()
    claims = report.split("## Claims")[1].split("## ")[0]
    rows = [line for line in claims.splitlines() if line.startswith("| ") and "**" in line]
    assert len(rows) == len(study.CLAIMS)  # one verdict per claim: every method the claims need ran
    assert all(any(v in row for v in ("**holds**", "**does not hold**", "**not resolved")) for row in rows)
    assert all("| 1 x " in row for row in rows)  # one model each (--seeds 1)
    rankings = report.split("## Rankings with ties")[1].split("\n## ")[0]
    assert all(f"**{group}**" in rankings for group in ("cams", "spectral")) and "Krippendorff's alpha |" in rankings
    assert "reproduce exactly only on the same CPU kind" in report
    assert {p.name for p in (tmp_path / "docs").glob("*.png")} == {"study_cams.png", "study_hyper.png", "study_spectral.png", "study_cmapss.png"}
    assert "Run time:" in report and "val acc" in report and "test mae" in report


@pytest.mark.timeout(1200)
def test_quick_shortcut_study_trains_two_models_per_setting_and_pools_them(tmp_path: Path) -> None:
    report = quick_study(tmp_path, "--seeds", "2", "--only", "shortcut")
    shortcut = report.split("## The shortcut benchmark")[1].split("\n## ")[0]
    models = [line for line in shortcut.splitlines() if line.startswith("| ") and line.split("|")[1].strip() in ("0%", "50%", "100%")]
    assert [line.split("|")[1:3] for line in models] == [[f" {s} ", f" {m} "] for s in ("0%", "50%", "100%") for m in (0, 1)]
    claims = [line for line in shortcut.splitlines() if line.startswith("| `") and "**" in line]
    assert len(claims) == 2 * 5  # 2 claims x 5 explainers, each with a verdict
    assert all(" / " in line for line in claims[::2])  # per-model verdicts of the 2 models
    assert "orders the 6 models" in claims[1]
    assert "**shortcut_100**" in report.split("## Rankings with ties")[1]


def test_real_data_options_compose_the_evaluation_configs(tmp_path: Path) -> None:
    """--imagenet / --food101 / --cmapss point the same claim sets at real folders (no download here: the
    commands are checked, and the configs they name exist and carry the keys they override)."""
    import argparse

    study = load_study()
    args = argparse.Namespace(quick=False, imagenet=Path("/data/imagenet"), food101=Path("/data/food"), food101_ckpt=Path("/ckpt/food.ckpt"),
                              cmapss=Path("/data/cmapss"), limit=200)
    runs = {run.group: run for run in study.runs(args, tmp_path)}
    assert set(runs) == {"cams", "hyper", "spectral", "cmapss", "shortcut_0", "shortcut_50", "shortcut_100"}
    assert [runs[g].decoy for g in ("shortcut_0", "shortcut_50", "shortcut_100")] == [0.0, 0.5, 1.0]
    assert "--data.init_args.decoy=0.5" in runs["shortcut_50"].fit_overrides and runs["shortcut_50"].configs[1] == "configs/study/xai_shortcut.yaml"
    assert runs["cams"].configs == ["configs/imagenet_resnet50_eval.yaml", "configs/study/xai_cams.yaml"] and runs["cams"].fit is None
    assert "--data.init_args.data_dir=/data/imagenet" in runs["cams"].overrides and "--xai.limit_test_samples=200" in runs["cams"].overrides
    assert runs["hyper"].fit is None and "--xai.limit_test_samples=100" in runs["hyper"].overrides
    assert "--ckpt_path=/ckpt/food.ckpt" in runs["spectral"].overrides and runs["spectral"].configs[0] == "configs/food101_resnet50_eval.yaml"
    assert "--data.init_args.data_dir=/data/cmapss" in runs["cmapss"].fit_overrides
    for run in (run for run in runs.values() if run.decoy is None):  # the shortcut benchmark is synthetic only
        for config in run.configs:
            text = (ROOT / config).read_text()
            assert "data_dir:" in text or "xai:" in text, config
