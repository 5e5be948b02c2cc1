"""ROAD: RemOve And Debias (Rong et al., "A Consistent and Efficient Evaluation Strategy for Attribution
Methods", ICML 2022), as torchmetrics Metrics.

Deletion-style metrics fill removed pixels with a constant or a blur, which pushes images off the data
distribution and lets the *shape* of the removed region, not its content, change the model's output.
ROAD fills them by noisy linear imputation instead: every removed position takes the weighted mean of
its 8 neighbours (weights 1/6 for the 4 direct, 1/12 for the 4 diagonal neighbours; the paper's), which
for the whole removed set is the sparse linear system

    d_i x_i - sum_{j removed} w_ij x_j = sum_{j kept} w_ij v_j          (i removed)

(d_i = the sum of the weights of i's neighbours inside the image, v the input), solved per channel, plus
N(0, noise_std^2) noise on the imputed values (absolute, in input units). For series `(B, C, T)` the
neighbours are the two adjacent steps, weight 1/2 each.

With n positions and a percentile q (the percent removed), k_q = n - ceil((n - 1)(100 - q) / 100)
positions are removed: the most salient first ("morf", lower is better) or the least salient first
("lerf", higher is better), ties in index order. (k_q is the count that pytorch-grad-cam's threshold
`cam < np.percentile(cam, 100 - q)` keeps out for distinct values.) The target score p_q (softmax
probability of the target class; a one-output regressor's raw prediction) is read on each imputed input;

    ROAD = mean_q p_q,       ROADCombined = (mean_q p_q^LeRF - mean_q p_q^MoRF) / 2,

the latter as in pytorch-grad-cam's `ROADCombined` (higher is better). pytorch-grad-cam reports the
change p_q - p(x) instead of p_q; the difference of the two orders is the same either way.

The system is solved by conjugate gradients (Jacobi preconditioner, float64) to a relative residual
`tolerance`, all (image, percentile) pairs of a chunk together (`lit_xai.chunking`); noise is seeded per
(sample, percentile) (`lit_xai.explainers.seeding`), so 2 processes give what 1 gives.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_xai.checks import check_int
from lit_xai.chunking import check_internal_batch_size, pair_chunks
from lit_xai.explainers.seeding import pair_generator, sample_seeds
from lit_xai.metrics.common import PerImageMean, metric_passes
from lit_xai.metrics.perturbation import ORDERS, unit_ranks
from lit_xai.targets import ForwardArgs, TargetsLike, model_outputs, target_probabilities

DEFAULT_PERCENTILES = (10, 20, 30, 40, 50, 60, 70, 80, 90)


def neighbour_kernel(spatial_dims: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """The imputation weights as a convolution kernel `(1, 1, 3, 3)` (images) or `(1, 1, 3)` (series)."""
    if spatial_dims == 2:
        kernel = torch.tensor([[1 / 12, 1 / 6, 1 / 12], [1 / 6, 0.0, 1 / 6], [1 / 12, 1 / 6, 1 / 12]], dtype=dtype, device=device)
    else:
        kernel = torch.tensor([0.5, 0.0, 0.5], dtype=dtype, device=device)
    return kernel.view(1, 1, *kernel.shape)


def linear_imputation(
    inputs: Tensor, removed: Tensor, tolerance: float = 1e-7, max_iterations: int | None = None
) -> Tensor:
    """The inputs `(N, C, *spatial)` with the positions where `removed` `(N, *spatial)` is True replaced by
    the solution of the neighbour-mean system (module docstring), float64, without noise.

    Conjugate gradients with a Jacobi preconditioner, every (sample, channel) system at once, until each
    residual is below `tolerance` times its right-hand side's norm (or `max_iterations`, default
    4 * (sum of the spatial sizes) + 50).
    """
    spatial = inputs.shape[2:]
    batch, channels = inputs.shape[:2]
    conv = F.conv2d if len(spatial) == 2 else F.conv1d
    kernel = neighbour_kernel(len(spatial), torch.float64, inputs.device)
    values = inputs.double().reshape(batch * channels, 1, *spatial)
    mask = removed.to(device=inputs.device, dtype=torch.float64).unsqueeze(1).repeat_interleave(channels, dim=0)
    weight_sum = conv(torch.ones(1, 1, *spatial, dtype=torch.float64, device=inputs.device), kernel, padding=1)

    axes = tuple(range(2, 2 + len(spatial)))

    def dot(a: Tensor, b: Tensor) -> Tensor:  # per (sample, channel) system, shaped to broadcast
        return (a * b).sum(dim=axes, keepdim=True)

    rhs = mask * conv(values * (1 - mask), kernel, padding=1)
    inverse_weight = 1 / weight_sum
    filled = values.clone()
    active = torch.arange(rhs.shape[0], device=inputs.device)  # systems still iterating
    solution = torch.zeros_like(rhs)
    residual = rhs.clone()
    preconditioned = residual * inverse_weight
    direction = preconditioned.clone()
    rz = dot(residual, preconditioned)
    limit = (tolerance**2) * dot(rhs, rhs)
    iterations = max_iterations if max_iterations is not None else 4 * sum(spatial) + 50
    tiny = torch.finfo(torch.float64).tiny
    for iteration in range(iterations + 1):
        if iteration % 4 == 0 or iteration == iterations:
            # retire the systems that have converged (and all of them after the last iteration)
            done = (dot(residual, residual) <= limit).view(-1) if iteration < iterations else torch.ones_like(active, dtype=torch.bool)
            if bool(done.any()):
                finished = active[done]
                filled[finished] = torch.where(mask[done] > 0, solution[done], filled[finished])
                keep = ~done
                active, mask, solution, residual, direction = active[keep], mask[keep], solution[keep], residual[keep], direction[keep]
                rz, limit = rz[keep], limit[keep]
                if not len(active):
                    break
        # A p = d p - K p on the removed positions (p is 0 elsewhere)
        product = conv(direction, kernel, padding=1).neg_().addcmul_(weight_sum, direction).mul_(mask)
        step = rz / dot(direction, product).clamp_min(tiny)
        solution.addcmul_(step, direction)
        residual.addcmul_(step, product, value=-1)
        preconditioned = residual * inverse_weight
        rz_next = dot(residual, preconditioned)
        direction.mul_(rz_next / rz.clamp_min(tiny)).add_(preconditioned)
        rz = rz_next
    return filled.view(batch, channels, *spatial)


def removed_counts(positions: int, percentiles: Sequence[float]) -> list[int]:
    """k_q = n - ceil((n - 1)(100 - q) / 100) for each percentile q (exact arithmetic)."""
    counts = []
    for q in percentiles:
        kept = Fraction(positions - 1) * (100 - Fraction(str(q))) / 100
        counts.append(positions - (-(-kept.numerator // kept.denominator)))
    return counts


def check_percentiles(percentiles: Sequence[float]) -> tuple[float, ...]:
    values = tuple(percentiles) if isinstance(percentiles, (list, tuple)) else None
    if not values or not all(isinstance(q, (int, float)) and not isinstance(q, bool) and 0 < q < 100 for q in values):
        raise ValueError(f"percentiles must be a non-empty list of numbers in (0, 100) (the percent of positions removed), got {percentiles!r}")
    return values


class ROAD(PerImageMean):
    """ROAD (Rong et al. 2022): mean target score over percentiles of positions removed and filled by
    noisy linear imputation (module docstring). MoRF: lower is better; LeRF: higher is better.

    `update(model, inputs, saliency, targets=None)`: inputs `(B, C, *spatial)`, saliency `(B, *spatial)`,
    targets class indices `(B,)` (default: the model's argmax on the unperturbed inputs). `compute()`
    returns the mean over images of the mean score over percentiles; `curve()` the mean score at each
    percentile `(len(percentiles),)`.

    Args:
        order: "morf" (most relevant first) or "lerf" (least relevant first).
        percentiles: percents of positions removed, each in (0, 100).
        noise_std: standard deviation of the noise added to the imputed values (input units; 0: none).
        seed: seed of the noise, drawn per (sample, percentile).
        tolerance: relative residual at which the imputation's linear solve stops.
        internal_batch_size: imputed inputs per pass (None: automatic, `lit_xai.chunking`).
    """

    higher_is_better = None  # depends on the order: MoRF lower, LeRF higher

    def __init__(
        self,
        order: str = "morf",
        percentiles: Sequence[float] = DEFAULT_PERCENTILES,
        noise_std: float = 0.01,
        seed: int = 0,
        tolerance: float = 1e-7,
        internal_batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS} (most / least relevant first), got {order!r}")
        if isinstance(noise_std, bool) or not isinstance(noise_std, (int, float)) or noise_std < 0:
            raise ValueError(f"noise_std must be a number >= 0, got {noise_std!r}")
        check_int(seed, "seed")
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance < 1:
            raise ValueError(f"tolerance must be a number in (0, 1), got {tolerance!r}")
        self.order = order
        self.percentiles = check_percentiles(percentiles)
        self.noise_std = float(noise_std)
        self.seed = seed
        self.tolerance = float(tolerance)
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)
        self.add_state("curve_sum", torch.zeros(len(self.percentiles), dtype=torch.float64), dist_reduce_fx="sum")

    def noise(self, sample: Tensor, seed: int, percentile: int) -> Tensor:
        """N(0, 1) noise shaped like one sample, for its `percentile`-th percentile (and this order)."""
        generator = pair_generator(seed, percentile, ORDERS.index(self.order))
        return torch.randn(sample.shape, generator=generator, dtype=torch.float64)

    def curves(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike, forward_args: ForwardArgs = None) -> Tensor:
        """The per-image scores `(B, len(percentiles))` without updating the state."""
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            batch, spatial = inputs.shape[0], inputs.shape[2:]
            ranks, positions = unit_ranks(saliency.to(inputs.device), 1, self.order)
            counts = torch.tensor(removed_counts(positions, self.percentiles), device=inputs.device)
            seeds = sample_seeds(inputs, self.seed) if self.noise_std > 0 else []
            scores = torch.empty(batch, len(self.percentiles), dtype=torch.float64, device=inputs.device)
            for image, step in pair_chunks(batch, len(self.percentiles), self.internal_batch_size, inputs):
                removed = (ranks.index_select(0, image) < counts[step].unsqueeze(1)).view(len(image), *spatial)
                filled = linear_imputation(inputs.index_select(0, image), removed, self.tolerance)
                if self.noise_std > 0:
                    noise = torch.stack([self.noise(inputs[0], seeds[i], s) for i, s in zip(image.tolist(), step.tolist())])
                    filled = filled + self.noise_std * noise.to(filled.device) * removed.unsqueeze(1)
                outputs = model_outputs(model, filled.to(inputs.dtype), image)
                scores[image, step] = target_probabilities(outputs, None if resolved is None else resolved[image]).double()
            return scores

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        curves = self.curves(model, inputs, saliency, targets, forward_args)
        self.add_values(curves.mean(dim=1))
        self.curve_sum = self.curve_sum + curves.sum(dim=0).to(self.curve_sum.device)  # replaced, not in place (PerImageMean.add_values)

    def curve(self) -> Tensor:
        """Mean score at each percentile over all images seen (synchronised across processes)."""
        with self.sync_context(dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync, should_unsync=True):
            return (self.curve_sum / self.count.clamp(min=1)).float()


class ROADCombined(PerImageMean):
    """(ROAD LeRF - ROAD MoRF) / 2 per image, averaged (pytorch-grad-cam's `ROADCombined`); higher is better.

    Takes ROAD's arguments except `order`; `update(model, inputs, saliency, targets=None)`.
    """

    higher_is_better = True

    def __init__(
        self,
        percentiles: Sequence[float] = DEFAULT_PERCENTILES,
        noise_std: float = 0.01,
        seed: int = 0,
        tolerance: float = 1e-7,
        internal_batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        options = dict(percentiles=percentiles, noise_std=noise_std, seed=seed, tolerance=tolerance, internal_batch_size=internal_batch_size)
        self.morf = ROAD(order="morf", **options)
        self.lerf = ROAD(order="lerf", **options)

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        lerf = self.lerf.curves(model, inputs, saliency, targets, forward_args).mean(dim=1)
        morf = self.morf.curves(model, inputs, saliency, targets, forward_args).mean(dim=1)
        self.add_values((lerf - morf) / 2)
