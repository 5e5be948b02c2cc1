"""Avg-Sensitivity (Yeh et al., "On the (In)fidelity and Sensitivity of Explanations", NeurIPS 2019) and
the Local Lipschitz Estimate (Alvarez-Melis and Jaakkola, "On the Robustness of Interpretability Methods",
ICML Workshop 2018), as torchmetrics Metrics that re-run the explainer (`ReexplainingMetric`).

With phi = E(x) and s = 1..S draws x_s = x + d_s, E re-run on x_s for the same target,

    AvgSensitivity         = mean_s ||E(x_s) - phi||_F / ||phi||_F,   d_s ~ U(-r, r) per element
                             (quantus: lower_bound r = 0.2, nr_samples 200; ||phi|| = 0 counts as 1,
                             where quantus divides by zero)
    LocalLipschitzEstimate = max_s ||E(x_s) - phi||_2 / (||x_s - x||_2 + 1e-10),   d_s ~ N(mean, std^2)
                             per element (quantus: mean 0, std 0.1, nr_samples 200, maps normalised)

Both lower is better. Cost: nr_samples explainer calls per image.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from lit_xai.metrics.robustness.base import (
    AdditiveNoiseMetric,
    check_number,
)


class AvgSensitivity(AdditiveNoiseMetric):
    """Mean relative change of the map under uniform input noise (module docstring); lower is better.

    Args:
        lower_bound: r, the noise's half-width in input units (quantus' `lower_bound`, default 0.2).
        upper_bound: None for U(-r, r); a number for U(lower_bound, upper_bound) (quantus' convention).
        explainer, nr_samples (200), abs (False), normalise (False), skip_changed_predictions (False),
        seed, internal_batch_size: as `ReexplainingMetric`.
    """

    higher_is_better = False
    reduce = "mean"

    def __init__(self, lower_bound: float = 0.2, upper_bound: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lower_bound = check_number(lower_bound, "lower_bound")
        self.upper_bound = None if upper_bound is None else check_number(upper_bound, "upper_bound")
        if self.upper_bound is not None and self.upper_bound <= self.lower_bound:
            raise ValueError(f"upper_bound must exceed lower_bound, got {lower_bound!r} and {upper_bound!r}")

    def noise_law(self) -> tuple[str, float, float]:
        if self.upper_bound is None:
            return "uniform", -self.lower_bound, self.lower_bound
        return "uniform", self.lower_bound, self.upper_bound

    def draw_values(self, x: Tensor, xs: Tensor, a: Tensor, a_s: Tensor, outputs: Tensor | None, outputs_s: Tensor | None, rows: Tensor) -> Tensor:
        norm = a.norm(dim=1)
        return (a_s - a).norm(dim=1) / norm.where(norm > 0, 1.0)


class LocalLipschitzEstimate(AdditiveNoiseMetric):
    """Largest ratio of map change to input change under Gaussian input noise (module docstring); lower is better.

    Args:
        perturb_mean, perturb_std: the noise's mean and standard deviation (quantus' defaults 0 and 0.1).
        explainer, nr_samples (200), abs (False), normalise (True), skip_changed_predictions (False), seed,
        internal_batch_size: as `ReexplainingMetric`.
    """

    higher_is_better = False
    reduce = "max"

    def __init__(self, perturb_mean: float = 0.0, perturb_std: float = 0.1, normalise: bool = True, **kwargs: Any) -> None:
        super().__init__(normalise=normalise, **kwargs)
        self.perturb_mean = check_number(perturb_mean, "perturb_mean")
        self.perturb_std = check_number(perturb_std, "perturb_std", positive=True)

    def noise_law(self) -> tuple[str, float, float]:
        return "normal", self.perturb_mean, self.perturb_std

    def draw_values(self, x: Tensor, xs: Tensor, a: Tensor, a_s: Tensor, outputs: Tensor | None, outputs_s: Tensor | None, rows: Tensor) -> Tensor:
        return (a_s - a).norm(dim=1) / ((xs - x).flatten(1).double().norm(dim=1) + 1e-10)
