"""targets=None: the pass that resolves the targets (the argmax on the unperturbed inputs) is also the
metric's pass on the unperturbed inputs, so a direct caller without targets pays no second pass over the
batch (`lit_xai.metrics.common.original_scores`)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from lit_xai.metrics import (
    IROF,
    AverageDrop,
    AverageDropInDeletion,
    Deletion,
    FaithfulnessCorrelation,
    FaithfulnessEstimate,
    IncreaseInConfidence,
    Infidelity,
    Insertion,
    InsertionDeletion,
    MonotonicityCorrelation,
    NonSensitivity,
    RegionPerturbation,
    SensitivityN,
)
from lit_xai.metrics.common import batched_target_scores, metric_passes, original_scores

METRICS: dict[str, Callable[[], object]] = {
    "AverageDrop": AverageDrop,
    "AverageDropInDeletion": AverageDropInDeletion,
    "IncreaseInConfidence": IncreaseInConfidence,
    "FaithfulnessCorrelation": lambda: FaithfulnessCorrelation(subset=4, samples=3),
    "FaithfulnessEstimate": lambda: FaithfulnessEstimate(features_in_step=9),
    "Infidelity": lambda: Infidelity(samples=3),
    "IROF": lambda: IROF(features="patches", patch_size=3),
    "Insertion": lambda: Insertion(steps=6),
    "Deletion": lambda: Deletion(steps=6, patch=2),
    "InsertionDeletion": lambda: InsertionDeletion(steps=5),
    "MonotonicityCorrelation": lambda: MonotonicityCorrelation(features_in_step=9, nr_samples=2),
    "NonSensitivity": lambda: NonSensitivity(features_in_step=9),
    "RegionPerturbation": lambda: RegionPerturbation(patch_size=3),
    "SensitivityN": lambda: SensitivityN(steps=3, nr_samples=2),
}


class Shifted(nn.Module):
    """A small classifier with an extra input per sample (`forward_args`)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(31)
        self.net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(108, 4))

    def forward(self, x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        return self.net(x) + shift


def counted(model: nn.Module) -> list[int]:
    rows: list[int] = []
    model.register_forward_pre_hook(lambda module, args: rows.append(args[0].shape[0]))
    return rows


@pytest.mark.parametrize("name", sorted(METRICS))
def test_no_second_pass_over_the_unperturbed_inputs(name: str) -> None:
    model = Shifted().eval()
    generator = torch.Generator().manual_seed(32)
    inputs, saliency = torch.randn(5, 1, 6, 6, generator=generator), torch.randn(5, 6, 6, generator=generator).abs()
    shift = torch.randn(5, 4, generator=generator)
    with torch.no_grad():
        targets = model(inputs, shift).argmax(dim=1)
    rows = counted(model)
    given, without = METRICS[name](), METRICS[name]()
    given.update(model, inputs, saliency, targets, forward_args=shift)
    with_targets = sum(rows)
    rows.clear()
    without.update(model, inputs, saliency, forward_args=shift)
    assert sum(rows) == with_targets  # was with_targets + 5: one more pass over the batch
    torch.testing.assert_close(without.last_values, given.last_values, rtol=1e-9, atol=1e-9, equal_nan=True)


def test_original_scores_read_only_the_pass_on_these_inputs_and_model() -> None:
    """Other inputs, another model, other targets or targets given: the scores come from a pass of their own."""
    model, other = Shifted().eval(), Shifted().eval()
    with torch.no_grad():
        other.net[-1].bias.add_(1.0)
    generator = torch.Generator().manual_seed(33)
    inputs, saliency = torch.randn(3, 1, 6, 6, generator=generator), torch.randn(3, 6, 6, generator=generator)
    shift = torch.zeros(3, 4)
    metric = AverageDrop()
    rows = counted(model)
    with metric_passes(metric, model, inputs, saliency, None, shift) as (model, inputs, saliency, resolved):
        assert rows == [3]  # the resolving pass
        reference = batched_target_scores(model, inputs, resolved, None)
        assert torch.equal(original_scores(model, inputs, resolved, None), reference) and rows == [3, 3]
        assert not torch.equal(original_scores(other, inputs, resolved, None), reference)
        assert torch.equal(original_scores(model, inputs.clone(), resolved, None), reference) and rows == [3, 3, 3]
        original_scores(model, inputs, resolved.clone(), None)
        assert rows == [3, 3, 3, 3]
    rows.clear()
    with metric_passes(metric, model, inputs, saliency, resolved, shift) as (model, inputs, saliency, given):
        original_scores(model, inputs, given, None)
    assert rows == [3]  # targets given: no resolving pass, one pass for the scores
