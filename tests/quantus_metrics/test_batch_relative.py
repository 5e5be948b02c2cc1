"""Sufficiency and Consistency against quantus 0.6 on the same maps (quantus' discretisation replaced by
lit-xai's for Consistency), and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lit_xai.metrics import Consistency, Sufficiency
from tests.quantus_metrics.models import (
    MODELS,
    as_array,
    batch,
    quantus_inputs,
    targets_of,
)

quantus = pytest.importorskip("quantus")
QUIET = dict(disable_warnings=True, display_progressbar=False)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_sufficiency(name: str) -> None:
    model, (inputs, saliency) = MODELS[name](), batch(12, size=10)
    base = saliency[0].clone()
    saliency[1::2] = base + 0.01 * saliency[1::2]  # five maps close to each other
    metric = Sufficiency()
    metric.update(model, inputs, saliency)
    flat = saliency.flatten(1).abs()
    normalised = (flat / flat.amax(dim=1, keepdim=True)).view_as(saliency)
    reference = quantus.Sufficiency(normalise=False, **QUIET)(**quantus_inputs(model, inputs, normalised), softmax=True)
    np.testing.assert_allclose(metric.last_values.numpy(), as_array(reference), atol=1e-6)
    assert (metric.last_values > 0).any()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_consistency_with_our_discretisation(name: str) -> None:
    model, (inputs, saliency) = MODELS[name](), batch(13, size=10)
    saliency[5:] = saliency[0] * torch.linspace(0.5, 2, 5).view(5, 1, 1)  # explained like image 0
    metric = Consistency(top_n=3)
    metric.update(model, inputs, saliency)

    def discretise(a: np.ndarray, **kwargs: object) -> int:
        label = metric.labels(torch.as_tensor(a).view(1, -1))
        return hash(bytes(label.numpy()))

    reference = quantus.Consistency(discretise_func=discretise, abs=False, normalise=False, **QUIET)(
        **quantus_inputs(model, inputs, saliency), softmax=True
    )
    np.testing.assert_allclose(metric.last_values.numpy(), as_array(reference), atol=1e-6)
    classes = targets_of(model, inputs)
    group = [0, 5, 6, 7, 8, 9]
    for i in group:
        others = [j for j in group if j != i]
        assert metric.last_values[i].item() == pytest.approx(float((classes[others] == classes[i]).double().mean()), abs=1e-6)
    assert metric.last_values[1:5].eq(0).all()  # alone in their label


def test_hand_computed_sufficiency() -> None:
    """Euclidean distances on one-hot maps: 0 between equal maps, sqrt(2) (the largest, so 1) otherwise."""
    model = MODELS["blind_mlp"]()
    inputs, _ = batch(14, size=4)
    maps = torch.zeros(4, 6, 6)
    maps[0, 0, 0] = maps[1, 0, 0] = maps[2, 0, 0] = 1.0
    maps[3, 5, 5] = 1.0
    metric = Sufficiency(threshold=0.5, distance="euclidean")
    metric.update(model, inputs, maps)
    classes = targets_of(model, inputs)
    for i in range(3):
        others = [j for j in range(3) if j != i]
        assert metric.last_values[i].item() == pytest.approx(float((classes[others] == classes[i]).double().mean()))
    assert metric.last_values[3].item() == 0.0


def test_top_positions_equal_a_stable_argsort_with_and_without_ties() -> None:
    from lit_xai.metrics.batch_relative import top_positions

    values = torch.rand(6, 20, generator=torch.Generator().manual_seed(3))
    values[1, [2, 7, 11]] = 5.0  # a tie among the top k
    values[2, [4, 9]] = values[2].amax()  # a tie at the largest
    values[4] = torch.arange(20.0)
    values[4, [16, 17]] = 16.5  # for k = 3, a tie of the k-th and (k + 1)-th largest
    values[3] = 0.0  # all tied
    for k in (1, 3, 5, 20):
        expected = values.argsort(dim=1, descending=True, stable=True)[:, :k]
        assert torch.equal(top_positions(values, k), expected), k


@pytest.mark.parametrize("metric_class", [Sufficiency, Consistency])
def test_one_pass_and_no_targets_read(metric_class: type) -> None:
    """The predicted classes come from one pass, with targets given or not (no pass resolves unused targets)."""
    model, (inputs, saliency) = MODELS["blind_mlp"](), batch(15, size=6)
    other_classes = (targets_of(model, inputs) + 1) % 3
    rows: list[int] = []
    handle = model.register_forward_pre_hook(lambda module, args: rows.append(args[0].shape[0]))
    try:
        without, given = metric_class(), metric_class()
        without.update(model, inputs, saliency)
        assert rows == [inputs.shape[0]]
        given.update(model, inputs, saliency, other_classes)
    finally:
        handle.remove()
    assert rows == [inputs.shape[0]] * 2
    assert torch.equal(without.last_values, given.last_values)
