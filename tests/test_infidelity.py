"""Infidelity: parity with captum on the same perturbations; 0 for gradient x input on a linear model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_xai.explainers.seeding import sample_seed
from lit_xai.metrics import Infidelity


def small_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 5))
    with torch.no_grad():
        model[-1].weight.mul_(20)  # confident enough that perturbations move the probabilities
    return model.eval()


@pytest.mark.parametrize(
    "options",
    [
        dict(perturbation="gaussian", normalize=True, noise_std=0.5),
        dict(perturbation="square", normalize=True, square_size=3),
        dict(perturbation="gaussian", normalize=False, multiply_by_inputs=False, noise_std=0.05),
    ],
)
def test_parity_with_captum_on_the_same_perturbations(options: dict) -> None:
    from captum.metrics import infidelity

    model = small_model()
    generator = torch.Generator().manual_seed(1)
    inputs, saliency = torch.randn(3, 3, 8, 8, generator=generator), torch.randn(3, 8, 8, generator=generator)
    targets = torch.tensor([0, 3, 1])
    metric = Infidelity(samples=6, internal_batch_size=4, **options)
    patterns = torch.stack(
        [torch.stack([metric.draw((8, 8), sample_seed(x, metric.seed), s) for s in range(6)]) for x in inputs]
    ).flatten(0, 1).unsqueeze(1)  # sample-major, as captum repeats the inputs

    def perturb(repeated: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shift = patterns * repeated if metric.multiply_by_inputs else patterns
        return patterns.expand_as(repeated), repeated - shift

    def probabilities(x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model(x), dim=1)

    attributions = torch.zeros_like(inputs)
    attributions[:, 0] = saliency  # the map on one channel, the perturbation on all: the same dot product
    reference = infidelity(
        probabilities, perturb, inputs, attributions, target=targets, n_perturb_samples=6, normalize=metric.normalize
    )
    ours = metric.values(model, inputs, saliency, targets)
    assert (ours - reference.double()).abs().max().item() < 1e-5
    torch.testing.assert_close(ours, reference.double(), rtol=1e-4, atol=1e-9)
    assert reference.abs().min() > 1e-4  # not trivially 0
    metric.update(model, inputs, saliency, targets)
    assert metric.compute().item() == pytest.approx(reference.mean().item(), abs=1e-5)


class LinearRegressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, 2, 5, 6, generator=torch.Generator().manual_seed(4)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.weight).flatten(1).sum(1, keepdim=True) + 0.3


@pytest.mark.parametrize("perturbation", ["gaussian", "square"])
def test_gradient_times_input_on_a_linear_model_is_zero(perturbation: str) -> None:
    model = LinearRegressor()
    inputs = torch.randn(4, 2, 5, 6, generator=torch.Generator().manual_seed(5))
    x = inputs.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(model(x).sum(), x)
    gxi = (gradient * inputs).sum(1)
    for normalize in (True, False):
        metric = Infidelity(perturbation=perturbation, samples=8, normalize=normalize)
        metric.update(model, inputs, gxi)
        assert metric.compute().item() == pytest.approx(0.0, abs=1e-10)
    # a wrong map is penalised; the optimal scaling forgives scale, not shape
    scaled, shuffled = Infidelity(samples=8), Infidelity(samples=8)
    scaled.update(model, inputs, 7 * gxi)
    shuffled.update(model, inputs, gxi.flip(-1))
    assert scaled.compute().item() == pytest.approx(0.0, abs=1e-10)
    assert shuffled.compute().item() > 1e-3


def test_draws_are_per_sample() -> None:
    model = small_model()
    inputs, saliency = torch.randn(4, 3, 8, 8), torch.randn(4, 8, 8)
    metric = Infidelity(samples=5, perturbation="square")
    whole = metric.values(model, inputs, saliency, None)
    alone = torch.cat([metric.values(model, inputs[i : i + 1], saliency[i : i + 1], None) for i in range(4)])
    torch.testing.assert_close(whole, alone, atol=1e-9, rtol=1e-4)  # float32 passes of other batch sizes


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="perturbation"):
        Infidelity(perturbation="uniform")
    with pytest.raises(ValueError, match="samples"):
        Infidelity(samples=0)
    with pytest.raises(ValueError, match="square_size"):
        Infidelity(perturbation="square", square_size=9).update(small_model(), torch.randn(1, 3, 8, 8), torch.randn(1, 8, 8))
