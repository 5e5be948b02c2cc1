"""KernelSHAP and LIME: a weighted linear model of the target score over sampled segment coalitions."""

from __future__ import annotations

import abc
import math
from typing import Optional, Union

import torch
from torch import Tensor, nn

from lit_xai.checks import check_positive_int
from lit_xai.explainers.attributions import expand_batch
from lit_xai.explainers.perturbation.coalitions import SegmentExplainer
from lit_xai.explainers.scripting import scripted
from lit_xai.explainers.seeding import pair_generator, sample_seeds
from lit_xai.segments import Features, PatchSize, segment_counts
from lit_xai.targets import Target

KERNEL_SHAP_ENDPOINT_WEIGHT = 1e6  # captum's stand-in for the infinite weight of the empty and the full coalition


def weighted_linear_fit(design: Tensor, targets: Tensor, weights: Tensor) -> Tensor:
    """Coefficients (without the intercept) of the weighted least-squares fit with an intercept, as
    scikit-learn's `LinearRegression(sample_weight=w)` computes them: centre X and y at their weighted
    means, scale rows by sqrt(w), take the minimum-norm solution (pseudo-inverse). float64 throughout."""
    design, targets, weights = design.double(), targets.double(), weights.double()
    total = weights.sum()
    centred_x = design - (weights[:, None] * design).sum(0) / total
    centred_y = targets - (weights * targets).sum() / total
    root = weights.sqrt()
    return torch.linalg.pinv(root[:, None] * centred_x) @ (root * centred_y)


@scripted
def lasso_coordinate_descent(design: Tensor, targets: Tensor, penalty: float, max_iter: int, tol: float) -> Tensor:
    """argmin_w (1 / (2n)) ||y - X w||^2 + penalty ||w||_1 by cyclic coordinate descent (scikit-learn's
    `enet_coordinate_descent` with l2 = 0): w_j <- S(X_j^T r_j, n penalty) / ||X_j||^2, r_j the residual
    without feature j, S the soft threshold; until max |dw| <= tol * max |w| (or `max_iter` sweeps)."""
    n, features = design.shape[0], design.shape[1]
    weights = torch.zeros(features, dtype=design.dtype, device=design.device)
    norms = (design * design).sum(0)
    residual = targets.clone()
    for _ in range(max_iter):
        largest_step = torch.zeros((), dtype=design.dtype)
        for j in range(features):
            if bool(norms[j] == 0):
                continue
            old = weights[j].clone()
            rho = torch.dot(design[:, j], residual) + norms[j] * old
            new = torch.sign(rho) * (rho.abs() - n * penalty).clamp(min=0.0) / norms[j]
            residual = residual - design[:, j] * (new - old)
            weights[j] = new
            largest_step = torch.maximum(largest_step, (new - old).abs())
        if bool(largest_step <= tol * weights.abs().max().clamp(min=1e-300)):
            break
    return weights


def weighted_lasso_fit(design: Tensor, targets: Tensor, weights: Tensor, alpha: float, max_iter: int = 100000, tol: float = 1e-12) -> Tensor:
    """Coefficients of scikit-learn's `Lasso(alpha).fit(X, y, sample_weight=w)` (with an intercept) at
    convergence: weights rescaled to sum to n, X and y centred at their weighted means, rows scaled by
    sqrt(w), then `lasso_coordinate_descent`. float64."""
    design, targets, weights = design.double(), targets.double(), weights.double()
    weights = weights * (weights.shape[0] / weights.sum())
    total = weights.sum()
    root = weights.sqrt()
    centred_x = root[:, None] * (design - (weights[:, None] * design).sum(0) / total)
    centred_y = root * (targets - (weights * targets).sum() / total)
    return lasso_coordinate_descent(centred_x, centred_y, float(alpha), max_iter, tol)


class SurrogateExplainer(SegmentExplainer):
    """Base of KernelSHAP and LIME: per sample, `coalitions(...)` (bool `(S, n)`) and their weights; the
    segment values are the coefficients of the weighted linear fit of the target scores on the coalitions."""

    def __init__(
        self,
        features: Features = "patches",
        patch_size: PatchSize = None,
        by: str = "space",
        baseline: Union[float, Tensor] = 0.0,
        samples: int = 128,
        seed: int = 0,
        internal_batch_size: Optional[int] = None,
        reduce: str = "abs_sum",
    ) -> None:
        super().__init__(features, patch_size, by, baseline, internal_batch_size, reduce)
        self.samples, self.seed = check_positive_int(samples, "samples"), seed

    def coalitions(self, inputs: Tensor) -> list[Tensor]:
        """Each sample's coalitions `(S_b, segments_b)` (bool; inputs channel-first, as the explainer sees them)."""
        return self.draw_all(inputs, segment_counts(self.segment_ids(inputs)))

    def draw_all(self, inputs: Tensor, counts: Tensor) -> list[Tensor]:
        return [self.draw(n, pair_generator(own_seed, -1, stream=6)) for own_seed, n in zip(sample_seeds(inputs, self.seed), counts.tolist())]

    @abc.abstractmethod
    def draw(self, segments: int, generator: torch.Generator) -> Tensor:
        """The coalitions `(S, segments)` (bool) of one sample."""

    @abc.abstractmethod
    def weights(self, kept: Tensor, inputs: Tensor, ids: Tensor, sample: int) -> Tensor:
        """The regression weights `(S,)` of sample `sample`'s coalitions `kept` `(S, segments)`."""

    def fit(self, design: Tensor, targets: Tensor, weights: Tensor) -> Tensor:
        """The surrogate's coefficients (weighted least squares with an intercept)."""
        return weighted_linear_fit(design, targets, weights)

    def segment_values(self, model: nn.Module, inputs: Tensor, ids: Tensor, counts: Tensor, full: Tensor, targets: Tensor | Target | None) -> Tensor:
        device, width = inputs.device, int(counts.max())
        draws = self.draw_all(inputs, counts)
        kept = torch.zeros(sum(d.shape[0] for d in draws), width, dtype=torch.bool)
        rows, start = [], 0
        for b, coalitions in enumerate(draws):
            kept[start : start + coalitions.shape[0], : coalitions.shape[1]] = coalitions
            rows.append(torch.full((coalitions.shape[0],), b, dtype=torch.long))
            start += coalitions.shape[0]
        kept, rows_tensor = kept.to(device), torch.cat(rows).to(device)
        scores = self.coalition_scores(model, inputs, ids, rows_tensor, kept, targets)
        values = inputs.new_zeros(inputs.shape[0], width)
        start = 0
        for b, coalitions in enumerate(draws):
            count, n = coalitions.shape
            chunk = slice(start, start + count)
            start += count
            weights = self.weights(kept[chunk, :n], inputs, ids, b)
            values[b, :n] = self.fit(kept[chunk, :n], scores[chunk], weights).to(values.dtype)
        return values


def shapley_size_distribution(segments: int) -> Tensor:
    """p(k) proportional to (M - 1) / (k (M - k)), k = 1 .. M - 1: the size of a coalition drawn with the
    Shapley kernel (a coalition of size k then uniform among the C(M, k))."""
    k = torch.arange(1, segments, dtype=torch.float64)
    weights = (segments - 1) / (k * (segments - k))
    return weights / weights.sum()


class KernelShap(SurrogateExplainer):
    """KernelSHAP (Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS 2017;
    captum's `KernelShap`): the coefficients of the linear model g(z) = phi_0 + sum_j phi_j z_j fitted to
    the target scores y^c(x_z) of coalitions z in {0, 1}^M (z_j = 1: segment j kept), weighted by the Shapley
    kernel

        pi(z) = (M - 1) / (C(M, |z|) |z| (M - |z|)).

    As captum: the full and the empty coalition come first with weight 1e6 (standing in for the
    infinite weight that forces g(1) = y(x), g(0) = y(baseline)), then `samples - 2` coalitions drawn with
    probability pi(z) (size k with p(k) ~ (M - 1) / (k (M - k)), then uniformly among the C(M, k)), each with
    weight 1. When `samples >= 2^M`, every coalition is used once with weight pi(z) instead (1e6 for the
    two ends): the fit is then the exact Shapley values (up to the ends' finite weight). Draws are per sample
    (`seed`); `coalitions(inputs)` returns them. One pass per coalition; a weighted least-squares solve per sample.
    """

    def draw(self, segments: int, generator: torch.Generator) -> Tensor:
        if segments < 63 and self.samples >= 2**segments:
            bits = torch.arange(2**segments).unsqueeze(1).bitwise_right_shift(torch.arange(segments)).bitwise_and(1).bool()
            order = torch.cat([torch.tensor([2**segments - 1, 0]), torch.arange(1, 2**segments - 1)])
            return bits[order]
        ends = torch.stack([torch.ones(segments, dtype=torch.bool), torch.zeros(segments, dtype=torch.bool)])
        count = max(0, self.samples - 2)
        if segments < 2 or count == 0:
            return ends[: min(self.samples, 2)]
        sizes = torch.multinomial(shapley_size_distribution(segments), count, replacement=True, generator=generator) + 1
        ranks = torch.rand(count, segments, generator=generator).argsort(dim=1).argsort(dim=1)
        return torch.cat([ends, ranks < sizes.unsqueeze(1)])

    def weights(self, kept: Tensor, inputs: Tensor, ids: Tensor, sample: int) -> Tensor:
        segments = kept.shape[1]
        size = kept.sum(1).double()
        ends = (size == 0) | (size == segments)
        if not (segments < 63 and self.samples >= 2**segments):
            return torch.where(ends, torch.full_like(size, KERNEL_SHAP_ENDPOINT_WEIGHT), torch.ones_like(size))
        choose = torch.exp(math.lgamma(segments + 1) - torch.lgamma(size + 1) - torch.lgamma(segments - size + 1))
        denominator = torch.where(ends, torch.ones_like(size), choose * size * (segments - size))
        return torch.where(ends, torch.full_like(size, KERNEL_SHAP_ENDPOINT_WEIGHT), (segments - 1) / denominator)


class Lime(SurrogateExplainer):
    """LIME (Ribeiro et al., "'Why Should I Trust You?': Explaining the Predictions of Any Classifier", KDD
    2016; captum's `Lime` with a linear regressor): the coefficients of the weighted linear fit of the target
    scores y^c(x_z) over `samples` coalitions z with each segment kept with probability 1/2, weighted by

        pi_x(z) = exp(-d(x, x_z)^2 / (2 kernel_width^2)),   d = 1 - cos(x, x_z)  (flattened inputs),

    captum's default similarity (cosine distance in input space). `regressor="linear"` is ordinary weighted
    least squares with an intercept (scikit-learn's `LinearRegression`); `"lasso"` the L1-penalised fit
    (1 / (2 sum w)) sum_i w_i (y_i - g(z_i))^2 + alpha ||phi||_1 (scikit-learn's `Lasso(alpha)` with sample
    weights, captum's default interpretable model with alpha = 0.01), solved by coordinate descent to
    convergence. Draws are per sample (`seed`); `coalitions(inputs)` returns them.
    """

    def __init__(
        self,
        features: Features = "patches",
        patch_size: PatchSize = None,
        by: str = "space",
        baseline: Union[float, Tensor] = 0.0,
        samples: int = 128,
        kernel_width: float = 1.0,
        regressor: str = "linear",
        alpha: float = 0.01,
        seed: int = 0,
        internal_batch_size: Optional[int] = None,
        reduce: str = "abs_sum",
    ) -> None:
        super().__init__(features, patch_size, by, baseline, samples, seed, internal_batch_size, reduce)
        if isinstance(kernel_width, bool) or not isinstance(kernel_width, (int, float)) or kernel_width <= 0:
            raise ValueError(f"kernel_width must be a number > 0, got {kernel_width!r}")
        if regressor not in ("linear", "lasso"):
            raise ValueError(f'regressor must be "linear" (weighted least squares) or "lasso" (L1-penalised, alpha=), got {regressor!r}')
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha < 0:
            raise ValueError(f"alpha must be a number >= 0 (the lasso's L1 penalty), got {alpha!r}")
        self.kernel_width, self.regressor, self.alpha = float(kernel_width), regressor, float(alpha)

    def fit(self, design: Tensor, targets: Tensor, weights: Tensor) -> Tensor:
        if self.regressor == "lasso":
            return weighted_lasso_fit(design, targets, weights, self.alpha)
        return weighted_linear_fit(design, targets, weights)

    def draw(self, segments: int, generator: torch.Generator) -> Tensor:
        return torch.rand(self.samples, segments, generator=generator) < 0.5

    def weights(self, kept: Tensor, inputs: Tensor, ids: Tensor, sample: int) -> Tensor:
        x, baseline = inputs[sample], expand_batch(self.baseline, inputs, "baseline")[sample]
        segment = ids[sample]
        keep = kept.gather(1, segment.flatten().unsqueeze(0).expand(kept.shape[0], -1)).view(kept.shape[0], *segment.shape)
        if segment.ndim < x.ndim:
            keep = keep.unsqueeze(1)
        perturbed = torch.where(keep, x, baseline).flatten(1).float()
        cosine = torch.nn.functional.cosine_similarity(perturbed, x.flatten().float().unsqueeze(0), dim=1)
        distance = 1 - cosine
        return torch.exp(-(distance**2) / (2 * self.kernel_width**2))
