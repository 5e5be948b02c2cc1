"""Path attributions in input space: Integrated Gradients (fixed baseline, quadrature along the straight
path) and Expected Gradients (baselines and path points drawn at random)."""

from __future__ import annotations

from typing import Any, Optional, Union

import torch
from torch import Tensor, nn

from lit_xai.checks import check_positive_int
from lit_xai.chunking import check_internal_batch_size, pair_chunks
from lit_xai.explainers.attributions import InputSpaceExplainer, clean_pass, expand_batch, input_gradients
from lit_xai.explainers.expected_gradients import ALPHAS, ConvergenceDiagnostics, bank_indices, interpolation_factors
from lit_xai.explainers.path_baselines import BaselineSource, as_baseline_source
from lit_xai.explainers.seeding import sample_seeds

METHODS = ("riemann_right", "riemann_left", "riemann_middle", "riemann_trapezoid", "gausslegendre")


def gauss_legendre(steps: int) -> tuple[Tensor, Tensor]:
    """Nodes and weights of the `steps`-point Gauss-Legendre rule on [-1, 1] (float64), from the
    eigen-decomposition of the Jacobi matrix (Golub & Welsch 1969): nodes are its eigenvalues, weights
    2 * (first component of each unit eigenvector)^2."""
    k = torch.arange(1, steps, dtype=torch.float64)
    off = k / torch.sqrt(4 * k**2 - 1)
    jacobi = torch.diag(off, 1) + torch.diag(off, -1)
    nodes, vectors = torch.linalg.eigh(jacobi)
    return nodes, 2 * vectors[0] ** 2


def quadrature(method: str, steps: int) -> tuple[Tensor, Tensor]:
    """`(step sizes, alphas)` of captum's rules (`captum.attr._utils.approximation_methods`), float64 `(steps,)`:
    Riemann rules take steps 1/n at alphas linspace(1/n, 1) ("right"), linspace(0, 1 - 1/n) ("left"),
    linspace(1/(2n), 1 - 1/(2n)) ("middle"), linspace(0, 1) with halved end steps ("trapezoid"), the alphas
    computed in float32 as captum does; "gausslegendre" takes the Gauss-Legendre rule mapped to [0, 1]."""
    if method == "gausslegendre":
        nodes, weights = gauss_legendre(steps)
        return 0.5 * weights, 0.5 * (1 + nodes)
    n = steps
    sizes = torch.full((n,), 1 / n, dtype=torch.float64)
    if method == "riemann_trapezoid":
        sizes[0] /= 2
        sizes[-1] /= 2
        alphas = torch.linspace(0, 1, n)
    elif method == "riemann_left":
        alphas = torch.linspace(0, 1 - 1 / n, n)
    elif method == "riemann_middle":
        alphas = torch.linspace(1 / (2 * n), 1 - 1 / (2 * n), n)
    else:
        alphas = torch.linspace(1 / n, 1, n)
    return sizes, alphas.to(torch.float64)


class IntegratedGradients(InputSpaceExplainer):
    """Integrated Gradients (Sundararajan et al., "Axiomatic Attribution for Deep Networks", ICML 2017):

        phi_i = (x_i - x'_i) * integral_0^1 d y^c / d x_i (x' + a (x - x')) da
              ~ (x_i - x'_i) * sum_s w_s d y^c / d x_i (x' + a_s (x - x')),

    with captum's quadrature rules and point placements (`method`: "riemann_right" (default),
    "riemann_left", "riemann_middle", "riemann_trapezoid", "gausslegendre"; see `quadrature`). y^c is the
    raw logit (a one-output regressor's prediction). captum's trapezoid rule is kept as captum has it: its
    n points lie 1/(n - 1) apart but its steps are 1/n, so the weights sum to (n - 1)/n and completeness
    errs by O(1/n) (like the one-sided rules); "riemann_middle" errs by O(1/n^2) and "gausslegendre" is
    exact for smooth paths with few points.

    Args:
        baseline: x', a number or a tensor broadcastable to the inputs (one sample's shape `(C, *spatial)`
            or the batch's); default 0 (in normalised input space: the data mean).
        steps: quadrature points; the `B * steps` path points go through the model in chunks of
            `internal_batch_size` (None: chosen for the device, `lit_xai.chunking`).
        return_diagnostics: return `(maps, ConvergenceDiagnostics)`, where `delta = |sum_i phi_i - (y(x) - y(x'))|`
            per sample (completeness; it shrinks as `steps` grows). Two more forward passes per sample.
        reduce: over channels, "none" | "sum" | "abs_sum" (default) | "max_abs".
    """

    def __init__(
        self,
        baseline: Union[float, Tensor] = 0.0,
        steps: int = 32,
        method: str = "riemann_right",
        internal_batch_size: Optional[int] = None,
        return_diagnostics: bool = False,
        reduce: str = "abs_sum",
    ) -> None:
        super().__init__(reduce)
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.steps = check_positive_int(steps, "steps")
        if method == "riemann_trapezoid" and steps < 2:
            raise ValueError("method='riemann_trapezoid' needs steps >= 2 (both ends of the path)")
        if isinstance(baseline, bool) or not isinstance(baseline, (int, float, Tensor)):
            raise ValueError(f"baseline must be a number or a tensor broadcastable to the inputs, got {type(baseline).__name__}")
        self.baseline, self.method = baseline, method
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)
        self.return_diagnostics = return_diagnostics
        self.diagnostics: ConvergenceDiagnostics | None = None

    def __call__(self, model: nn.Module, inputs: Tensor, *args: Any, **kwargs: Any):  # type: ignore[override]
        maps = super().__call__(model, inputs, *args, **kwargs)
        return (maps, self.diagnostics) if self.return_diagnostics else maps

    def attributions(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        baseline = expand_batch(self.baseline, inputs, "baseline")
        if targets is None or self.return_diagnostics:  # given targets are checked in the first chunk
            scores, targets = clean_pass(model, inputs, targets)
        sizes, alphas = (t.to(device=inputs.device, dtype=inputs.dtype) for t in quadrature(self.method, self.steps))
        difference = inputs - baseline
        total = torch.zeros_like(inputs)
        view = (-1,) + (1,) * (inputs.ndim - 1)
        for sample, step in pair_chunks(inputs.shape[0], self.steps, self.internal_batch_size, inputs):
            points = baseline[sample] + alphas[step].view(view) * difference[sample]
            gradients, _, _ = input_gradients(model, points, None if targets is None else targets[sample], sample)
            total.index_add_(0, sample, gradients * sizes[step].view(view))
        attributions = difference * total
        if self.return_diagnostics:
            baseline_scores, _ = clean_pass(model, baseline.contiguous(), targets)
            gap = scores - baseline_scores
            delta = (attributions.flatten(1).sum(dim=1) - gap).abs()
            self.diagnostics = ConvergenceDiagnostics(delta, delta / gap.abs().clamp_min(1e-12), scores, baseline_scores, self.steps)
        return attributions


class ExpectedGradients(InputSpaceExplainer):
    """Expected Gradients (Erion et al., "Improving performance of deep learning models with axiomatic
    attribution priors and expected gradients", Nature Machine Intelligence 2021):

        phi_i = E_{x' ~ D, a ~ U(0, 1)} [(x_i - x'_i) * d y^c / d x_i (x' + a (x - x'))]

    estimated with `draws` (baseline, a) pairs per sample. The baselines and the interpolation factors
    are drawn exactly as Expected Grad-CAM draws them (same seeds, same streams: with the same `baselines`,
    `draws`, `alphas` and `seed`, these are Guided Expected Grad-CAM's input terms), seeded per sample.

    Args:
        baselines: a tensor `(N, *input_shape)` drawn from uniformly (N = 1: a fixed baseline), a
            BaselineSource (`DataBaselines`, `ZeroBaseline`, `GaussianBaselines`), or None (zeros; the
            ExplainerCallback fills it with a bank from the datamodule's training data, as for
            Expected Grad-CAM).
        draws: (baseline, a) pairs per sample; they go through the model in chunks of `internal_batch_size`.
        alphas: "uniform" (a ~ U(0, 1) per draw) or "linear" (a_s = s / draws, s = 1..draws; with one
            fixed baseline this is Integrated Gradients' "riemann_right" rule).
        seed: draws depend only on the seed and the sample.   reduce: as `IntegratedGradients`.
    """

    def __init__(
        self,
        baselines: Union[BaselineSource, Tensor, None] = None,
        draws: int = 32,
        alphas: str = "uniform",
        seed: int = 0,
        internal_batch_size: Optional[int] = None,
        reduce: str = "abs_sum",
    ) -> None:
        super().__init__(reduce)
        if alphas not in ALPHAS:
            raise ValueError(f"alphas must be one of {ALPHAS}, got {alphas!r}")
        as_baseline_source(baselines)  # a bad type fails here, not at the first call
        self.baselines, self.draws, self.alphas, self.seed = baselines, check_positive_int(draws, "draws"), alphas, seed
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    def attributions(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        source = as_baseline_source(self.baselines)
        if targets is None:
            _, targets = clean_pass(model, inputs, targets)
        seeds = sample_seeds(inputs, self.seed)
        factors = interpolation_factors(inputs, self.draws, 1, self.alphas, seeds)
        bank = source.bank(inputs)
        indices = bank_indices(bank.shape[0], self.draws, seeds, inputs.device) if bank is not None else None
        total = torch.zeros_like(inputs)
        view = (-1,) + (1,) * (inputs.ndim - 1)
        for sample, draw in pair_chunks(inputs.shape[0], self.draws, self.internal_batch_size, inputs):
            base = bank[indices[sample, draw]] if bank is not None else source.draw_pairs(inputs, sample, draw, seeds)  # type: ignore[index]
            difference = inputs[sample] - base
            points = base + factors[sample, draw].view(view) * difference
            gradients, _, _ = input_gradients(model, points, None if targets is None else targets[sample], sample)
            total.index_add_(0, sample, difference * gradients)
        return total / self.draws
