"""quantus 0.6 parity of the faithfulness, axiomatic and complexity metrics on two one-channel models
(tests/quantus_metrics/models.py): same model, inputs, maps and perturbations, to 1e-5."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lit_xai.explainers.seeding import sample_seed
from lit_xai.metrics import (
    EffectiveComplexity,
    FaithfulnessEstimate,
    Monotonicity,
    MonotonicityCorrelation,
    NonSensitivity,
    PixelFlipping,
    Selectivity,
)
from tests.quantus_metrics.models import MODELS, as_array, batch, quantus_inputs

quantus = pytest.importorskip("quantus")
QUIET = dict(disable_warnings=True, display_progressbar=False)


@pytest.fixture(autouse=True)
def numpy_trapz(monkeypatch: pytest.MonkeyPatch) -> None:
    """quantus 0.6 calls `np.trapz`, which numpy 2.4 removed (`np.trapezoid` is the same rule)."""
    monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)


def close(ours: torch.Tensor, reference: object) -> None:
    reference = as_array(reference)
    assert np.isfinite(reference).all()
    np.testing.assert_allclose(ours.numpy(), reference, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_pixel_flipping(name: str) -> None:
    model, (inputs, saliency) = MODELS[name](), batch(1)
    metric = PixelFlipping(features_in_step=3, internal_batch_size=5)
    metric.update(model, inputs, saliency)
    reference = quantus.PixelFlipping(features_in_step=3, return_auc_per_sample=True, **QUIET)(**quantus_inputs(model, inputs, saliency), softmax=True)
    close(metric.last_values, reference)
    assert float(metric.last_values.std()) > 1e-3  # images differ: not a constant


@pytest.mark.parametrize("name", sorted(MODELS))
def test_selectivity_on_padded_patches(name: str) -> None:
    model, (inputs, saliency) = MODELS[name](), batch(2)
    metric = Selectivity(patch_size=4)  # 6 x 6 padded to 8 x 8: four patches, three of them partial
    metric.update(model, inputs, saliency)
    curves = quantus.Selectivity(patch_size=4, **QUIET)(**quantus_inputs(model, inputs, saliency), softmax=True)
    close(metric.last_curves, curves)
    close(metric.last_values, [np.trapezoid(curve) for curve in as_array(curves)])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_faithfulness_estimate(name: str) -> None:
    model, (inputs, saliency) = MODELS[name](), batch(3)
    metric = FaithfulnessEstimate(features_in_step=2)
    metric.update(model, inputs, saliency)
    reference = quantus.FaithfulnessEstimate(features_in_step=2, **QUIET)(**quantus_inputs(model, inputs, saliency), softmax=True)
    close(metric.last_values, reference)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_monotonicity_with_the_input_restored(name: str) -> None:
    """quantus writes its baseline where it should restore the input (every image True); handed a
    perturb_func that restores the input, it scores what lit-xai scores."""
    model, (inputs, saliency) = MODELS[name](), batch(4, size=6)
    flat = inputs.flatten(1).numpy()

    def restore(arr: np.ndarray, indices: np.ndarray, **kwargs: object) -> np.ndarray:
        out = arr.copy()
        rows = np.arange(len(arr))[:, None]
        out[rows, indices] = flat[rows, indices]
        return out

    metric = Monotonicity(features_in_step=12)
    metric.update(model, inputs, saliency)
    reference = quantus.Monotonicity(features_in_step=12, perturb_func=restore, **QUIET)(**quantus_inputs(model, inputs, saliency), softmax=True)
    close(metric.last_values, reference)
    broken = quantus.Monotonicity(features_in_step=12, **QUIET)(**quantus_inputs(model, inputs, saliency), softmax=True)
    assert all(broken) and 0 < float(metric.last_values.mean()) < 1  # quantus' own default: all True


@pytest.mark.parametrize("name", sorted(MODELS))
def test_monotonicity_correlation_with_our_draws(name: str) -> None:
    model, (inputs, saliency) = MODELS[name](), batch(5, size=3)
    metric = MonotonicityCorrelation(nr_samples=4, features_in_step=4, internal_batch_size=7)
    steps = 9
    draws = [metric.draws(x, steps).numpy() for x in inputs]
    calls = iter(range(steps * 4))

    def replay(arr: np.ndarray, indices: np.ndarray, **kwargs: object) -> np.ndarray:
        k = next(calls)
        out = arr.copy()
        for b in range(len(arr)):
            out[b, indices[b]] = draws[b][k // 4, k % 4]
        return out

    metric.update(model, inputs, saliency)
    reference = quantus.MonotonicityCorrelation(nr_samples=4, features_in_step=4, perturb_func=replay, **QUIET)(
        **quantus_inputs(model, inputs, saliency), softmax=True
    )
    close(metric.last_values, reference)
    assert metric.draws(inputs[0], steps).equal(metric.draws(inputs[0].clone(), steps))  # seeded by the sample
    assert sample_seed(inputs[0], 0) != sample_seed(inputs[1], 0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_non_sensitivity(name: str) -> None:
    model, (inputs, saliency) = MODELS[name](), batch(6)
    saliency[:, 5] = 0  # no attribution on the last row (where blind_mlp is blind)
    saliency[:, 0, :3] = 0
    metric = NonSensitivity(eps=1e-4)
    metric.update(model, inputs, saliency)
    flat = saliency.flatten(1).abs()
    normalised = (flat / flat.amax(dim=1, keepdim=True)).view_as(saliency)  # quantus divides by the batch's max
    reference = quantus.NonSensitivity(eps=1e-4, normalise=False, **QUIET)(**quantus_inputs(model, inputs, normalised), softmax=True)
    close(metric.last_values, reference)
    if name == "blind_mlp":  # blind to the last row, which has no attribution: no disagreement there
        assert not metric.violations(model, inputs, saliency).view(4, 6, 6)[:, 5].any()
        assert (metric.last_values >= 2).all()  # the zeros of row 0 are seen by the model


def test_effective_complexity() -> None:
    _, saliency = batch(7)
    saliency[:, :2] = 1e-9
    metric = EffectiveComplexity()
    metric.update(None, torch.zeros(4, 1, 6, 6), saliency)
    flat = saliency.flatten(1).abs()
    normalised = (flat / flat.amax(dim=1, keepdim=True)).view(4, 1, 6, 6).numpy()
    reference = quantus.EffectiveComplexity(normalise=False, **QUIET)(model=None, x_batch=np.zeros((4, 1, 6, 6), np.float32), y_batch=np.zeros(4, int), a_batch=normalised)
    close(metric.last_values, reference)
    assert (metric.last_values == 24).all()
