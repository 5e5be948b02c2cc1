"""quantus 0.6 parity of the robustness metrics that re-run the explainer: our draws replayed into
quantus through its `perturb_func`, the same lit-xai explainer as its `explain_func`, to 1e-5."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lit_xai.explainers import InputXGradient
from lit_xai.explainers.seeding import sample_seed
from lit_xai.metrics import (
    AvgSensitivity,
    Continuity,
    LocalLipschitzEstimate,
    RelativeInputStability,
    RelativeOutputStability,
    RelativeRepresentationStability,
)
from tests.quantus_metrics.models import MODELS, as_array, batch, quantus_inputs

quantus = pytest.importorskip("quantus")
QUIET = dict(disable_warnings=True, display_progressbar=False)
EXPLAINER = InputXGradient(reduce="sum")


def explain_func(model: torch.nn.Module, inputs: np.ndarray, targets: np.ndarray, **kwargs: object) -> np.ndarray:
    maps = EXPLAINER(model, torch.as_tensor(inputs), torch.as_tensor(targets))
    return maps.unsqueeze(1).detach().numpy()


def replayed_noise(metric: object, inputs: torch.Tensor, draws: int):
    """quantus' perturb_func: adds our noise of draw s to each sample, draw after draw."""
    noise = [[metric.noise(tuple(x.shape), sample_seed(x, metric.seed), s).flatten().numpy() for x in inputs] for s in range(draws)]
    calls = iter(range(draws))

    def perturb(arr: np.ndarray, indices: np.ndarray, **kwargs: object) -> np.ndarray:
        s = next(calls)
        return arr + np.stack(noise[s]).astype(arr.dtype)

    return perturb


def run(metric, reference_class, name: str, seed: int, **reference_kwargs: object) -> tuple[torch.Tensor, np.ndarray]:
    model, (inputs, _) = MODELS[name](), batch(seed)
    saliency = explain_func(model, inputs.numpy(), quantus_inputs(model, inputs, inputs[:, 0])["y_batch"])[:, 0]
    saliency = torch.as_tensor(saliency)
    metric.explainer = EXPLAINER
    metric.update(model, inputs, saliency)
    reference = reference_class(
        nr_samples=metric.nr_samples, perturb_func=replayed_noise(metric, inputs, metric.nr_samples), **QUIET, **reference_kwargs
    )(**quantus_inputs(model, inputs, saliency), explain_func=explain_func)
    return metric.last_values, as_array(reference)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_avg_sensitivity(name: str) -> None:
    ours, reference = run(AvgSensitivity(nr_samples=5, internal_batch_size=3), quantus.AvgSensitivity, name, 1)
    np.testing.assert_allclose(ours.numpy(), reference, atol=1e-5, rtol=1e-6)
    assert (ours > 0.01).all()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_local_lipschitz_estimate(name: str) -> None:
    # quantus normalises by the batch's max, lit-xai each map by its own: compare without normalising
    ours, reference = run(LocalLipschitzEstimate(nr_samples=5, normalise=False), quantus.LocalLipschitzEstimate, name, 2, normalise=False)
    np.testing.assert_allclose(ours.numpy(), reference, atol=1e-5, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_relative_input_and_output_stability(name: str) -> None:
    for ours_class, reference_class in ((RelativeInputStability, quantus.RelativeInputStability), (RelativeOutputStability, quantus.RelativeOutputStability)):
        metric = ours_class(nr_samples=4, skip_changed_predictions=False)
        ours, reference = run(metric, reference_class, name, 3, return_nan_when_prediction_changes=False)
        np.testing.assert_allclose(ours.numpy(), reference, rtol=1e-5)


@pytest.mark.parametrize(("name", "layer"), [("blind_mlp", "2"), ("pooling_convnet", "2")])
def test_relative_representation_stability(name: str, layer: str) -> None:
    metric = RelativeRepresentationStability(layer=layer, nr_samples=4, skip_changed_predictions=False)
    ours, reference = run(metric, quantus.RelativeRepresentationStability, name, 4, layer_names=[layer], return_nan_when_prediction_changes=False)
    np.testing.assert_allclose(ours.numpy(), reference, rtol=1e-5)
    if name != "blind_mlp":
        return
    # default: the input of the head (the last layer with parameters), here Softplus' output "2"
    default = RelativeRepresentationStability(explainer=EXPLAINER, nr_samples=4, skip_changed_predictions=False)
    model, (inputs, _) = MODELS["blind_mlp"](), batch(4)
    assert torch.allclose(default.values(model, inputs, EXPLAINER(model, inputs)), ours)


def test_changed_predictions_are_left_out_not_nan() -> None:
    """A draw that flips the prediction drops out of the maximum (quantus: the image becomes NaN)."""
    model, (inputs, _) = MODELS["pooling_convnet"](), batch(5)
    saliency = EXPLAINER(model, inputs)
    loud = RelativeInputStability(explainer=EXPLAINER, nr_samples=6, low=-3.0, high=3.0)
    values = loud.values(model, inputs, saliency)
    everything = RelativeInputStability(explainer=EXPLAINER, nr_samples=6, low=-3.0, high=3.0, skip_changed_predictions=False)
    every = everything.values(model, inputs, saliency)
    assert torch.isfinite(every).all()
    kept = ~values.isnan()
    assert (values[kept] <= every[kept] + 1e-12).all() and (values[kept] < every[kept]).any()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_continuity(name: str) -> None:
    model, (inputs, _) = MODELS[name](), batch(6)
    targets = quantus_inputs(model, inputs, inputs[:, 0])["y_batch"]
    saliency = torch.as_tensor(explain_func(model, inputs.numpy(), targets)[:, 0])
    metric = Continuity(explainer=EXPLAINER, nr_steps=4)  # dx = 13 // 4 = 3: shifts -3, 0, 3, 6
    metric.update(model, inputs, saliency)
    assert metric.shifts(6).tolist() == [-3, 0, 3, 6]
    reference = quantus.Continuity(nr_steps=4, **QUIET)(**quantus_inputs(model, inputs, saliency), explain_func=explain_func)
    # quantus normalises the maps by the batch's max: on a batch of one it is the image's own max
    singles = [
        quantus.Continuity(nr_steps=4, **QUIET)(**quantus_inputs(model, inputs[i : i + 1], saliency[i : i + 1]), explain_func=explain_func)[0]
        for i in range(len(inputs))
    ]
    np.testing.assert_allclose(metric.last_values.numpy(), as_array(singles), rtol=1e-5)
    assert np.isfinite(as_array(reference)).all()
