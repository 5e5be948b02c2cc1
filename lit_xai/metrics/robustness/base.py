"""What the robustness metrics that re-run the explainer share: the explainer (set by the callback, as
for `MaxSensitivity`), draws seeded per (sample, draw) (`lit_xai.explainers.seeding`), every
(image, draw) perturbed input explained in chunks (`lit_xai.chunking`), and draws whose prediction
changed left out where a metric asks for it.

A map is prepared as quantus prepares it when asked: |phi| (`abs`) and divided by its own max |phi|
(`normalise`; quantus divides by the max over the batch, which makes an image's value depend on its
batch: lit-xai normalises each image alone).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from lit_xai.checks import check_int, check_positive_int
from lit_xai.chunking import check_internal_batch_size, pair_chunks
from lit_xai.explainers.seeding import pair_draws, sample_seeds
from lit_xai.metrics.common import SkippingMean, check_explainer, explain_rows, metric_passes
from lit_xai.metrics.faithfulness.steps import prepared_map
from lit_xai.targets import ForwardArgs, TargetsLike, model_outputs

ExplainerFn = Callable[[nn.Module, Tensor, Tensor | None], Tensor]


def predicted_class(outputs: Tensor) -> Tensor:
    """argmax class `(B,)` of `(B, K)` outputs; a one-output model's class is 0 (a regressor never flips)."""
    return outputs.flatten(1).argmax(dim=1)


class ReexplainingMetric(SkippingMean):
    """A per-image value from `draws` perturbed copies of each input and the explainer's maps of them.

    Subclasses define `perturb(inputs, sample_seeds, draw) -> perturbed inputs` (or `noise`) and
    `draw_values(...)`; `reduce` is "mean" or "max" over the kept draws.

    Args (shared):
        explainer: the explainer that produced the maps; None until set (the callback sets it).
        nr_samples: draws per image.
        abs, normalise: how maps are prepared (quantus' per-metric defaults).
        skip_changed_predictions: leave out draws whose predicted class differs from the input's (quantus'
            `return_nan_when_prediction_changes`); an image with no draw left is NaN in `last_values`, left
            out of the mean and counted in `skipped`.
        seed: seed of the draws, per (sample, draw).
        internal_batch_size: perturbed inputs per explainer call (None: automatic, `lit_xai.chunking`).
    """

    reduce = "mean"
    needs_outputs = False

    def __init__(
        self,
        explainer: ExplainerFn | None = None,
        nr_samples: int = 200,
        abs: bool = False,
        normalise: bool = False,
        skip_changed_predictions: bool = False,
        seed: int = 0,
        internal_batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_explainer(explainer)
        check_int(seed, "seed")
        self.explainer = explainer
        self.nr_samples = check_positive_int(nr_samples, "nr_samples")
        self.abs, self.normalise = bool(abs), bool(normalise)
        self.skip_changed_predictions = bool(skip_changed_predictions)
        self.seed = seed
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    @property
    def draws(self) -> int:
        return self.nr_samples

    @abc.abstractmethod
    def perturb(self, inputs: Tensor, seeds: list[int], draw: Tensor) -> Tensor:
        """The perturbed inputs `(k, C, *spatial)` of the rows `inputs` (seeds and draw numbers per row)."""

    @abc.abstractmethod
    def draw_values(self, x: Tensor, xs: Tensor, a: Tensor, a_s: Tensor, outputs: Tensor | None, outputs_s: Tensor | None, rows: Tensor) -> Tensor:
        """Per-row value `(k,)` float64 of a draw: inputs x, xs `(k, C, *spatial)`, prepared maps a, a_s `(k, N)`,
        the model's outputs on x and xs `(k, K)` when `needs_outputs`, and the rows' samples `(k,)`."""

    def prepare(self, model: nn.Module, inputs: Tensor) -> None:
        """Called once per update inside the model call, with the channel-first batch (before the draws)."""

    def values(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> Tensor:
        """Per-image values `(B,)` float64 (NaN where no draw was kept), without updating the state."""
        if self.explainer is None:
            raise ValueError(
                f"{type(self).__name__} needs the explainer that produced the maps: {type(self).__name__}(explainer=...) "
                "(ExplainerCallback sets it for each of its explainers)"
            )
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            batch = inputs.shape[0]
            self.prepare(model, inputs)
            seeds = sample_seeds(inputs, self.seed)
            phi = prepared_map(saliency.to(inputs.device), self.abs, self.normalise)
            tracked = self.needs_outputs or self.skip_changed_predictions
            outputs = model_outputs(model, inputs).flatten(1).double() if tracked else None
            values = torch.empty(batch, self.draws, dtype=torch.float64, device=inputs.device)
            kept = torch.ones(batch, self.draws, dtype=torch.bool, device=inputs.device)
            for image, draw in pair_chunks(batch, self.draws, self.internal_batch_size, inputs):
                perturbed = self.perturb(inputs[image], [seeds[i] for i in image.tolist()], draw)
                maps = explain_rows(self.explainer, model, perturbed, None if resolved is None else resolved[image], image)
                if tuple(maps.shape[1:]) != tuple(saliency.shape[1:]):
                    raise ValueError(
                        f"the explainer's maps have shape {tuple(maps.shape[1:])} per sample but the saliency has "
                        f"{tuple(saliency.shape[1:])}: pass the maps this explainer produced"
                    )
                outputs_s = model_outputs(model, perturbed, image).flatten(1).double() if tracked else None
                a_s = prepared_map(maps.to(inputs.device), self.abs, self.normalise)
                values[image, draw] = self.draw_values(
                    inputs[image], perturbed, phi[image], a_s, None if outputs is None else outputs[image], outputs_s, image
                )
                if self.skip_changed_predictions:
                    kept[image, draw] = predicted_class(outputs_s) == predicted_class(outputs[image])
            if self.reduce == "mean":
                reduced = torch.where(kept, values, 0.0).sum(dim=1) / kept.sum(dim=1)
            else:
                reduced = torch.where(kept, values, -math.inf).amax(dim=1)
            return torch.where(kept.any(dim=1), reduced, math.nan)

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        values = self.values(model, inputs, saliency, targets, forward_args)
        self.add_kept(values, ~values.isnan(), (
            f"{type(self).__name__}: every draw of every sample of this batch changed the prediction; the "
            f"{len(values)} samples are left out and counted in `skipped`"
        ))


def check_number(value: object, name: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or (positive and value <= 0):
        raise ValueError(f"{name} must be a finite number{' > 0' if positive else ''}, got {value!r}")
    return float(value)


class AdditiveNoiseMetric(ReexplainingMetric):
    """A re-explaining metric whose perturbation adds seeded noise to each row: x_s = x + noise(seed, draw),
    each element drawn from `noise_law()`."""

    @abc.abstractmethod
    def noise_law(self) -> tuple[str, float, float]:
        """("uniform", low, high) or ("normal", mean, std): the law of every noise element."""

    def noise_rows(self, shape: tuple[int, ...], seeds: list[int], draws: list[int]) -> Tensor:
        """Additive noise `(k, *shape)` (float32, CPU): row i is draw `draws[i]` of the sample whose seed is `seeds[i]`."""
        law, first, second = self.noise_law()
        if law == "uniform":
            return pair_draws(shape, seeds, draws).mul_(second - first).add_(first)  # low + (high - low) U(0, 1)
        return pair_draws(shape, seeds, draws, normal=True).mul_(second).add_(first)  # mean + std N(0, 1)

    def noise(self, shape: tuple[int, ...], seed: int, draw: int) -> Tensor:
        """Additive noise of draw `draw` shaped like one sample (one row of `noise_rows`)."""
        return self.noise_rows(shape, [seed], [draw])[0]

    def perturb(self, inputs: Tensor, seeds: list[int], draw: Tensor) -> Tensor:
        noise = self.noise_rows(tuple(inputs.shape[1:]), seeds, draw.tolist())
        return inputs + noise.to(device=inputs.device, dtype=inputs.dtype)
