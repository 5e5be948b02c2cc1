"""Input-space explainers: captum parity, Expected Gradients as captum's IG terms, IG completeness, the
SmoothGrad family against the closed form on a quadratic model, SpectralLens / ArgLens on two pixels with
known frequency, optimal_noise_scale on a model whose entropy plateau is known, RISE and Occlusion on
models that look at one region."""

from __future__ import annotations

import math

import pytest
import torch
from captum.attr import InputXGradient as CaptumInputXGradient
from captum.attr import IntegratedGradients as CaptumIG
from captum.attr import Occlusion as CaptumOcclusion
from captum.attr import Saliency as CaptumSaliency
from torch import nn

import lit_xai.explainers as ex
from lit_xai.explainers.expected_gradients import bank_indices, interpolation_factors
from lit_xai.explainers.input_space.integrated_gradients import METHODS, quadrature
from lit_xai.explainers.seeding import sample_seed
from tests.conftest import SmallNet

TOLERANCE = 1e-5


@pytest.fixture
def net() -> SmallNet:
    torch.manual_seed(0)
    return SmallNet().eval()


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2, torch.tensor([0, 1, 2])


def assert_parity(ours: torch.Tensor, reference: torch.Tensor) -> None:
    reference = reference.detach()
    assert ours.shape == reference.shape and reference.abs().max() > 1e-3  # a real signal, not zeros
    assert (ours - reference).abs().max().item() <= TOLERANCE * max(1.0, reference.abs().max().item())


@pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")
def test_saliency_and_input_x_gradient_equal_captum(net: SmallNet, batch) -> None:
    inputs, targets = batch
    for abs_ in (True, False):
        ours = ex.Saliency(abs=abs_, reduce="none")(net, inputs, targets)
        assert_parity(ours, CaptumSaliency(net).attribute(inputs.clone(), target=targets, abs=abs_))
    assert_parity(ex.InputXGradient(reduce="none")(net, inputs, targets), CaptumInputXGradient(net).attribute(inputs.clone(), target=targets))
    signed = ex.Saliency(abs=False, reduce="none")(net, inputs, targets)
    torch.testing.assert_close(ex.Saliency(abs=False, reduce="max_abs")(net, inputs, targets), signed.abs().amax(dim=1))
    torch.testing.assert_close(ex.Saliency(abs=False, reduce="sum")(net, inputs, targets), signed.sum(dim=1))


@pytest.mark.parametrize("method", METHODS)
def test_integrated_gradients_equal_captum_for_every_rule(method: str, net: SmallNet, batch) -> None:
    inputs, targets = batch
    baseline = torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(2)) * 0.5  # one sample's shape
    for steps in (2, 5):
        ours = ex.IntegratedGradients(baseline, steps=steps, method=method, internal_batch_size=4, reduce="none")(net, inputs, targets)
        reference = CaptumIG(net).attribute(inputs, baselines=baseline.unsqueeze(0), target=targets, n_steps=steps, method=method)
        assert_parity(ours, reference)
    ours = ex.IntegratedGradients(0.25, steps=3, method=method, reduce="none")(net, inputs, targets)
    assert_parity(ours, CaptumIG(net).attribute(inputs, baselines=0.25, target=targets, n_steps=3, method=method))


def test_gauss_legendre_rule_matches_numpy() -> None:
    numpy = pytest.importorskip("numpy")
    for steps in (1, 4, 17):
        sizes, alphas = quadrature("gausslegendre", steps)
        nodes, weights = numpy.polynomial.legendre.leggauss(steps)
        assert numpy.allclose(alphas.numpy(), 0.5 * (1 + nodes), atol=1e-13)
        assert numpy.allclose(sizes.numpy(), 0.5 * weights, atol=1e-13)


def test_expected_gradients_with_one_baseline_and_linear_alphas_is_captum_riemann_right(net: SmallNet, batch) -> None:
    inputs, targets = batch
    baseline = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    ours = ex.ExpectedGradients(baseline, draws=6, alphas="linear", internal_batch_size=5, reduce="none")(net, inputs, targets)
    reference = CaptumIG(net).attribute(inputs, baselines=baseline, target=targets, n_steps=6, method="riemann_right")
    assert_parity(ours, reference)


def test_expected_gradients_are_the_mean_of_captum_ig_terms_at_the_drawn_points(net: SmallNet, batch) -> None:
    """Drawn baselines and interpolation factors reconstructed from the seeds; each draw is captum's IG
    term (x - x') * grad(x' + a (x - x')) at that one point (its `step_sizes_and_alphas` = ([1], [a]))."""
    inputs, targets = batch
    bank = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    draws, seed = 5, 7
    ours = ex.ExpectedGradients(bank, draws=draws, seed=seed, internal_batch_size=4, reduce="none")(net, inputs, targets)
    seeds = [sample_seed(x, seed) for x in inputs]
    factors = interpolation_factors(inputs, draws, 1, "uniform", seeds)
    indices = bank_indices(len(bank), draws, seeds, inputs.device)
    assert len(indices.unique()) > 1 and factors.std() > 0.1  # several baselines, spread points
    captum = CaptumIG(net)
    terms = []
    for d in range(draws):
        terms.append(
            torch.cat(
                [
                    captum._attribute((inputs[b : b + 1],), (bank[indices[b, d]].unsqueeze(0),), target=targets[b : b + 1], n_steps=1,
                                      step_sizes_and_alphas=([1.0], [factors[b, d].item()]))[0]
                    for b in range(len(inputs))
                ]
            )
        )
    assert_parity(ours, torch.stack(terms).mean(dim=0))


@pytest.mark.parametrize("baselines", ["bank", "gaussian"])
def test_expected_gradients_share_expected_gradcams_draws(baselines: str, net: SmallNet, batch) -> None:
    """Same baselines, draws and seed: Expected Gradients are Guided Expected Grad-CAM's input terms."""
    inputs, targets = batch
    source = torch.randn(5, 3, 8, 8, generator=torch.Generator().manual_seed(5)) if baselines == "bank" else ex.GaussianBaselines(0.7)
    ours = ex.ExpectedGradients(source, draws=6, seed=3, reduce="none")(net, inputs, targets)
    cam = ex.GuidedExpectedGradCAM(baselines=source, draws=6, seed=3, internal_batch_size=7)
    with torch.enable_grad():
        terms = cam.expected(net, "features.3", inputs.clone(), targets, input_terms=True).input_terms
    torch.testing.assert_close(ours, terms, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("method, rate, last", [("riemann_middle", 1 / 8, 1e-5), ("riemann_right", 0.3, 2e-3), ("gausslegendre", None, 1e-5)])
def test_integrated_gradients_completeness_shrinks_with_steps(method: str, rate: float | None, last: float) -> None:
    """|sum phi - (f(x) - f(0))| per sample, from return_diagnostics and by hand: O(1/n^2) for the midpoint
    rule, O(1/n) for riemann_right, at float32 round-off for Gauss-Legendre from 8 points on."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 5 * 5, 3), nn.Softplus()).eval()
    inputs = torch.randn(2, 2, 5, 5, generator=torch.Generator().manual_seed(6)) * 2
    with torch.no_grad():
        outputs, zeros = model(inputs), model(torch.zeros_like(inputs))
    target = outputs.argmax(dim=1, keepdim=True)
    gap = (outputs.gather(1, target) - zeros.gather(1, target)).squeeze(1)
    deltas = []
    for steps in (2, 8, 32, 128):
        maps, diagnostics = ex.IntegratedGradients(steps=steps, method=method, return_diagnostics=True, reduce="sum")(model, inputs)
        torch.testing.assert_close(diagnostics.delta, (maps.flatten(1).sum(dim=1) - gap).abs())
        torch.testing.assert_close(diagnostics.scores - diagnostics.baseline_scores, gap)
        assert diagnostics.draws == steps
        deltas.append(diagnostics.delta.max().item())
    assert deltas[0] > 1e-3
    if rate is not None:
        assert all(later < rate * earlier for earlier, later in zip(deltas, deltas[1:])), deltas
    assert max(deltas[1:] if rate is None else deltas[-1:]) < last, deltas


def test_captums_trapezoid_rule_is_kept_with_its_weights() -> None:
    """captum's "riemann_trapezoid" puts n points 1/(n - 1) apart but steps 1/n: the weights sum to (n - 1)/n
    (completeness then errs by O(1/n)); kept for parity."""
    sizes, alphas = quadrature("riemann_trapezoid", 4)
    torch.testing.assert_close(sizes, torch.tensor([0.125, 0.25, 0.25, 0.125], dtype=torch.float64))
    torch.testing.assert_close(alphas, torch.tensor([0, 1 / 3, 2 / 3, 1], dtype=torch.float64))


class Quadratic(nn.Module):
    """f(x) = x^T A x + b^T x on the flattened input: grad = (A + A^T) x + b."""

    def __init__(self, A: torch.Tensor, b: torch.Tensor) -> None:
        super().__init__()
        self.A, self.b = nn.Parameter(A), nn.Parameter(b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        return ((flat @ self.A) * flat).sum(dim=1) + flat @ self.b


def test_smoothgrad_family_converges_to_the_closed_form_on_a_quadratic_model() -> None:
    """With x~ = x + sigma e: E[g] = M x + b, Var[g_i] = sigma^2 (M M^T)_ii, E[g_i^2] = E[g_i]^2 + Var[g_i],
    M = A + A^T. Tolerances: 5 standard errors of each Monte-Carlo estimate over `samples` draws."""
    generator = torch.Generator().manual_seed(7)
    A, b = torch.randn(4, 4, generator=generator), torch.randn(4, generator=generator)
    model = Quadratic(A, b).eval()
    inputs = torch.randn(2, 1, 4, generator=generator)
    samples, level = 4000, 0.2
    M = A + A.T
    sigma = level * (inputs.flatten(1).amax(1) - inputs.flatten(1).amin(1))
    mean = inputs.flatten(1) @ M.T + b
    variance = sigma[:, None] ** 2 * (M @ M.T).diagonal()
    kwargs = dict(noise_std=level, samples=samples, seed=1, reduce="none")
    smooth = ex.SmoothGrad(**kwargs)(model, inputs).flatten(1)
    squared = ex.SmoothGradSquared(**kwargs)(model, inputs).flatten(1)
    var = ex.VarGrad(**kwargs)(model, inputs).flatten(1)
    assert ((smooth - mean).abs() <= 5 * (variance / samples).sqrt()).all()
    second = mean**2 + variance
    assert ((squared - second).abs() <= 5 * ((4 * mean**2 * variance + 2 * variance**2) / samples).sqrt()).all()
    assert ((var - variance).abs() <= 5 * (2 * variance**2 / samples).sqrt()).all()
    assert (variance > 0.1).all() and (mean.abs() > 0.1).any()  # the checks are not vacuous
    # convex combination x~ = (1 - s) x + s e: E[g] = (1 - s) M x + b, Var = s^2 (M M^T)_ii
    s = 0.3
    convex = ex.SmoothGrad(noise_std=s, samples=samples, mode="convex", reduce="none")(model, inputs).flatten(1)
    convex_variance = s**2 * (M @ M.T).diagonal()
    assert ((convex - ((1 - s) * inputs.flatten(1) @ M.T + b)).abs() <= 5 * (convex_variance / samples).sqrt()).all()
    # zero noise: every statistic is the plain gradient (VarGrad zero)
    plain = ex.SmoothGrad(noise_std=0.0, samples=3, reduce="none")(model, inputs).flatten(1)
    torch.testing.assert_close(plain, mean)
    assert ex.VarGrad(noise_std=0.0, samples=3, reduce="none")(model, inputs).abs().max() < 1e-5


class TwoBumps(nn.Module):
    """f(x) = exp(-x_0^2 / (2 l_0^2)) + exp(-x_1^2 / (2 l_1^2)) on a (B, 1, 2) series: pixel 0 a wide
    (low-frequency) response, pixel 1 a narrow (high-frequency) one."""

    def __init__(self, widths: tuple[float, float]) -> None:
        super().__init__()
        self.register_buffer("widths", torch.tensor(widths))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-x[:, 0] ** 2 / (2 * self.widths**2)).sum(dim=1)


def bump_sg2(scale: torch.Tensor, width: float) -> torch.Tensor:
    """E[(d/dz exp(-z^2 / 2 l^2))^2] for z ~ N(0, s^2): s^2 / l^4 (1 + 2 s^2 / l^2)^(-3/2), largest at s = l."""
    return scale**2 / width**4 * (1 + 2 * scale**2 / width**2) ** -1.5


def test_arglens_separates_low_and_high_frequency_pixels() -> None:
    """At x = 0 the convex perturbation is x~ = s e, so SG2 of each pixel peaks at its bump's width:
    ArgLens gives the wide (low-frequency) pixel the larger scale, as section 4.2.1 predicts."""
    widths = (0.6, 0.15)
    model, inputs = TwoBumps(widths).eval(), torch.zeros(1, 1, 2)
    scales = [round(0.05 * k, 2) for k in range(1, 21)]
    arglens = ex.ArgLens(scales=scales, samples=3000, noise_std=1.0, reduce="sum")(model, inputs)
    assert abs(arglens[0, 0].item() - widths[0]) <= 0.05 + 1e-6 and abs(arglens[0, 1].item() - widths[1]) <= 0.05 + 1e-6
    lens = ex.SpectralLens(scales=scales, samples=3000, noise_std=1.0, reduce="sum")(model, inputs)
    grid = torch.tensor(scales, dtype=torch.float64)
    expected = torch.stack([(grid**2.5 * bump_sg2(grid, w)).sum() for w in widths]).float()
    torch.testing.assert_close(lens[0], expected, rtol=0.06, atol=0)


def test_spectral_lens_weights_each_scale_by_its_prior_and_kernel_norm() -> None:
    """One-hot priors pick one scale: s^(5/2) times SmoothGradSquared at that scale with the same draws;
    "beta" is the weights 6 u (1 - u)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(2, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(18, 2)).eval()
    inputs = torch.randn(2, 2, 6, generator=torch.Generator().manual_seed(8))
    scales, cutoff = (0.25, 0.5, 1.0), 0.8
    for k, u in enumerate(scales):
        one_hot = [1.0 if j == k else 0.0 for j in range(len(scales))]
        lens = ex.SpectralLens(scales=scales, prior=one_hot, samples=5, noise_std=cutoff, seed=2, reduce="none")(model, inputs, 1)
        term = ex.SmoothGradSquared(noise_std=cutoff * u, samples=5, mode="convex", seed=2, reduce="none")(model, inputs, 1)
        torch.testing.assert_close(lens, (cutoff * u) ** 2.5 * term)
    beta = ex.SpectralLens(scales=scales, prior="beta", samples=5, seed=2)(model, inputs)
    weights = ex.SpectralLens(scales=scales, prior=[6 * u * (1 - u) for u in scales], samples=5, seed=2)(model, inputs)
    torch.testing.assert_close(beta, weights)


class ClampedMean(nn.Module):
    """Two logits [t * ReLU(mean(x) - c), 0]: confident while the mean exceeds c, then the entropy is ln 2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = 40 * torch.relu(x.flatten(1).mean(dim=1) - 0.5)
        return torch.stack([score, torch.zeros_like(score)], dim=1)


def test_optimal_noise_scale_is_where_the_entropy_plateaus() -> None:
    """Constant images of value m: (1 - s) m + s mean(e) reaches c = 0.5 at s = 1 - 0.5 / m (0.5 and 0.75)."""
    inputs = torch.ones(2, 1, 32, 32) * torch.tensor([1.0, 2.0]).view(2, 1, 1, 1)
    model = ClampedMean().eval()
    scales, entropy = ex.optimal_noise_scale(model, inputs, return_entropy=True)
    torch.testing.assert_close(scales, torch.tensor([0.5, 0.75]))
    assert entropy.shape == (2, 20) and (entropy[:, 0] < 1e-5).all() and (entropy[:, -1] - math.log(2)).abs().max() < 0.01
    assert ex.optimal_noise_scale(model, inputs, per="dataset").item() == pytest.approx(0.75)
    # noise_std="auto" uses it per sample
    auto = ex.SmoothGrad(noise_std="auto", mode="convex", samples=4, reduce="none")(model, inputs)
    fixed = torch.cat([ex.SmoothGrad(noise_std=s, mode="convex", samples=4, reduce="none")(model, inputs[i : i + 1]) for i, s in enumerate((0.5, 0.75))])
    torch.testing.assert_close(auto, fixed)
    with pytest.raises(ValueError, match="classifier"):
        ex.optimal_noise_scale(nn.Sequential(nn.Flatten(), nn.Linear(1024, 1)), inputs)


class RegionModel(nn.Module):
    """Logits [4 * mean of x over rows/cols 2..4 of channel 0, 0]: only that 3 x 3 region matters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = 4 * x[:, 0, 2:5, 2:5].mean(dim=(1, 2))
        return torch.stack([score, torch.zeros_like(score)], dim=1)


def test_rise_is_seeded_and_ranks_the_region_first() -> None:
    inputs = torch.ones(2, 2, 12, 12)
    inputs[1] *= 1.5
    rise = ex.RISE(masks=1000, cell=4, seed=3, internal_batch_size=96)
    maps = rise(RegionModel(), inputs, 0)
    torch.testing.assert_close(maps, ex.RISE(masks=1000, cell=4, seed=3)(RegionModel(), inputs, 0), rtol=0, atol=0)
    assert not torch.equal(maps, ex.RISE(masks=1000, cell=4, seed=4)(RegionModel(), inputs, 0))
    region = torch.zeros(12, 12, dtype=torch.bool)
    region[2:5, 2:5] = True
    for saliency in maps:
        assert region.flatten()[saliency.flatten().argmax()]
        assert saliency[region].mean() > saliency[~region].mean() + 0.05
        # far from the region the masks are independent of the score: E[y M] / p = E[y] (mean probability)
        assert saliency[9:, 9:].mean().item() == pytest.approx(saliency.mean().item(), abs=0.05)


def test_occlusion_on_a_linear_model_is_each_windows_contribution() -> None:
    """f = sum(w * x): with non-overlapping windows every position gets its window's sum of w * x."""
    weights = torch.randn(1, 2, 6, 6, generator=torch.Generator().manual_seed(9))
    inputs = torch.randn(2, 2, 6, 6, generator=torch.Generator().manual_seed(10))

    class Linear(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x * weights).flatten(1).sum(dim=1)

    maps = ex.Occlusion(window=(2, 3), stride=(2, 3), reduce="none")(Linear(), inputs)
    contributions = (weights * inputs).sum(dim=1)  # (2, 6, 6)
    window_sums = contributions.view(2, 3, 2, 2, 3).sum(dim=(2, 4))
    expected = window_sums.repeat_interleave(2, dim=1).repeat_interleave(3, dim=2)
    torch.testing.assert_close(maps, expected.unsqueeze(1).expand(2, 2, 6, 6))


def test_occlusion_equals_captum_and_ranks_the_region_first(net: SmallNet, batch) -> None:
    inputs, targets = batch
    for window, stride, baseline in (((3, 3), (2, 2), 0.0), ((4, 2), (3, 1), 0.5)):
        ours = ex.Occlusion(window=window, stride=stride, baseline=baseline, internal_batch_size=7, reduce="none")(net, inputs, targets)
        reference = CaptumOcclusion(net).attribute(inputs, sliding_window_shapes=(3, *window), strides=(3, *stride), baselines=baseline, target=targets)
        assert_parity(ours, reference)
    maps = ex.Occlusion(window=2, stride=1, reduce="sum")(RegionModel(), torch.ones(1, 2, 12, 12), 0)
    assert maps[0, 2:5, 2:5].min() > 0 and maps[0, 7:, :].abs().max() == 0 and maps[0, :, 7:].abs().max() == 0
    torch.testing.assert_close(maps, ex.Occlusion(window=2, stride=1, reduce="sum")(RegionModel(), torch.ones(1, 2, 12, 12), 0))


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="reduce must be one of"):
        ex.Saliency(reduce="mean")
    with pytest.raises(ValueError, match="method must be one of"):
        ex.IntegratedGradients(method="simpson")
    with pytest.raises(ValueError, match="steps must be a positive int"):
        ex.IntegratedGradients(steps=0)
    with pytest.raises(ValueError, match="mode='convex'"):
        ex.SmoothGrad(noise_std="auto")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ex.SmoothGradSquared(noise_std=1.5, mode="convex")
    with pytest.raises(ValueError, match="strictly increasing"):
        ex.SpectralLens(scales=(0.5, 0.2))
    with pytest.raises(ValueError, match="one per scale"):
        ex.SpectralLens(scales=(0.5, 1.0), prior=[1.0])
    with pytest.raises(ValueError, match="internal_batch_size"):
        ex.RISE(internal_batch_size=0)
    with pytest.raises(ValueError, match="does not broadcast"):
        ex.IntegratedGradients(baseline=torch.zeros(5))(SmallNet(), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="stride"):
        ex.Occlusion(window=2, stride=3)(SmallNet(), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="cell"):
        ex.RISE(cell=9)(SmallNet(), torch.zeros(1, 3, 8, 8))
