"""MaxSensitivity: parity with captum's sensitivity_max on the same perturbations; closed form for a linear
explainer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_xai.explainers import GradCAM
from lit_xai.explainers.seeding import sample_seed
from lit_xai.metrics import MaxSensitivity


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5)).eval()


def test_parity_with_captum_on_the_same_perturbations() -> None:
    from captum.metrics import sensitivity_max

    model = small_model()
    inputs = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([0, 3, 1])
    explainer = GradCAM(target_layer="2")
    metric = MaxSensitivity(explainer, radius=0.2, samples=5, internal_batch_size=4)
    shifts = torch.stack([torch.stack([metric.draw((3, 8, 8), sample_seed(x, 0), s) for s in range(5)]) for x in inputs]).flatten(0, 1)

    def explain(x: torch.Tensor | tuple[torch.Tensor], target: torch.Tensor) -> tuple[torch.Tensor]:
        # captum passes the unperturbed inputs as a tuple and iterates over what it gets back
        return (explainer(model, x[0] if isinstance(x, tuple) else x, target),)

    reference = sensitivity_max(explain, inputs, perturb_func=lambda repeated: repeated + shifts, n_perturb_samples=5, target=targets)
    saliency = explainer(model, inputs, targets)
    ours = metric.values(model, inputs, saliency, targets)
    assert (ours - reference.double()).abs().max().item() < 1e-5
    assert reference.min() > 1e-3
    metric.update(model, inputs, saliency, targets)
    assert metric.compute().item() == pytest.approx(reference.mean().item(), abs=1e-5)


class ChannelSum:
    """A linear explainer: phi(x) = sum_c x (so phi(x + d) - phi(x) = sum_c d)."""

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        return inputs.sum(1)


def test_closed_form_for_a_linear_explainer() -> None:
    model = small_model()
    inputs = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    metric = MaxSensitivity(ChannelSum(), radius=0.05, samples=7, seed=3)
    metric.update(model, inputs, inputs.sum(1))
    expected = [
        max((metric.draw((3, 8, 8), sample_seed(x, 3), s).sum(0).double().norm() / x.sum(0).double().norm()).item() for s in range(7))
        for x in inputs
    ]
    assert metric.compute().item() == pytest.approx(sum(expected) / 2, abs=1e-7)
    assert all(0 < e < 0.05 * 3 * 8 / inputs.sum(1).norm().item() * 10 for e in expected)


def test_needs_its_explainer_and_matching_maps() -> None:
    model, inputs = small_model(), torch.randn(1, 3, 8, 8)
    with pytest.raises(ValueError, match="explainer="):
        MaxSensitivity().update(model, inputs, torch.zeros(1, 8, 8))
    with pytest.raises(TypeError, match="callable"):
        MaxSensitivity(explainer=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="radius"):
        MaxSensitivity(radius=0)
    unreduced = lambda model, x, targets=None: x  # noqa: E731  (B, C, H, W): channels not reduced
    with pytest.raises(ValueError, match="the explainer's maps have shape"):
        MaxSensitivity(unreduced).update(model, inputs, inputs.sum(1))
