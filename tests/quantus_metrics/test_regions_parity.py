"""quantus 0.6 parity of Region Perturbation and IROF (segments from lit_xai.segments)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lit_xai.metrics import IROF, RegionPerturbation
from lit_xai.segments import segment_counts, segments
from tests.quantus_metrics.models import MODELS, as_array, batch, quantus_inputs

quantus = pytest.importorskip("quantus")
pytest.importorskip("skimage")
QUIET = dict(disable_warnings=True, display_progressbar=False)


@pytest.fixture(autouse=True)
def numpy_trapz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_region_perturbation(name: str, order: str) -> None:
    model, (inputs, saliency) = MODELS[name](), batch(9)
    metric = RegionPerturbation(patch_size=3, order=order, regions_evaluation=3, internal_batch_size=5)
    metric.update(model, inputs, saliency)
    curves = quantus.RegionPerturbation(patch_size=3, order=order, regions_evaluation=3, **QUIET)(**quantus_inputs(model, inputs, saliency), softmax=True)
    np.testing.assert_allclose(metric.last_curves.numpy(), as_array(curves), atol=1e-5)
    np.testing.assert_allclose(metric.last_values.numpy(), as_array(curves).sum(axis=1) / 4, atol=1e-5)
    assert metric.last_curves.abs().amax().item() > 1e-3  # the regions move the score


@pytest.mark.parametrize("name", sorted(MODELS))
def test_irof_with_per_image_means(name: str) -> None:
    """quantus' "mean" is the mean of the whole, partly removed, batch: handed the paper's per-image mean
    it gives lit-xai's ratios; its area takes the batch's longest curve (zero-padded) for every image."""
    model, (inputs, saliency) = MODELS[name](), batch(10)
    inputs = inputs.abs()  # SLIC on one-channel images in [0, 3]
    means = inputs.mean(dim=(2, 3), keepdim=True).expand_as(inputs).numpy()

    def per_image_mean(arr: np.ndarray, mask: np.ndarray, **kwargs: object) -> np.ndarray:
        out = arr.copy()
        out[mask] = means[mask]
        return out

    metric = IROF()
    metric.update(model, inputs, saliency)
    reference = quantus.IROF(perturb_func=per_image_mean, return_aggregate=False, **QUIET)(**quantus_inputs(model, inputs, saliency), softmax=True)
    counts = segment_counts(segments(inputs, "slic"))
    ratios = metric.ratios(model, inputs, saliency)
    padded_term = torch.where(counts < counts.max(), ratios.gather(1, (counts - 1).unsqueeze(1)).squeeze(1) / 2, 0.0)
    np.testing.assert_allclose((metric.last_values - padded_term).numpy(), as_array(reference), atol=1e-5)
    assert (counts > 4).all() and metric.compute().item() > 0
