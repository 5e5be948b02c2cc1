"""On a CUDA device every registered explainer and every faithfulness metric gives the CPU's numbers, and the
callback runs all of them inside a GPU training run, in float32 and under bf16 autocast. Skipped without CUDA
(CI has none); run them on a GPU machine with `python -m pytest tests/test_cuda.py`."""

from __future__ import annotations

from collections.abc import Iterator

import lightning.pytorch as pl
import pytest
import torch

from lit_xai.callbacks import ExplainerCallback
from lit_xai.explainers import BankBaselines
from lit_xai.explainers.registry import default_explainers
from lit_xai.metrics import (
    ROAD,
    AverageDrop,
    AverageDropInDeletion,
    Complexity,
    Deletion,
    FaithfulnessCorrelation,
    IncreaseInConfidence,
    Infidelity,
    Insertion,
    InsertionDeletion,
    ROADCombined,
    Sparseness,
)
from tests.conftest import SmallNet
from tests.helpers import TinyData, TinyModule

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

# The CPU and the GPU sum in different orders (and cuDNN picks its own convolution algorithms): maps agree to
# float32 rounding carried through a forward and a backward pass. TF32 is switched off for the comparison.
RTOL, ATOL_OF_MAX = 1e-3, 1e-3


@pytest.fixture(autouse=True)
def full_float32() -> Iterator[None]:
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def model_and_inputs() -> tuple[SmallNet, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = SmallNet().eval()
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(3, 3, 32, 32, generator=generator)
    bank = torch.randn(6, 3, 32, 32, generator=generator)
    return model, inputs, torch.tensor([0, 2, 1]), bank


EXPLAINERS = sorted(default_explainers(SmallNet()))
# Gaussian noise the size of the inputs is drawn on the inputs' device (lit_xai.explainers.seeding): on CUDA
# it is another draw of the same noise, so these maps are compared with the spread between two CPU seeds.
DEVICE_NOISE = {"smooth_gradcam_pp", "smoothgrad", "smoothgrad_sq", "vargrad", "spectral_lens", "arglens"}


@pytest.mark.parametrize("name", EXPLAINERS)
def test_every_registered_explainer_gives_the_cpu_map_on_cuda(name: str) -> None:
    model, inputs, targets, bank = model_and_inputs()

    def explain(device: str, seed_offset: int = 0) -> torch.Tensor:
        explainer = default_explainers(model)[name]
        if getattr(explainer, "baselines", False) is None:
            explainer.baselines = BankBaselines(bank)  # as the callback fills it (a CPU bank)
        if seed_offset:
            explainer.seed += seed_offset
        return explainer(model.to(device), inputs.to(device), targets.to(device))

    cpu, cuda = explain("cpu"), explain("cuda")
    assert cuda.device.type == "cuda" and cuda.dtype == torch.float32 and cuda.shape == cpu.shape
    scale = float(cpu.abs().max())
    assert scale > 0, f"{name} gave an all-zero map on the CPU"
    if name not in DEVICE_NOISE:
        torch.testing.assert_close(cuda.cpu(), cpu, rtol=RTOL, atol=ATOL_OF_MAX * scale)
        return
    # reproducible on the device: the same draws; CUDA's atomic adds (index_add_) may change the order of the
    # sums, which moved maps by up to 1.5e-6 relative on an H200 (exact equality failed there)
    torch.testing.assert_close(explain("cuda"), cuda, rtol=1e-5, atol=1e-6 * scale)
    spread = float((explain("cpu", seed_offset=1) - cpu).norm())
    assert 0 < float((cuda.cpu() - cpu).norm()) <= 1.5 * spread


METRICS = {
    "insertion": lambda: Insertion(steps=8),
    "deletion": lambda: Deletion(steps=8),
    "insertion_deletion": lambda: InsertionDeletion(steps=8),
    "average_drop": AverageDrop,
    "increase_in_confidence": IncreaseInConfidence,
    "average_drop_in_deletion": AverageDropInDeletion,
    "road": ROAD,
    "road_combined": ROADCombined,
    "infidelity": lambda: Infidelity(samples=8),
    "faithfulness_correlation": lambda: FaithfulnessCorrelation(samples=8),
    "sparseness": Sparseness,
    "complexity": Complexity,
}


@pytest.mark.parametrize("name", sorted(METRICS))
def test_every_metric_gives_the_cpu_value_on_cuda(name: str) -> None:
    model, inputs, targets, _ = model_and_inputs()
    saliency = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(2))

    def value(device: str) -> float:
        metric = METRICS[name]().to(device)
        metric.update(model.to(device), inputs.to(device), saliency.to(device), targets.to(device))
        return float(metric.compute())

    cpu, cuda = value("cpu"), value("cuda")
    assert cuda == pytest.approx(cpu, rel=1e-3, abs=1e-4)


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_callback_runs_every_registered_explainer_in_a_gpu_training_run(precision: str, tmp_path) -> None:
    pl.seed_everything(0)
    callback = ExplainerCallback(metrics=[Insertion(steps=8), Deletion(steps=8)], probe_size=8, log_images=0, print_table=False)
    trainer = pl.Trainer(
        callbacks=[callback], max_epochs=1, accelerator="gpu", devices=1, precision=precision, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        limit_train_batches=2, default_root_dir=tmp_path,
    )
    trainer.fit(TinyModule(), TinyData())
    assert callback.errors == {}
    results = callback.results["validate"]
    assert set(results) == set(default_explainers(TinyModule()))
    for name, row in results.items():
        assert 0.0 <= row["insertion"] <= 1.0 and 0.0 <= row["deletion"] <= 1.0, name
