"""Expected Grad-CAM, Expected Grad-CAM++ and Guided Expected Grad-CAM against captum and closed forms."""

from __future__ import annotations

import pytest
import torch
from captum.attr import IntegratedGradients, InternalInfluence
from torch import nn

from lit_xai.explainers import GradCAM, GradCAMPlusPlus
from lit_xai.explainers.cam.expected_gradcam import ExpectedGradCAM, ExpectedGradCAMPlusPlus, GuidedExpectedGradCAM
from lit_xai.explainers.expected_gradients import expected_gradients
from lit_xai.explainers.path_baselines import BankBaselines, DataBaselines, GaussianBaselines, ZeroBaseline, as_baseline_source
from lit_xai.explainers.upsample import upsample


def plain_net() -> nn.Module:
    """A small CNN without in-place ops (captum's layer hooks need that)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.Tanh(), nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8 * 16, 4),
    ).eval()


X = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
BASELINE = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(2))
TARGETS = torch.tensor([1, 3])


def test_weights_match_captum_internal_influence_with_a_fixed_baseline() -> None:
    model = plain_net()
    layer = model[2]
    draws = 16
    result = expected_gradients(
        model, "2", X, TARGETS, BankBaselines(BASELINE), draws=draws, groups=1, alphas="linear", noise_std=0.0, seed=0,
        internal_batch_size=5,
    )
    influence = InternalInfluence(model, layer).attribute(X, baselines=BASELINE, target=TARGETS, n_steps=draws, method="riemann_right")
    with torch.no_grad():
        delta = layer(model[1](model[0](X))) - layer(model[1](model[0](BASELINE)))
    expected_weights = (delta * influence).mean(dim=(2, 3))
    torch.testing.assert_close(result.layer_terms[:, 0].mean(dim=(2, 3)), expected_weights, rtol=1e-5, atol=1e-5)
    maps = ExpectedGradCAM("2", upsample="none", baselines=BASELINE, draws=draws, alphas="linear")(model, X, TARGETS)
    activations = layer(model[1](model[0](X))).detach()
    expected_maps = torch.relu((expected_weights[:, :, None, None] * activations).sum(1))
    torch.testing.assert_close(maps, expected_maps, rtol=1e-5, atol=1e-6)
    assert (maps.flatten(1).amax(1) > 0).all()


def test_guided_is_the_upsampled_map_times_captum_integrated_gradients() -> None:
    model = plain_net()
    draws = 16
    guided = GuidedExpectedGradCAM("2", baselines=BASELINE, draws=draws, alphas="linear", reduce="none")(model, X, TARGETS)
    cam = ExpectedGradCAM("2", baselines=BASELINE, draws=draws, alphas="linear")(model, X, TARGETS)
    ig = IntegratedGradients(model).attribute(X, baselines=BASELINE, target=TARGETS, n_steps=draws, method="riemann_right")
    torch.testing.assert_close(guided, cam.unsqueeze(1) * ig, rtol=1e-4, atol=1e-6)
    reduced = GuidedExpectedGradCAM("2", baselines=BASELINE, draws=draws, alphas="linear")(model, X, TARGETS)
    torch.testing.assert_close(reduced, guided.abs().sum(1))
    with pytest.raises(ValueError, match="upsample cannot be 'none'"):
        GuidedExpectedGradCAM("2", upsample="none")


def test_plus_plus_uses_the_expected_gradients_in_the_plus_plus_rule() -> None:
    model = plain_net()
    options = dict(baselines=BASELINE, draws=8, alphas="linear")
    result = expected_gradients(model, "2", X, TARGETS, BankBaselines(BASELINE), 8, 1, "linear", 0.0, 0, 64)
    g = result.layer_terms[:, 0]
    a = result.activations
    alpha = g**2 / (2 * g**2 + a.sum(dim=(2, 3), keepdim=True) * g**3 + 1e-12)
    alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
    weights = (alpha * torch.relu(g)).sum(dim=(2, 3))
    expected = torch.relu((weights[:, :, None, None] * a).sum(1))
    torch.testing.assert_close(ExpectedGradCAMPlusPlus("2", upsample="none", **options)(model, X, TARGETS), expected)


def test_completeness_delta_shrinks_as_draws_grow() -> None:
    """At the first conv (linear in the input) the path stays straight at the layer, so the layer
    attributions must add up to y(x) - y(x') as the Riemann sum converges."""
    model = plain_net()
    deltas = []
    for draws in (2, 8, 32, 128):
        explainer = ExpectedGradCAM("0", baselines=BASELINE, draws=draws, alphas="linear", return_diagnostics=True)
        _, diagnostics = explainer(model, X, TARGETS)
        deltas.append(diagnostics.delta.max().item())
        assert diagnostics.draws == draws
    assert deltas[0] > deltas[1] > deltas[2] > deltas[3]
    # measured max deltas: 0.111, 0.045, 0.0070, 0.0025 (relative to |y(x) - y(x')|: 0.74, 0.30, 0.054, 0.016)
    assert deltas[3] < deltas[0] / 20 and deltas[3] < 5e-3
    # with data-drawn baselines and uniform alphas the Monte Carlo estimate converges too
    bank = torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    mc = [ExpectedGradCAM("0", baselines=bank, draws=d, return_diagnostics=True)(model, X, TARGETS)[1].relative_delta.mean().item() for d in (4, 256)]
    assert mc[1] < mc[0]


class Saturating(nn.Module):
    """A = x (1x1 identity conv over 2 channels, the target layer); y_0 = 10 tanh(sum of A_0 over the
    top-left 3x3 block), y_1 = 0. Channel 1 carries a distractor the output ignores."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        mask = torch.zeros(1, 8, 8)
        mask[:, :3, :3] = 1
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y0 = 10 * torch.tanh((self.conv(x)[:, 0] * self.mask).flatten(1).sum(1))
        return torch.stack([y0, torch.zeros_like(y0)], dim=1)


def test_saturation_gradcam_is_blind_expected_gradcam_is_not() -> None:
    x = torch.zeros(1, 2, 8, 8)
    x[:, 0, :3, :3] = 5.0  # sum 45: tanh saturates, its gradient is exactly 0 in float32
    x[:, 1, 5:, 5:] = 5.0  # the distractor
    model = Saturating().eval()
    assert GradCAM("conv", upsample="none")(model, x, 0).abs().max() == 0
    assert GradCAMPlusPlus("conv", upsample="none")(model, x, 0).abs().max() == 0
    maps = ExpectedGradCAM("conv", upsample="none", baselines=ZeroBaseline(), draws=64, alphas="linear")(model, x, 0)[0]
    # w_0 = mean_ij 5 * mean_s 10 (1 - tanh^2(45 s / 64)) over the block, w_1 = 0: the block and nothing else
    grid = torch.arange(1, 65, dtype=torch.float64) / 64
    w0 = 9 * 5 * (10 * (1 - torch.tanh(45 * grid) ** 2)).mean().item() / 64
    torch.testing.assert_close(maps[:3, :3], torch.full((3, 3), 5 * w0), rtol=1e-4, atol=0)
    assert maps[5:, 5:].max() == 0 and maps.sum() == pytest.approx(maps[:3, :3].sum())


def test_seeds_and_mini_batching_variance() -> None:
    model = plain_net()
    bank = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(4))

    def maps(batches: int, draws: int, seed: int) -> torch.Tensor:
        return ExpectedGradCAM("2", baselines=bank, draws=draws, batches=batches, seed=seed)(model, X, TARGETS)

    torch.testing.assert_close(maps(1, 8, 0), maps(1, 8, 0), rtol=0, atol=0)
    assert (maps(1, 8, 0) - maps(1, 8, 1)).abs().max() > 1e-4
    seeds = range(12)
    mini_batched = torch.stack([maps(4, 8, s) for s in seeds])  # K x M = 4 x 8
    single_half = torch.stack([maps(1, 16, s) for s in seeds])  # 1 x (K*M/2)
    variance = lambda runs: (runs.var(dim=0).mean() / runs.mean(dim=0).pow(2).mean()).item()  # noqa: E731
    assert variance(mini_batched) < variance(single_half)


def test_batch_independence_and_diagnostics_and_early_stop() -> None:
    model = plain_net()
    bank = torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    explainer = ExpectedGradCAM("2", baselines=bank, draws=6, batches=2, internal_batch_size=5)
    together = explainer(model, X, TARGETS)
    alone = torch.cat([explainer(model, X[i : i + 1], TARGETS[i : i + 1]) for i in range(2)])
    torch.testing.assert_close(together, alone)
    loose = ExpectedGradCAM("0", baselines=BASELINE, draws=32, batches=4, alphas="linear", tolerance=1.0, return_diagnostics=True)
    _, diagnostics = loose(model, X, TARGETS)
    assert diagnostics.draws == 32  # converged after the first group
    strict = ExpectedGradCAM("0", baselines=BASELINE, draws=32, batches=4, alphas="linear", tolerance=0.0, return_diagnostics=True)
    assert strict(model, X, TARGETS)[1].draws == 128


def test_bank_activations_are_cached_until_the_model_changes() -> None:
    model = plain_net()
    calls = []
    handle = model[2].register_forward_hook(lambda module, args, out: calls.append(out.shape[0]))
    bank = torch.randn(10, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    explainer = ExpectedGradCAM("2", baselines=bank, draws=4, internal_batch_size=100)
    first = explainer(model, X, TARGETS)
    assert calls == [2, 10, 8]  # the input, the bank once, the 2 x 4 path points
    calls.clear()
    torch.testing.assert_close(explainer(model, X, TARGETS), first)
    assert calls == [2, 8]
    with torch.no_grad():
        model[6].weight.add_(0.1)
    calls.clear()
    explainer(model, X, TARGETS)
    assert calls == [2, 10, 8]
    handle.remove()
    calls.clear()
    noisy = ExpectedGradCAM("2", baselines=bank, draws=4, noise_std=0.1, internal_batch_size=100)
    model[2].register_forward_hook(lambda module, args, out: calls.append(out.shape[0]))
    noisy(model, X, TARGETS)
    assert calls == [2, 16]  # smoothed baselines cannot be cached: path and baselines share each pass


def test_baseline_sources() -> None:
    data = torch.utils.data.TensorDataset(torch.arange(40.0).view(10, 1, 2, 2), torch.zeros(10))
    bank = DataBaselines(data, size=4, seed=0).data
    assert bank.shape == (4, 1, 2, 2) and torch.equal(bank, DataBaselines(data, size=4, seed=0).data)
    assert torch.equal(DataBaselines(data, indices=[2, 5]).data[:, 0, 0, 0], torch.tensor([8.0, 20.0]))
    with pytest.raises(ValueError, match=r"must lie in \[0, 10\)"):
        DataBaselines(data, indices=[12])
    inputs = torch.randn(3, 1, 2, 2)
    assert torch.equal(BankBaselines(bank).bank(inputs), bank)
    assert torch.equal(ZeroBaseline().bank(inputs), torch.zeros(1, 1, 2, 2))
    big = torch.randn(2, 1, 50, 50)
    samples, draws = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1])
    gaussian = GaussianBaselines(std=2.0).draw_pairs(big, samples, draws, seeds=[5, 6])
    assert gaussian.shape == (4, 1, 50, 50) and gaussian.std().item() == pytest.approx(2.0, rel=0.05)
    again = GaussianBaselines(std=2.0).draw_pairs(big, samples[2:], draws[2:], seeds=[5, 6])
    torch.testing.assert_close(again, gaussian[2:], rtol=0, atol=0)  # a draw depends on (sample, number) only
    with pytest.raises(ValueError, match="per sample but the inputs have"):
        BankBaselines(torch.zeros(2, 3, 4, 4)).bank(inputs)
    with pytest.raises(ValueError, match="baselines must be a tensor"):
        as_baseline_source("training")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alphas must be one of"):
        ExpectedGradCAM(alphas="random")
    with pytest.raises(ValueError, match="draws must be a positive int"):
        ExpectedGradCAM(draws=0)


def test_early_stop_is_per_sample() -> None:
    model = plain_net()
    explainer = ExpectedGradCAM("0", baselines=BASELINE, draws=4, batches=6, alphas="uniform", tolerance=0.02, return_diagnostics=True)
    together, diagnostics = explainer(model, X, TARGETS)
    alone = [explainer(model, X[i : i + 1], TARGETS[i : i + 1]) for i in range(2)]
    torch.testing.assert_close(together, torch.cat([maps for maps, _ in alone]))
    used = [d.draws for _, d in alone]
    assert diagnostics.draws == max(used) and used[0] != used[1]  # the samples stop at different group counts


def test_upsampled_output_and_time_series() -> None:
    model = plain_net()
    low = ExpectedGradCAM("4", upsample="none", baselines=BASELINE, draws=4)(model, X, TARGETS)
    full = ExpectedGradCAM("4", baselines=BASELINE, draws=4)(model, X, TARGETS)
    assert low.shape == (2, 4, 4) and full.shape == (2, 8, 8)
    torch.testing.assert_close(full, upsample(low, (8, 8)))
    series = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, 1)).eval()
    maps = ExpectedGradCAM("1", draws=8, baselines=ZeroBaseline())(series, torch.randn(3, 2, 16))
    assert maps.shape == (3, 16) and (maps >= 0).all()
