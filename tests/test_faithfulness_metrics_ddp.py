"""The new faithfulness and robustness metrics in ExplainerCallback: two processes (ddp_fork, gloo, CPU)
log what one logs; MaxSensitivity gets each explainer."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from lit_xai.callbacks import ExplainerCallback
from lit_xai.explainers import GradCAM, RandomSaliency
from lit_xai.metrics import (
    ROAD,
    Complexity,
    FaithfulnessCorrelation,
    Infidelity,
    MaxSensitivity,
    ROADCombined,
    Sparseness,
)
from tests.helpers import TinyData, TinyModule

class ConfidentModule(TinyModule):
    """TinyModule with a 40x larger head: confident enough that perturbations move its probabilities."""

    def __init__(self) -> None:
        super().__init__()
        with torch.no_grad():
            self.net.head[3].weight.mul_(40)


NAMES = ("road", "road_combined", "infidelity", "faithfulness_correlation", "max_sensitivity", "sparseness", "complexity")


def validate(devices: int) -> dict[str, float]:
    pl.seed_everything(0)
    callback = ExplainerCallback(
        explainers={"gradcam": GradCAM(), "random": RandomSaliency()},
        metrics=[
            ROAD(percentiles=[20, 50, 80]),
            ROADCombined(percentiles=[30, 70]),
            Infidelity(samples=4, perturbation="square"),
            FaithfulnessCorrelation(subset=8, samples=6),
            MaxSensitivity(radius=0.1, samples=3),
            Sparseness(),
            Complexity(),
        ],
        probe_size=16,
        log_images=0,
        print_table=False,
    )
    run = pl.Trainer(
        accelerator="cpu", devices=devices, strategy="ddp_fork" if devices > 1 else "auto", logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[callback],
    )
    run.validate(ConfidentModule(), TinyData(), verbose=False)
    return {k: v.item() for k, v in run.callback_metrics.items() if k.startswith("xai/") and not k.endswith("seconds_per_sample")}


@pytest.mark.xdist_group("ddp")  # spawns DDP processes: one at a time, on one xdist worker (Makefile: --dist loadgroup)
def test_two_processes_equal_one() -> None:
    single, double = validate(1), validate(2)
    assert set(single) == {f"xai/{e}/{m}" for e in ("gradcam", "random") for m in NAMES}
    assert set(double) == set(single)
    for key, value in single.items():
        assert double[key] == pytest.approx(value, rel=1e-4, abs=1e-7), key
    # each explainer's MaxSensitivity re-ran that explainer: a new uniform random map differs by
    # sqrt(2 var / E[a^2]) = sqrt(1/2) of its norm, Grad-CAM's map moves little
    assert single["xai/random/max_sensitivity"] == pytest.approx(0.75, abs=0.05)
    assert single["xai/gradcam/max_sensitivity"] < 0.2
    assert single["xai/gradcam/infidelity"] > 1e-5 and single["xai/gradcam/road_combined"] > 0.01  # not trivial


def test_metrics_that_need_the_explainer_are_given_none() -> None:
    with pytest.raises(ValueError, match="leave it unset"):
        ExplainerCallback(metrics=[MaxSensitivity(GradCAM())])


def test_metrics_build_from_yaml() -> None:
    from pathlib import Path

    from lit_xai.cli import build_cli

    root = Path(__file__).resolve().parents[1]
    cli = build_cli(["-c", str(root / "configs" / "quickstart.yaml"), "-c", str(root / "configs" / "faithfulness_metrics.yaml")], run=False)
    callback = next(c for c in cli.trainer.callbacks if isinstance(c, ExplainerCallback))
    templates = callback.metric_templates
    assert [type(m).__name__ for m in templates.values()] == [
        "Insertion", "Deletion", "ROAD", "ROAD", "ROADCombined", "Infidelity", "MaxSensitivity",
        "FaithfulnessCorrelation", "Sparseness", "Complexity",
    ]
    assert templates["road_lerf"].order == "lerf" and templates["max_sensitivity"].explainer is None
    assert templates["infidelity"].perturbation == "square" and templates["faithfulness_correlation"].samples == 32
