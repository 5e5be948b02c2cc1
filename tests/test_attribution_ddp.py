"""Issue 25's stochastic methods in the callback: two processes (ddp_fork, gloo, CPU) log what one logs."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest

from lit_xai.callbacks import ExplainerCallback
from lit_xai.explainers import GradientShap, KernelShap, Lime, NoiseTunnel, Saliency, ShapleyValueSampling
from lit_xai.metrics import Deletion
from tests.helpers import TinyData, TinyModule


def validate(devices: int) -> dict[str, float]:
    pl.seed_everything(0)
    callback = ExplainerCallback(
        explainers={
            "gradient_shap": GradientShap(samples=4, stdevs=0.1),  # baselines from the datamodule's bank
            "shapley": ShapleyValueSampling(patch_size=4, samples=2),
            "kernel_shap": KernelShap(patch_size=2, samples=12),
            "lime": Lime(patch_size=2, samples=12),
            "noise_tunnel": NoiseTunnel(Saliency(), samples=3),
        },
        metrics=[Deletion(steps=4)],
        probe_size=8,
        log_images=0,
        print_table=False,
        baseline_bank_size=4,
    )
    run = pl.Trainer(
        accelerator="cpu", devices=devices, strategy="ddp_fork" if devices > 1 else "auto", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[callback],
    )
    run.validate(TinyModule(), TinyData(), verbose=False)
    return {k: v.item() for k, v in run.callback_metrics.items() if k.startswith("xai/") and k.endswith("/deletion")}


@pytest.mark.xdist_group("ddp")  # spawns DDP processes: one at a time, on one xdist worker (Makefile: --dist loadgroup)
def test_two_processes_equal_one() -> None:
    single, double = validate(1), validate(2)
    assert set(single) == {f"xai/{name}/deletion" for name in ("gradient_shap", "shapley", "kernel_shap", "lime", "noise_tunnel")}
    for key, value in single.items():
        assert double[key] == pytest.approx(value, abs=1e-6), key
