"""Every explainer keeps the contract of DESIGN.md: shapes, dtypes, per-sample targets, 1-D and 2-D inputs,
regression targets, any caller mode, and a model left exactly as it was found."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

import lit_xai.explainers as ex
from tests.conftest import SmallNet

FACTORIES: dict[str, Callable[[], ex.Explainer]] = {
    "GradCAM": lambda: ex.GradCAM(),
    "GradCAMPlusPlus": lambda: ex.GradCAMPlusPlus(),
    "XGradCAM": lambda: ex.XGradCAM(),
    "HiResCAM": lambda: ex.HiResCAM(),
    "LayerCAM": lambda: ex.LayerCAM(),
    "ScoreCAM": lambda: ex.ScoreCAM(internal_batch_size=7),
    "AblationCAM": lambda: ex.AblationCAM(internal_batch_size=7),
    "SmoothGradCAMPlusPlus": lambda: ex.SmoothGradCAMPlusPlus(samples=3, internal_batch_size=4),
    "PolyCAM": lambda: ex.PolyCAM(internal_batch_size=9),
    "PolyCAM-plus": lambda: ex.PolyCAM("plus", internal_batch_size=9),
    "PolyCAM-minus": lambda: ex.PolyCAM("minus", internal_batch_size=9),
    "GuidedBackprop": lambda: ex.GuidedBackprop(),
    "GuidedGradCAM": lambda: ex.GuidedGradCAM(),
    "ExpectedGradCAM": lambda: ex.ExpectedGradCAM(draws=4, batches=2, internal_batch_size=5),
    "ExpectedGradCAMPlusPlus": lambda: ex.ExpectedGradCAMPlusPlus(draws=4, internal_batch_size=5),
    "GuidedExpectedGradCAM": lambda: ex.GuidedExpectedGradCAM(baselines=ex.GaussianBaselines(), draws=4),
    "Saliency": lambda: ex.Saliency(),
    "InputXGradient": lambda: ex.InputXGradient(),
    "IntegratedGradients": lambda: ex.IntegratedGradients(steps=4, internal_batch_size=5),
    "ExpectedGradients": lambda: ex.ExpectedGradients(baselines=ex.GaussianBaselines(), draws=4, internal_batch_size=5),
    "SmoothGrad": lambda: ex.SmoothGrad(samples=3, internal_batch_size=4),
    "SmoothGradSquared": lambda: ex.SmoothGradSquared(samples=3, mode="convex", noise_std=0.3),
    "VarGrad": lambda: ex.VarGrad(samples=3, internal_batch_size=4),
    "SpectralLens": lambda: ex.SpectralLens(scales=(0.5, 1.0), samples=2, internal_batch_size=3),
    "ArgLens": lambda: ex.ArgLens(scales=(0.5, 1.0), samples=2),
    "RISE": lambda: ex.RISE(masks=16, cell=4, internal_batch_size=7),
    "Occlusion": lambda: ex.Occlusion(window=3, stride=2, internal_batch_size=7),
    "LRP": lambda: ex.LRP(reduce="abs_sum"),
    "LRP-gamma-box": lambda: ex.LRP("epsilon_gamma_box", reduce="abs_sum"),
    "LayerLRP": lambda: ex.LayerLRP(reduce="abs_sum"),
    "RandomSaliency": lambda: ex.RandomSaliency(),
    "CenterSaliency": lambda: ex.CenterSaliency(),
    "SpectralResidualSaliency": lambda: ex.SpectralResidualSaliency(),
    "JitterCAM": lambda: ex.JitterCAM(grid=10, internal_batch_size=4),
    "GradCAM-mass-preserving": lambda: ex.GradCAM(upsample=ex.MassPreservingUpsampler("gradients")),
    "HyperExpectedGradCAM": lambda: ex.HyperExpectedGradCAM(draws=2, max_stages=2, internal_batch_size=7),
}
MODEL_FREE = {"RandomSaliency", "CenterSaliency", "SpectralResidualSaliency"}
IMAGE_ONLY = {"JitterCAM", "HyperExpectedGradCAM"}


class SeriesNet(nn.Module):
    """Conv1d classifier for (B, 2, 16) series with BatchNorm (state to keep)."""

    def __init__(self, outputs: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv1d(2, 6, 3, padding=1), nn.BatchNorm1d(6), nn.ReLU(), nn.Conv1d(6, 6, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.MaxPool1d(2), nn.Flatten(), nn.Linear(48, outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def snapshot(model: nn.Module) -> dict[str, object]:
    return {
        "modes": {n: m.training for n, m in model.named_modules()},
        "flags": {n: p.requires_grad for n, p in model.named_parameters()},
        "grads": {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()},
        "state": {n: t.clone() for n, t in model.state_dict().items()},
        "hooks": sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules()),
    }


def assert_same_snapshot(before: dict, after: dict) -> None:
    assert before["modes"] == after["modes"] and before["flags"] == after["flags"] and after["hooks"] == before["hooks"]
    for name, grad in before["grads"].items():
        assert (grad is None and after["grads"][name] is None) or torch.equal(grad, after["grads"][name]), name
    for name, tensor in before["state"].items():
        assert torch.equal(tensor, after["state"][name]), name


@pytest.mark.parametrize("name", FACTORIES)
def test_images_per_sample_targets_and_batch_independence(name: str, small_net: SmallNet) -> None:
    small_net.eval()
    inputs = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([0, 1, 2])
    maps = FACTORIES[name]()(small_net, inputs, targets)
    assert maps.shape == (3, 8, 8) and maps.dtype == torch.float32 and (maps >= 0).all()
    alone = torch.cat([FACTORIES[name]()(small_net, inputs[i : i + 1], targets[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(maps, alone, rtol=1e-4, atol=1e-6)
    if name not in MODEL_FREE:
        other = FACTORIES[name]()(small_net, inputs, torch.tensor([1, 2, 0]))
        assert not torch.allclose(maps, other), "the target must matter"


@pytest.mark.parametrize("name", FACTORIES)
def test_time_series_and_regression(name: str) -> None:
    torch.manual_seed(0)
    inputs = torch.randn(2, 2, 16, generator=torch.Generator().manual_seed(1))
    if name in IMAGE_ONLY:
        with pytest.raises(ValueError, match="explains images"):
            FACTORIES[name]()(SeriesNet().eval(), inputs, torch.tensor([0, 2]))
        maps = FACTORIES[name]()(SmallNet(num_classes=1).eval(), torch.randn(2, 3, 8, 8))
        assert maps.shape == (2, 8, 8) and torch.isfinite(maps).all()
        return
    maps = FACTORIES[name]()(SeriesNet().eval(), inputs, torch.tensor([0, 2]))
    assert maps.shape == (2, 16) and (maps >= 0).all()
    regressor = SeriesNet(outputs=1).eval()
    maps = FACTORIES[name]()(regressor, inputs)
    assert maps.shape == (2, 16) and torch.isfinite(maps).all()


@pytest.mark.parametrize("name", FACTORIES)
def test_model_left_untouched_in_any_mode(name: str, small_net: SmallNet) -> None:
    small_net.train()
    for p in small_net.parameters():
        p.grad = torch.full_like(p, 0.5)
    small_net.head[3].bias.requires_grad_(False)
    inputs = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    before = snapshot(small_net)
    rng = torch.get_rng_state()
    in_training = FACTORIES[name]()(small_net, inputs)
    assert torch.equal(torch.get_rng_state(), rng), "Dropout must not draw from the global random state"
    assert_same_snapshot(before, snapshot(small_net))

    small_net.eval()
    expected = FACTORIES[name]()(small_net, inputs)
    torch.testing.assert_close(in_training, expected)  # explanations are of the model in eval mode
    with torch.inference_mode():
        in_inference = FACTORIES[name]()(small_net, inputs.clone())
    with torch.no_grad():
        in_no_grad = FACTORIES[name]()(small_net, inputs)
    torch.testing.assert_close(in_inference, expected)
    torch.testing.assert_close(in_no_grad, expected)


class _FixedMap(ex.Explainer):
    """Returns the map it was given, whatever the model says (for the checks on what explain returns)."""

    def __init__(self, saliency: torch.Tensor) -> None:
        self.saliency = saliency

    def explain(self, model: nn.Module, inputs: torch.Tensor, targets: object) -> torch.Tensor:
        return self.saliency.clone()


def test_returned_maps_are_checked_for_nan_and_all_zero_with_one_sum() -> None:
    """A NaN or inf in the map is an error; an all-zero map warns; a map whose values cancel to a zero sum is
    neither (the sum that checks both is only the first look)."""
    import warnings

    model, inputs = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), torch.rand(2, 1, 4, 4)
    with pytest.raises(ValueError, match="_FixedMap produced NaN or inf"):
        _FixedMap(torch.zeros(2, 4, 4).index_put_((torch.tensor([0]),), torch.tensor(float("inf"))))(model, inputs, 0)
    with pytest.warns(UserWarning, match="_FixedMap returned an all-zero map"):
        _FixedMap(torch.zeros(2, 4, 4))(model, inputs, 0)
    cancelling = torch.zeros(2, 4, 4)
    cancelling[0, 0, 0], cancelling[1, 3, 3] = 1.0, -1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(_FixedMap(cancelling)(model, inputs, 0), cancelling)
    huge = torch.full((2, 4, 4), 3e38)  # finite values whose float32 sum overflows
    assert torch.equal(_FixedMap(huge)(model, inputs, 0), huge)


@pytest.mark.parametrize(
    "factory",
    [lambda: ex.InputXGradient(), lambda: ex.GradCAM(), lambda: ex.IntegratedGradients(steps=2), lambda: ex.FullGrad(), lambda: ex.LRP()],
    ids=["InputXGradient", "GradCAM", "IntegratedGradients", "FullGrad", "LRP"],
)
def test_target_range_is_checked_once_and_still_rejects_bad_targets(factory: Callable[[], ex.Explainer]) -> None:
    """`resolved_scores` resolves and selects the target scores with one range check: out-of-range targets
    are still a clear error, and a call with valid targets synchronises once for it (one aminmax)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class CountRangeChecks(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            if func is torch.ops.aten.aminmax.default:
                CountRangeChecks.count += 1
            return func(*args, **(kwargs or {}))

    model, inputs = SmallNet().eval(), torch.rand(2, 3, 16, 16)
    explainer = factory()
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
        explainer(model, inputs, torch.tensor([0, 3]))
    with CountRangeChecks():
        explainer(model, inputs, torch.tensor([0, 2]))
    assert CountRangeChecks.count == 1
