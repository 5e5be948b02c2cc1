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


def test_quick_study_runs_every_model_and_writes_the_report(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "study.py"), "--quick", "--out", str(tmp_path / "runs"), "--docs", str(docs), "--threads", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    report = (docs / "study.md").read_text()
    study = load_study()
    rows = [line for line in report.splitlines() if line.startswith("| ") and "**" in line]
    assert len(rows) == len(study.CLAIMS)  # one verdict per claim: every method the claims need ran
    assert all(any(v in row for v in ("**holds**", "**does not hold**", "**not resolved")) for row in rows)
    assert {p.name for p in docs.glob("*.png")} == {"study_cams.png", "study_hyper.png", "study_spectral.png", "study_cmapss.png"}
    assert "Run time:" in report and "validation acc" in report and "; test mae" in report


def test_real_data_options_compose_the_evaluation_configs(tmp_path: Path) -> None:
    """--imagenet / --food101 / --cmapss point the same claim sets at real folders (no download here: the
    commands are checked, and the configs they name exist and carry the keys they override)."""
    import argparse

    study = load_study()
    args = argparse.Namespace(quick=False, imagenet=Path("/data/imagenet"), food101=Path("/data/food"), food101_ckpt=Path("/ckpt/food.ckpt"),
                              cmapss=Path("/data/cmapss"), limit=200)
    runs = {run.group: run for run in study.runs(args, tmp_path)}
    assert set(runs) == {"cams", "hyper", "spectral", "cmapss"}
    assert runs["cams"].configs == ["configs/imagenet_resnet50_eval.yaml", "configs/study/xai_cams.yaml"] and runs["cams"].fit is None
    assert "--data.init_args.data_dir=/data/imagenet" in runs["cams"].overrides and "--xai.limit_test_samples=200" in runs["cams"].overrides
    assert runs["hyper"].fit is None and "--xai.limit_test_samples=100" in runs["hyper"].overrides
    assert "--ckpt_path=/ckpt/food.ckpt" in runs["spectral"].overrides and runs["spectral"].configs[0] == "configs/food101_resnet50_eval.yaml"
    assert "--data.init_args.data_dir=/data/cmapss" in runs["cmapss"].fit_overrides
    for run in runs.values():
        for config in run.configs:
            text = (ROOT / config).read_text()
            assert "data_dir:" in text or "xai:" in text, config
