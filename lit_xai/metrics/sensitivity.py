"""Max-Sensitivity (Yeh et al., "On the (In)fidelity and Sensitivity of Explanations", NeurIPS 2019), as a
torchmetrics Metric.

How much a map changes when the input moves a little: with perturbations d drawn uniformly from the
L-infinity ball of `radius` (every input element independently, U(-radius, radius), as captum's
`sensitivity_max`), and the explainer E that produced the map phi = E(x),

    SENS_max = max_s ||E(x + d_s) - phi||_F / ||phi||_F      (||phi|| = 0 counts as 1, as captum)

over `samples` draws, the explainer explaining the same target class as for x. Lower is better.

The metric needs the explainer itself: pass it as `explainer`; in `ExplainerCallback` leave it unset and
each explainer's copy of the metric gets that explainer. Draws are seeded per (sample, draw)
(`lit_xai.explainers.seeding`); all images x draws are explained in chunks (`lit_xai.chunking`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import torch
from torch import Tensor, nn

from lit_xai.checks import check_int, check_positive_int
from lit_xai.chunking import check_internal_batch_size, pair_chunks
from lit_xai.explainers.seeding import pair_draws, sample_seeds
from lit_xai.metrics.common import PerImageMean, check_explainer, explain_rows, metric_passes
from lit_xai.targets import ForwardArgs, TargetsLike

ExplainerFn = Callable[[nn.Module, Tensor, Optional[Tensor]], Tensor]


class MaxSensitivity(PerImageMean):
    """Max-Sensitivity (Yeh et al. 2019): the largest relative change of the map under small uniform
    perturbations of the input (module docstring); lower is better.

    `update(model, inputs, saliency, targets=None)`: inputs `(B, C, *spatial)`, saliency `(B, *spatial)`
    the explainer's map of the inputs, targets class indices `(B,)` (default: the model's argmax).

    Args:
        explainer: the explainer that produced the maps, `explainer(model, inputs, targets)`; None until
            set (the callback sets it per explainer).
        radius: half-width of the uniform perturbation, in input units.
        samples: perturbations per image.
        seed: seed of the draws, per (sample, draw).
        internal_batch_size: perturbed inputs per explainer call (None: automatic, `lit_xai.chunking`).
    """

    higher_is_better = False

    def __init__(
        self,
        explainer: ExplainerFn | None = None,
        radius: float = 0.02,
        samples: int = 16,
        seed: int = 0,
        internal_batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_explainer(explainer)
        if isinstance(radius, bool) or not isinstance(radius, (int, float)) or radius <= 0:
            raise ValueError(f"radius must be a number > 0, got {radius!r}")
        check_int(seed, "seed")
        self.explainer = explainer
        self.radius = float(radius)
        self.samples = check_positive_int(samples, "samples")
        self.seed = seed
        self.internal_batch_size = check_internal_batch_size(internal_batch_size)

    def draws(self, shape: tuple[int, ...], seeds: list[int], draws: list[int]) -> Tensor:
        """Perturbations `(k, *shape)`, U(-radius, radius) (float32, CPU): row i is draw `draws[i]` of the sample whose seed is `seeds[i]`."""
        return pair_draws(shape, seeds, draws).mul_(2).sub_(1).mul_(self.radius)

    def draw(self, shape: tuple[int, ...], seed: int, draw: int) -> Tensor:
        """Perturbation number `draw` shaped like one sample (one row of `draws`)."""
        return self.draws(shape, [seed], [draw])[0]

    def values(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike, forward_args: ForwardArgs = None) -> Tensor:
        """Per-image max-sensitivity `(B,)` float64, without updating the state."""
        if self.explainer is None:
            raise ValueError(
                "MaxSensitivity needs the explainer that produced the maps: MaxSensitivity(explainer=...) "
                "(ExplainerCallback sets it for each of its explainers)"
            )
        with metric_passes(self, model, inputs, saliency, targets, forward_args) as (model, inputs, saliency, resolved):
            batch, shape = inputs.shape[0], tuple(inputs.shape[1:])
            seeds = sample_seeds(inputs, self.seed)
            phi = saliency.to(inputs.device).double().flatten(1)
            norms = phi.norm(dim=1)
            norms = torch.where(norms == 0, torch.ones_like(norms), norms)
            ratios = torch.empty(batch, self.samples, dtype=torch.float64, device=inputs.device)
            for image, draw in pair_chunks(batch, self.samples, self.internal_batch_size, inputs):
                shift = self.draws(shape, [seeds[i] for i in image.tolist()], draw.tolist())
                perturbed = inputs[image] + shift.to(device=inputs.device, dtype=inputs.dtype)
                maps = explain_rows(self.explainer, model, perturbed, None if resolved is None else resolved[image], image)
                if tuple(maps.shape[1:]) != tuple(saliency.shape[1:]):
                    raise ValueError(
                        f"the explainer's maps have shape {tuple(maps.shape[1:])} per sample but the saliency has "
                        f"{tuple(saliency.shape[1:])}: pass the maps this explainer produced"
                    )
                change = maps.to(phi.device).double().flatten(1) - phi[image]
                ratios[image, draw] = change.norm(dim=1) / norms[image]
            return ratios.max(dim=1).values

    def update(self, model: nn.Module, inputs: Tensor, saliency: Tensor, targets: TargetsLike = None, forward_args: ForwardArgs = None) -> None:
        self.add_values(self.values(model, inputs, saliency, targets, forward_args))
