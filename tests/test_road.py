"""ROAD and ROADCombined: parity with pytorch-grad-cam's imputation (noise off) and closed forms on a model
that reads one region."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lit_xai.metrics import ROAD, ROADCombined
from lit_xai.metrics.road import linear_imputation, removed_counts


class RegionSum(nn.Module):
    """Logits [s * sum of channel 0 over the region rows 4:6, cols 4:6, 0]: softmax gives sigmoid(s * sum)."""

    def __init__(self, scale: float = 0.5) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = x[:, 0, 4:6, 4:6].flatten(1).sum(1) * self.scale
        return torch.stack([total, torch.zeros_like(total)], dim=1)


def region_image() -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.zeros(1, 2, 10, 10)
    image[:, :, 4:6, 4:6] = 1.0
    saliency = torch.zeros(1, 10, 10)
    saliency[:, 4:6, 4:6] = 1.0
    return image, saliency


def test_removed_counts_follow_numpy_percentile_thresholds() -> None:
    # 100 positions: keep ceil(99 (100 - q) / 100), e.g. q = 10 keeps 90 (89.1 rounded up) and removes 10
    assert removed_counts(100, [10, 50, 90]) == [10, 50, 90]
    assert removed_counts(64, [10, 90]) == [64 - 57, 64 - 7]
    assert removed_counts(120, [12.5]) == [120 - math.ceil(119 * 0.875)]


def test_imputation_reproduces_a_linear_ramp_inside_and_keeps_the_rest() -> None:
    rows, cols = torch.meshgrid(torch.arange(9.0), torch.arange(7.0), indexing="ij")
    ramp = torch.stack([2 * rows - cols, rows + 3 * cols + 1]).unsqueeze(0)
    removed = torch.zeros(1, 9, 7, dtype=torch.bool)
    removed[:, 2:7, 1:6] = True
    removed[:, 4, 3] = False  # a kept pixel inside the hole
    filled = linear_imputation(ramp, removed, tolerance=1e-12)
    torch.testing.assert_close(filled, ramp.double(), atol=1e-9, rtol=0)
    # series: each removed step is the mean of its two neighbours, so a gap fills linearly
    series = torch.tensor([[[0.0, 9.0, 9.0, 9.0, 4.0, 5.0]]])
    gap = torch.tensor([[False, True, True, True, False, False]])
    torch.testing.assert_close(linear_imputation(series, gap, tolerance=1e-12), torch.arange(6.0).double().view(1, 1, 6))


@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_parity_with_pytorch_grad_cam_noise_off(order: str) -> None:
    from pytorch_grad_cam.metrics.perturbation_confidence import (
        PerturbationConfidenceMetric,
        RemoveLeastRelevantFirst,
        RemoveMostRelevantFirst,
    )
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 5)
    ).eval()
    inputs, cams = torch.randn(3, 3, 12, 10), torch.rand(3, 12, 10)
    with torch.no_grad():
        outputs = model(inputs)
    targets = outputs.argmax(1)
    original = torch.softmax(outputs, 1).gather(1, targets.view(-1, 1)).squeeze(1).double()
    removal = RemoveMostRelevantFirst if order == "morf" else RemoveLeastRelevantFirst
    metric = ROAD(order=order, noise_std=0, internal_batch_size=5)
    ours = metric.curves(model, inputs, cams, targets)
    reference = torch.stack(
        [
            torch.from_numpy(
                PerturbationConfidenceMetric(removal(100 - q, NoisyLinearImputer(noise=0)))(
                    inputs, cams.numpy(), [ClassifierOutputSoftmaxTarget(int(t)) for t in targets], model
                )
            ).double()
            + original
            for q in metric.percentiles
        ],
        dim=1,
    )
    assert (ours - reference).abs().max().item() < 1e-5
    metric.update(model, inputs, cams, targets)
    assert metric.compute().item() == pytest.approx(reference.mean().item(), abs=1e-5)
    torch.testing.assert_close(metric.curve(), reference.mean(0).float(), atol=1e-5, rtol=0)


def test_combined_parity_with_pytorch_grad_cam() -> None:
    from pytorch_grad_cam.metrics.road import ROADCombined as Reference
    from pytorch_grad_cam.metrics import road as reference_module
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4)).eval()
    inputs, cams = torch.randn(2, 2, 8, 9), torch.rand(2, 8, 9)
    targets = model(inputs).argmax(1)
    original_init = reference_module.NoisyLinearImputer.__init__
    try:  # the reference's ROAD classes build their imputer with noise 0.01: switch it off
        reference_module.NoisyLinearImputer.__init__ = lambda self, noise=0.0, weighting=None: original_init(self, 0.0)
        reference = Reference()(inputs, cams.numpy(), [ClassifierOutputSoftmaxTarget(int(t)) for t in targets], model)
    finally:
        reference_module.NoisyLinearImputer.__init__ = original_init
    metric = ROADCombined(noise_std=0)
    metric.update(model, inputs, cams, targets)
    assert metric.compute().item() == pytest.approx(float(reference.mean()), abs=1e-5)


def test_closed_form_on_a_model_that_reads_one_region() -> None:
    # MoRF removes the region (4 of 100 positions) at every percentile (k_q >= 10): its zero neighbours
    # impute 0, so p = sigmoid(0) = 1/2. LeRF never removes it (k_q <= 90 < 96): p = sigmoid(0.5 * 4).
    image, saliency = region_image()
    morf, lerf, combined = ROAD("morf", noise_std=0), ROAD("lerf", noise_std=0), ROADCombined(noise_std=0)
    for metric in (morf, lerf, combined):
        metric.update(RegionSum(), image, saliency, 0)
    high = 1 / (1 + math.exp(-2.0))
    assert morf.compute().item() == pytest.approx(0.5, abs=1e-6)
    assert lerf.compute().item() == pytest.approx(high, abs=1e-6)
    assert combined.compute().item() == pytest.approx((high - 0.5) / 2, abs=1e-6)
    torch.testing.assert_close(morf.curve(), torch.full((9,), 0.5))
    # noise lands on removed positions only: LeRF still reads the untouched region
    noisy = ROAD("lerf", noise_std=0.5, seed=3)
    noisy.update(RegionSum(), image, saliency, 0)
    assert noisy.compute().item() == pytest.approx(high, abs=1e-6)
    # MoRF with noise reads sigmoid(0.5 * noise_std * sum of the noise over the region), drawn per percentile
    noisy = ROAD("morf", noise_std=0.5, seed=3)
    from lit_xai.explainers.seeding import sample_seed

    seed = sample_seed(image[0], 3)
    expected = [torch.sigmoid(0.5 * 0.5 * noisy.noise(image[0], seed, s)[0, 4:6, 4:6].sum()).item() for s in range(9)]
    torch.testing.assert_close(noisy.curves(RegionSum(), image, saliency, 0)[0], torch.tensor(expected, dtype=torch.float64), atol=1e-6, rtol=0)


def test_noise_is_per_sample_and_the_chunk_size_changes_nothing() -> None:
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4)).eval()
    inputs, cams = torch.randn(4, 2, 8, 8), torch.rand(4, 8, 8)
    whole = ROAD(internal_batch_size=36).curves(model, inputs, cams, None)
    alone = torch.cat([ROAD(internal_batch_size=1).curves(model, inputs[i : i + 1], cams[i : i + 1], None) for i in range(4)])
    torch.testing.assert_close(whole, alone, atol=1e-6, rtol=0)  # float32 passes of other batch sizes
    assert not torch.allclose(whole, ROAD(noise_std=0).curves(model, inputs, cams, None))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="order"):
        ROAD(order="up")
    with pytest.raises(ValueError, match="percentiles"):
        ROAD(percentiles=[0, 50])
    with pytest.raises(ValueError, match="noise_std"):
        ROAD(noise_std=-1)
    with pytest.raises(ValueError, match="saliency"):
        ROAD().update(RegionSum(), torch.zeros(1, 2, 10, 10), torch.zeros(1, 2, 10, 10))


def test_ordering_on_the_trained_shapes_model() -> None:
    """ROADCombined on the trained shapes model (docs/metrics.md): Grad-CAM > exact object mask > random >
    inverted mask. Measured on these 24 images with percentiles (20, 50, 80): 0.365, 0.117, -0.019, -0.117
    (all 9 percentiles: 0.352, 0.114, -0.023, -0.114). The exact mask loses to Grad-CAM because LeRF then
    keeps the shape alone and imputes the background from the shape's own pixels, which blurs its edge
    away; Grad-CAM's map keeps a ring of background around the shape."""
    from lit_xai.explainers import GradCAM, RandomSaliency
    from tests.shapes_helpers import single_thread, trained_shapes_classifier

    trained = trained_shapes_classifier()
    dataset = trained.data.dataset("val")
    inputs = torch.stack([dataset[i][0] for i in range(24)])
    masks = torch.stack([dataset.mask(i) for i in range(24)]).float()
    scores = {}
    with single_thread():
        maps = {
            "gradcam": GradCAM()(trained.model, inputs),
            "perfect": masks,
            "random": RandomSaliency()(trained.model, inputs),
            "inverted": 1 - masks,
        }
        for name, saliency in maps.items():
            metric = ROADCombined(percentiles=[20, 50, 80])
            metric.update(trained.model, inputs, saliency)
            scores[name] = metric.compute().item()
    assert scores["gradcam"] > scores["perfect"] + 0.1, scores
    assert scores["perfect"] > scores["random"] + 0.05 > scores["inverted"] + 0.1, scores
