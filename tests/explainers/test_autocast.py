"""Mixed precision: explainers and metrics under torch.autocast accumulate in float32 and stay close to
float32 results; the callback runs them under the trainer's autocast (bf16-mixed, 16-mixed)."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from lit_xai.callbacks import ExplainerCallback
from lit_xai.explainers import AblationCAM, BankBaselines, ExpectedGradCAM, GradCAM, GradCAMPlusPlus, ScoreCAM, SmoothGradCAMPlusPlus
from lit_xai.explainers.registry import default_explainers
from lit_xai.metrics import AverageDrop, Deletion, Insertion
from tests.conftest import SmallNet
from tests.helpers import TinyData, TinyModule

BANK = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
# bfloat16 keeps 8 significant bits (relative step 2^-8 = 0.4 %); through two conv layers and a
# gradient pass the maps stay within 5 % of their float32 maximum, metric AUCs within 0.02. Ablation-CAM's
# weights (y - y_k) / y subtract two nearly equal scores, so its rounding error is larger: 10 %.
MAP_TOLERANCE, ABLATION_TOLERANCE, AUC_TOLERANCE = 0.05, 0.10, 0.02


@pytest.mark.parametrize(
    "explainer, tolerance",
    [
        (GradCAM(), MAP_TOLERANCE), (GradCAMPlusPlus(), MAP_TOLERANCE), (ScoreCAM(), MAP_TOLERANCE),
        (AblationCAM(), ABLATION_TOLERANCE), (SmoothGradCAMPlusPlus(samples=2, noise_level=0.0), MAP_TOLERANCE),
        (ExpectedGradCAM(baselines=BANK, draws=4), MAP_TOLERANCE),
    ],
    ids=["gradcam", "gradcam_pp", "scorecam", "ablationcam", "smooth_gradcam_pp", "expected_gradcam"],
)
def test_explainers_under_bf16_autocast_are_float32_and_close(small_net, explainer, tolerance: float) -> None:
    torch.manual_seed(0)
    inputs = torch.randn(3, 3, 8, 8)
    reference = explainer(small_net, inputs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = explainer(small_net, inputs)
    assert mixed.dtype == torch.float32
    scale = float(reference.abs().max())
    assert scale > 0
    assert float((mixed - reference).abs().max()) <= tolerance * scale


@pytest.mark.parametrize("name", sorted(default_explainers(SmallNet())))
def test_every_registered_explainer_runs_under_bf16_autocast(name: str) -> None:
    """Under the trainer's autocast every method returns a finite float32 map (Occlusion once failed here:
    its bfloat16 score drops were added into a float32 sum)."""
    torch.manual_seed(0)
    model, inputs = SmallNet().eval(), torch.randn(2, 3, 16, 16)
    explainer = default_explainers(model)[name]
    if getattr(explainer, "baselines", False) is None:
        explainer.baselines = BankBaselines(torch.rand(3, 3, 16, 16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        saliency = explainer(model, inputs, torch.tensor([0, 1]))
    assert saliency.dtype == torch.float32 and saliency.shape[0] == 2
    assert bool(torch.isfinite(saliency).all())


def test_metrics_under_bf16_autocast_are_close(small_net) -> None:
    torch.manual_seed(1)
    inputs, saliency = torch.randn(4, 3, 8, 8), torch.rand(4, 8, 8)
    for make in (lambda: Insertion(steps=8), lambda: Deletion(steps=8), AverageDrop):
        reference, mixed = make(), make()
        reference.update(small_net.eval(), inputs, saliency)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed.update(small_net, inputs, saliency)
        assert float(mixed.compute()) == pytest.approx(float(reference.compute()), abs=AUC_TOLERANCE)


class AutocastRecorder(GradCAM):
    def __init__(self) -> None:
        super().__init__()
        self.autocast: list[bool] = []

    def __call__(self, model, inputs, targets=None):  # type: ignore[no-untyped-def]
        self.autocast.append(torch.is_autocast_enabled("cpu"))
        return super().__call__(model, inputs, targets)


@pytest.mark.parametrize("precision, expected", [("bf16-mixed", True), ("32-true", False)])
def test_callback_runs_explainers_under_the_trainers_precision(precision: str, expected: bool) -> None:
    pl.seed_everything(0)
    recorder = AutocastRecorder()
    callback = ExplainerCallback(explainers={"gradcam": recorder}, metrics=[Deletion(steps=4)], probe_size=8, print_table=False)
    trainer = pl.Trainer(
        callbacks=[callback], max_epochs=1, accelerator="cpu", devices=1, precision=precision, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, limit_train_batches=2,
    )
    trainer.fit(TinyModule(), TinyData())
    assert recorder.autocast == [expected]
    assert 0.0 <= callback.results["validate"]["gradcam"]["deletion"] <= 1.0
