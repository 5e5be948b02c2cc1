"""Several layers from one Expected Grad-CAM evaluation (`expected_gradients_at_layers`, issue 27): the same
numbers as one evaluation per layer, from the passes of one evaluation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import Tensor, nn

from lit_xai.explainers import ExpectedGradCAM, HyperExpectedGradCAM
from lit_xai.explainers.expected_gradients import BankActivationCache, expected_gradients, expected_gradients_at_layers
from lit_xai.explainers.path_baselines import BankBaselines, GaussianBaselines
from tests.shapes_helpers import single_thread


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    with single_thread():
        yield


LAYERS = ["0", "2", "4"]  # conv, conv after tanh, conv after the pool: three resolutions (8, 8, 4 px)


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 5, 3, padding=1), nn.Tanh(), nn.Conv2d(5, 6, 3, padding=1), nn.MaxPool2d(2), nn.Conv2d(6, 4, 3, padding=1),
        nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16, 3),
    ).eval()


X = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))
BANK = torch.randn(5, 3, 8, 8, generator=torch.Generator().manual_seed(2))
TARGETS = torch.tensor([0, 2, 1])


@pytest.mark.parametrize(
    "source, noise_std, input_terms",
    [(BankBaselines(BANK), 0.0, False), (BankBaselines(BANK), 0.3, True), (GaussianBaselines(0.5), 0.0, False)],
    ids=["cached-bank", "bank-with-noise-and-input-terms", "gaussian"],
)
def test_shared_evaluation_equals_one_evaluation_per_layer(source: object, noise_std: float, input_terms: bool) -> None:
    model = net()
    options = dict(draws=6, groups=2, alphas="uniform", noise_std=noise_std, seed=3, internal_batch_size=4, input_terms=input_terms)
    shared = expected_gradients_at_layers(model, LAYERS, X, TARGETS, source, cache=BankActivationCache(), **options)  # type: ignore[arg-type]
    for name, result in zip(LAYERS, shared):
        alone = expected_gradients(model, name, X, TARGETS, source, cache=BankActivationCache(), **options)  # type: ignore[arg-type]
        torch.testing.assert_close(result.activations, alone.activations, rtol=0, atol=0)
        torch.testing.assert_close(result.layer_terms, alone.layer_terms, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(result.diagnostics.delta, alone.diagnostics.delta, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(result.diagnostics.baseline_scores, alone.diagnostics.baseline_scores, rtol=1e-6, atol=1e-7)
        if input_terms:
            torch.testing.assert_close(result.input_terms, alone.input_terms, rtol=1e-5, atol=1e-7)


def test_bank_cache_holds_every_layer() -> None:
    model = net()
    cache = BankActivationCache()
    layers, outputs = cache.get(model, LAYERS, BANK, None, 2)
    with torch.no_grad():
        expected = [model[:1](BANK), model[:3](BANK), model[:5](BANK)]
        torch.testing.assert_close(outputs, model(BANK))
    for got, want in zip(layers, expected):
        torch.testing.assert_close(got, want)
    single, _ = BankActivationCache().get(model, "2", BANK, None, 2)
    torch.testing.assert_close(single, expected[1])


class PassCounter:
    """Counts the model's forward calls (each pass of a chunk is one)."""

    def __init__(self, model: nn.Module) -> None:
        self.calls = 0
        self.handle = model.register_forward_pre_hook(lambda module, args: setattr(self, "calls", self.calls + 1))


@pytest.fixture
def counted() -> Iterator[tuple[nn.Module, PassCounter]]:
    model = net()
    counter = PassCounter(model)
    yield model, counter
    counter.handle.remove()


def test_layers_share_the_passes_of_one_evaluation(counted: tuple[nn.Module, PassCounter]) -> None:
    model, counter = counted
    # 3 samples x 6 draws = 18 path points in chunks of 4: 5 passes, plus the inputs' own pass (bank cached)
    for layers in (["4"], LAYERS):
        cache = BankActivationCache()
        cache.get(model, layers, BANK, 4, 3)
        counter.calls = 0
        expected_gradients_at_layers(model, layers, X, TARGETS, BankBaselines(BANK), 6, 1, "uniform", 0.0, 0, 4, cache=cache)
        assert counter.calls == 1 + 5


def test_hyper_frequency_stage_is_one_evaluation(counted: tuple[nn.Module, PassCounter]) -> None:
    """The frequency layers' maps are the separate Expected Grad-CAM maps, and cost the passes of one."""
    model, counter = counted
    hyper = HyperExpectedGradCAM("4", baselines=BANK, draws=6, internal_batch_size=4)
    maps, targets = hyper.layer_maps(model, LAYERS, X, TARGETS)
    assert torch.equal(targets, TARGETS)
    for name, layer_map in zip(LAYERS, maps):
        alone = ExpectedGradCAM(name, "none", baselines=BANK, draws=6, internal_batch_size=4)(model, X, TARGETS)
        torch.testing.assert_close(layer_map, alone, rtol=1e-5, atol=1e-7)
    counter.calls = 0
    hyper.layer_maps(model, LAYERS, X, None)  # bank activations cached by the first call
    assert counter.calls == 1 + 5


def test_bad_layer_lists() -> None:
    model = net()
    source = BankBaselines(BANK)
    with pytest.raises(ValueError, match="layer_names is empty"):
        expected_gradients_at_layers(model, [], X, TARGETS, source, 2, 1, "uniform", 0.0, 0, None)
    with pytest.raises(ValueError, match="must not repeat a layer"):
        expected_gradients_at_layers(model, ["0", "0"], X, TARGETS, source, 2, 1, "uniform", 0.0, 0, None)
    with pytest.raises(ValueError, match="ordered shallow to deep"):
        expected_gradients_at_layers(model, ["4", "0"], X, TARGETS, source, 2, 1, "uniform", 0.0, 0, None)


def test_tolerance_stops_a_sample_only_when_every_layer_converged() -> None:
    model = net()
    source = BankBaselines(BANK[:1])
    options = dict(draws=4, groups=6, alphas="uniform", noise_std=0.0, seed=0, internal_batch_size=None)
    first_conv = expected_gradients(model, "0", X, TARGETS, source, tolerance=10.0, **options)  # type: ignore[arg-type]
    deep = expected_gradients(model, "4", X, TARGETS, source, tolerance=1e-9, **options)  # type: ignore[arg-type]
    both = expected_gradients_at_layers(model, ["0", "4"], X, TARGETS, source, tolerance=None, **options)  # type: ignore[arg-type]
    assert first_conv.groups_used.tolist() == [1, 1, 1] and deep.groups_used.tolist() == [6, 6, 6]
    mixed = expected_gradients_at_layers(model, ["0", "4"], X, TARGETS, source, tolerance=1e-9, **options)  # type: ignore[arg-type]
    assert [r.groups_used.tolist() for r in mixed] == [[6, 6, 6], [6, 6, 6]]
    torch.testing.assert_close(mixed[1].layer_terms, both[1].layer_terms)


def test_a_layer_off_the_output_path_is_named() -> None:
    class TwoBranches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used, self.unused, self.head = nn.Conv2d(3, 2, 3, padding=1), nn.Conv2d(3, 2, 3, padding=1), nn.Linear(2, 2)

        def forward(self, x: Tensor) -> Tensor:
            self.unused(x)
            return self.head(self.used(x).mean((2, 3)))

    model = TwoBranches().eval()
    with pytest.raises(ValueError, match="does not depend on layer 'unused'"):
        expected_gradients_at_layers(model, ["unused", "used"], X, None, BankBaselines(BANK), 2, 1, "uniform", 0.0, 0, None)


def test_hyper_finds_the_frequency_layers_once_per_model_structure(counted: tuple[nn.Module, PassCounter]) -> None:
    model, counter = counted
    hyper = HyperExpectedGradCAM("4", baselines=BANK, draws=2, max_stages=1, internal_batch_size=64)
    first = hyper(model, X, TARGETS)
    counter.calls = 0
    again = hyper(model, X, TARGETS)
    # the shared evaluation (inputs + 6 path points in one chunk) and the neighbourhoods (one chunk of crops
    # at stage 1: its pass + its path points in one chunk): no pass to find the frequency layers again
    assert counter.calls == 2 + 2
    torch.testing.assert_close(again, first, rtol=0, atol=0)
    assert hyper.found_frequency_layers(model, X, "4") == ["3"]  # the pool halves the resolution; no ReLU after it
    model[3] = nn.AvgPool2d(2)  # another module object: found again
    counter.calls = 0
    assert hyper.found_frequency_layers(model, X, "4") == ["3"] and counter.calls == 1
