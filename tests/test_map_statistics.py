"""Sparseness and Complexity: parity with quantus, closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lit_xai.metrics import Complexity, Sparseness


def quantus_scores(metric_class: type, saliency: torch.Tensor) -> list[float]:
    """quantus' scores, one image per call (quantus normalises by the batch's maximum)."""
    metric = metric_class(disable_warnings=True)
    scores = []
    for sample in saliency:
        a = sample.numpy()[None, None].astype(np.float64)
        x = np.zeros((1, 1, *sample.shape))
        scores.extend(metric(model=None, x_batch=x, y_batch=np.zeros(1, dtype=int), a_batch=a, explain_func=None))
    return scores


@pytest.mark.parametrize("name", ["Sparseness", "Complexity"])
def test_parity_with_quantus(name: str) -> None:
    import quantus

    generator = torch.Generator().manual_seed(0)
    saliency = torch.randn(4, 7, 9, generator=generator, dtype=torch.float64)
    saliency[1] = saliency[1].clamp_min(0) ** 3  # a sparser map
    saliency[2, :, :4] = 0
    ours = {"Sparseness": Sparseness, "Complexity": Complexity}[name]()
    ours.update(None, torch.zeros(4, 3, 7, 9), saliency)
    reference = quantus_scores(getattr(quantus, name), saliency)
    assert ours.total.item() / 4 == pytest.approx(float(np.mean(reference)), abs=1e-9)
    single = {"Sparseness": Sparseness, "Complexity": Complexity}[name]()
    for i in range(4):
        single.reset()
        single.update(None, torch.zeros(1, 3, 7, 9), saliency[i : i + 1])
        assert single.compute().item() == pytest.approx(reference[i], abs=1e-6)


def test_closed_forms() -> None:
    n = 16
    one_hot, uniform, zero = torch.zeros(1, 4, 4), torch.full((1, 4, 4), -3.0), torch.zeros(1, 4, 4)
    one_hot[0, 1, 2] = 5.0
    inputs = torch.zeros(1, 1, 4, 4)
    for saliency, gini, entropy in ((one_hot, (n - 1) / n, 0.0), (uniform, 0.0, math.log(n)), (zero, 0.0, math.log(n))):
        sparseness, complexity = Sparseness(), Complexity()
        sparseness.update(None, inputs, saliency)
        complexity.update(None, inputs, saliency)
        assert sparseness.compute().item() == pytest.approx(gini, abs=1e-5)  # quantus adds 1e-7 to every value
        assert complexity.compute().item() == pytest.approx(entropy, abs=1e-6)
    # half the mass on each of two positions: entropy log 2; Gini (n - 2) / n
    two = torch.zeros(1, 4, 4)
    two[0, 0, :2] = 2.0
    complexity, sparseness = Complexity(), Sparseness()
    complexity.update(None, inputs, two)
    sparseness.update(None, inputs, two)
    assert complexity.compute().item() == pytest.approx(math.log(2), abs=1e-6)
    assert sparseness.compute().item() == pytest.approx((n - 2) / n, abs=1e-5)
    assert Sparseness.higher_is_better and not Complexity.higher_is_better


def test_shape_check() -> None:
    with pytest.raises(ValueError, match="saliency"):
        Sparseness().update(None, torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4))
