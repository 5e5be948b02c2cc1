"""The quantus-family metrics in ExplainerCallback: two processes (ddp_fork, gloo, CPU) log what one
logs; the metrics that re-run the explainer get each explainer; yaml builds them. Focus, Sufficiency and
Consistency are left out of the equality: they compare images of a batch, which the processes split
differently."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch

from lit_xai.callbacks import ExplainerCallback
from lit_xai.explainers import GradCAM, InputXGradient
from lit_xai.metrics import (
    IROF,
    AvgSensitivity,
    Completeness,
    Continuity,
    EffectiveComplexity,
    EfficientMPRT,
    FaithfulnessEstimate,
    InputInvariance,
    LocalLipschitzEstimate,
    Monotonicity,
    MonotonicityCorrelation,
    NonSensitivity,
    PixelFlipping,
    RandomLogit,
    RegionPerturbation,
    RelativeInputStability,
    RelativeOutputStability,
    RelativeRepresentationStability,
    Selectivity,
    SensitivityN,
    SmoothMPRT,
)
from tests.helpers import TinyData, TinyModule


class ConfidentModule(TinyModule):
    def __init__(self) -> None:
        super().__init__()
        with torch.no_grad():
            self.net.head[3].weight.mul_(40)


def metrics() -> dict[str, object]:
    return {
        "pixel_flipping": PixelFlipping(features_in_step=8),
        "selectivity": Selectivity(patch_size=4),
        "faithfulness_estimate": FaithfulnessEstimate(features_in_step=8),
        "sensitivity_n": SensitivityN(steps=2, nr_samples=3),
        "irof": IROF(features="patches", patch_size=4),
        "region_perturbation": RegionPerturbation(patch_size=4, order="random"),
        "input_invariance": InputInvariance(atol=1e-3),
        "monotonicity": Monotonicity(features_in_step=16),
        "monotonicity_correlation": MonotonicityCorrelation(features_in_step=16, nr_samples=3),
        "effective_complexity": EffectiveComplexity(),
        "completeness": Completeness(rtol=0.5),
        "non_sensitivity": NonSensitivity(features_in_step=8, eps=1e-3),
        "avg_sensitivity": AvgSensitivity(nr_samples=2),
        "local_lipschitz_estimate": LocalLipschitzEstimate(nr_samples=2),
        "continuity": Continuity(nr_steps=3),
        "relative_input_stability": RelativeInputStability(nr_samples=2),
        "relative_output_stability": RelativeOutputStability(nr_samples=2),
        "relative_representation_stability": RelativeRepresentationStability(nr_samples=2),
        "random_logit": RandomLogit(),
        "efficient_mprt": EfficientMPRT(),
        "smooth_mprt": SmoothMPRT(nr_samples=2),
    }


def validate(devices: int) -> dict[str, float]:
    pl.seed_everything(0)
    callback = ExplainerCallback(
        explainers={"gradcam": GradCAM(), "input_x_gradient": InputXGradient()},
        metrics=metrics(), probe_size=16, log_images=0, print_table=False,
    )
    run = pl.Trainer(
        accelerator="cpu", devices=devices, strategy="ddp_fork" if devices > 1 else "auto", logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[callback],
    )
    run.validate(ConfidentModule(), TinyData(), verbose=False)
    if devices == 1:
        assert not callback.errors, callback.errors
    return {k: v.item() for k, v in run.callback_metrics.items() if k.startswith("xai/") and not k.endswith("seconds_per_sample")}


@pytest.mark.xdist_group("ddp")  # spawns DDP processes: one at a time, on one xdist worker (Makefile: --dist loadgroup)
def test_two_processes_equal_one() -> None:
    single, double = validate(1), validate(2)
    names = set(metrics())
    assert {f"xai/{e}/{m}" for e in ("gradcam", "input_x_gradient") for m in names} <= set(single)
    assert set(double) == set(single)
    for key, value in single.items():
        assert double[key] == pytest.approx(value, rel=1e-4, abs=1e-7), key
    for key, value in single.items():
        if not key.endswith("_skipped"):
            assert not math.isnan(value), key  # means, not NaN
    assert single["xai/input_x_gradient/avg_sensitivity"] > 0 and single["xai/gradcam/effective_complexity"] > 1


def test_metrics_that_re_run_the_explainer_are_given_none() -> None:
    for metric in (AvgSensitivity, LocalLipschitzEstimate, Continuity, RelativeInputStability, RandomLogit, EfficientMPRT, InputInvariance):
        with pytest.raises(ValueError, match="leave it unset"):
            ExplainerCallback(metrics=[metric(explainer=GradCAM())])


def test_all_metrics_yaml_builds_every_metric() -> None:
    from pathlib import Path

    import lit_xai.metrics as module
    from lit_xai.cli import build_cli

    root = Path(__file__).resolve().parents[2]
    cli = build_cli(["-c", str(root / "configs" / "quickstart.yaml"), "-c", str(root / "configs" / "all_metrics.yaml")], run=False)
    callback = next(c for c in cli.trainer.callbacks if isinstance(c, ExplainerCallback))
    built = {type(m).__name__ for m in callback.metric_templates.values()}
    shapes = (root / "configs" / "shapes_vit_tiny.yaml").read_text()
    localisation = {"AttributionLocalisation", "TopKIntersection", "RelevanceRankAccuracy", "RelevanceMassAccuracy", "LocalisationAUC"}
    assert all(f"lit_xai.metrics.{name}" in shapes for name in localisation)
    new = {
        "PixelFlipping", "Selectivity", "FaithfulnessEstimate", "Monotonicity", "MonotonicityCorrelation", "EffectiveComplexity",
        "Completeness", "NonSensitivity", "SensitivityN", "IROF", "RegionPerturbation", "InputInvariance", "AvgSensitivity", "LocalLipschitzEstimate", "Continuity", "RelativeInputStability",
        "RelativeOutputStability", "RelativeRepresentationStability", "RandomLogit", "EfficientMPRT", "SmoothMPRT", "Focus",
        "Sufficiency", "Consistency",
    }
    assert new <= built and all(hasattr(module, name) for name in new | localisation)


def test_mask_metrics_read_the_masks_of_annotated_batches() -> None:
    """The mask-based quantus metrics run in the callback on annotated shapes batches, equal to a direct update."""
    from lit_xai.datamodules import ShapesDataModule
    from lit_xai.explainers import RandomSaliency
    from lit_xai.metrics import AttributionLocalisation, LocalisationAUC, RelevanceMassAccuracy, RelevanceRankAccuracy, TopKIntersection
    from lit_xai.models import ImageClassifier

    data = ShapesDataModule(train_size=16, val_size=8, test_size=8, batch_size=4, return_annotations=True)
    model = ImageClassifier(num_classes=data.num_classes, input_shape=data.input_shape, width=8)
    kinds = (AttributionLocalisation, TopKIntersection, RelevanceRankAccuracy, RelevanceMassAccuracy, LocalisationAUC)
    callback = ExplainerCallback(
        {"random": RandomSaliency()}, metrics=[k(k=20) if k is TopKIntersection else k() for k in kinds], probe_size=8, log_images=0, print_table=False,
    )
    run = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[callback])
    run.test(model, data, verbose=False)
    assert not callback.errors
    dataset = data.dataset("test")
    maps = RandomSaliency()(model.eval(), torch.stack([dataset[i][0] for i in range(8)]))
    masks = torch.stack([dataset.mask(i) for i in range(8)])
    names = ("attribution_localisation", "top_k_intersection", "relevance_rank_accuracy", "relevance_mass_accuracy", "localisation_auc")
    for kind, name in zip(kinds, names):
        expected = kind(k=20) if kind is TopKIntersection else kind()
        expected.update(maps, masks)
        assert callback.results["test"]["random"][name] == pytest.approx(expected.compute().item(), abs=1e-6), name
