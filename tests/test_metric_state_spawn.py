"""Metrics held by a LightningModule under CPU `ddp_spawn`: their states reach the workers in shared memory, so
every lit-xai metric replaces its states instead of adding in place; 2 processes give what 1 gives."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from lit_xai.metrics import AverageDrop, Insertion, NASAScore, ROAD, ModelRandomizationSimilarity, WeakLocalization
from lit_xai.explainers import GradCAM
from tests.helpers import TinyData


def state_values(devices: int) -> dict[str, float]:
    from tests.fault_helpers import MetricStateModule

    pl.seed_everything(0)
    run = pl.Trainer(
        accelerator="cpu", devices=devices, strategy="ddp_spawn" if devices > 1 else "auto", logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    run.validate(MetricStateModule(), TinyData(batch_size=5), verbose=False)
    return {k: v.item() for k, v in run.callback_metrics.items() if k.startswith("state/")}


@pytest.mark.xdist_group("ddp")  # spawns DDP processes: one at a time, on one xdist worker (Makefile: --dist loadgroup)
def test_module_metrics_count_every_image_once_on_two_processes() -> None:
    single, double = state_values(1), state_values(2)
    assert len(single) == 4 * 5 + 1 and set(double) == set(single)
    for name in ("insertion", "deletion", "ad", "localisation"):
        assert single[f"state/{name}/count"] == 20  # the 20 validation images, each once
    for key, value in single.items():
        assert double[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key


def test_updates_replace_the_state_tensors() -> None:
    """The tensor objects that held the states before an update are left untouched by it (a shared
    memory block another process reads is never written)."""
    torch.manual_seed(0)
    from tests.conftest import SmallNet

    model = SmallNet().eval()
    inputs = torch.randn(3, 3, 8, 8)
    saliency = inputs.abs().sum(1)
    masks = torch.zeros(3, 8, 8, dtype=torch.bool)
    masks[:, 2:6, 2:6] = True
    cases = [
        (Insertion(steps=4), (model, inputs, saliency)),
        (AverageDrop(), (model, inputs, saliency)),
        (ROAD(percentiles=(0.5,)), (model, inputs, saliency)),
        (WeakLocalization(), (saliency, masks)),
        (NASAScore(), (torch.tensor([1.0, 2.0]), torch.tensor([2.0, 2.0]))),
        (ModelRandomizationSimilarity(GradCAM(), layers=["head.3", "features.3"]), (model, inputs)),
    ]
    for metric, arguments in cases:
        before = {name: getattr(metric, name) for name in metric._defaults}
        frozen = {name: value.clone() for name, value in before.items()}
        metric.update(*arguments)
        for name, tensor in before.items():
            assert torch.equal(tensor, frozen[name]), f"{type(metric).__name__}.{name} changed in place"
            assert getattr(metric, name) is not tensor or getattr(metric, name).numel() == 0, name
