"""Mass-preserving (semantic-aware) upsampling of layer maps: redistribution, not interpolation.

Universal Semantic-Aware Upsampling (USU): "Attribution methods in explainable AI rely on upsampling
techniques that were designed for natural images, not saliency maps" (abstract). Upsampling is read as
a mass redistribution whose ratio form preserves the attribution mass and the order of importance, with
model-derived boundaries deciding where the mass of a coarse cell goes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_xai.explainers.base import gradients_enabled
from lit_xai.explainers.gradients import forward_with_activations
from lit_xai.explainers.upsample import ModelUpsampler
from lit_xai.model_state import preserved_model_state
from lit_xai.targets import model_outputs, resolved_scores

PotentialFn = Callable[[nn.Module, Tensor, Optional[Tensor]], Tensor]
POTENTIALS = ("activations", "gradients", "input_edges")


def nearest_cells(coarse: int, fine: int, device: torch.device) -> Tensor:
    """The coarse cell of each of `fine` positions along one axis: the index nearest-neighbour upsampling
    (`F.interpolate(mode="nearest")`) reads, so a constant potential reproduces it exactly."""
    index = torch.arange(coarse, dtype=torch.float32, device=device).view(1, 1, coarse)
    return F.interpolate(index, size=fine, mode="nearest").view(fine).round().long()


def axis_kernel(coarse: int, fine: int, bandwidth: float, device: torch.device, dtype: torch.dtype) -> Tensor:
    """`(coarse, fine)`: K[c, p] = exp(-d^2 / (2 bandwidth^2)), d the distance (in fine positions) from p to the
    positions of cell c (0 inside); the indicator of the cell when bandwidth = 0."""
    cells = nearest_cells(coarse, fine, device)
    inside = cells.view(1, -1) == torch.arange(coarse, device=device).view(-1, 1)
    if bandwidth == 0:
        return inside.to(dtype)
    position = torch.arange(fine, device=device, dtype=dtype)
    lower = torch.where(inside, position, math.inf).amin(dim=1, keepdim=True)
    upper = torch.where(inside, position, -math.inf).amax(dim=1, keepdim=True)
    distance = torch.clamp(lower - position, min=0) + torch.clamp(position - upper, min=0)
    return torch.exp(-(distance**2) / (2 * bandwidth**2))


def redistribute(maps: Tensor, potential: Tensor, bandwidth: float = 0.0) -> Tensor:
    """Spread each coarse cell's mass a_c over the fine positions in proportion to the potential phi >= 0.

        U(a)_p = sum_c a_c K_c(p) phi(p) / sum_q K_c(q) phi(q)

    K_c the cell's kernel: the indicator of the positions of cell c when bandwidth = 0, so that
    U(a)_p = a_c phi(p) / sum_{q in c} phi(q) for the cell c holding p; with bandwidth > 0 a Gaussian of the
    distance to the cell (in fine positions). A cell whose kernel sees no potential (sum = 0) spreads its
    mass by K_c alone (uniformly over the cell when bandwidth = 0). Every cell's distribution sums to one, so
    sum_p U(a)_p = sum_c a_c, and with bandwidth = 0 each cell keeps its own mass. The kernel is separable
    per axis, so the work is two small matrix products per map.

    Args:
        maps: `(B, *s)` coarse maps (1 or 2 spatial axes).   potential: `(B, *S)` >= 0 at the output size.
    """
    if maps.ndim not in (2, 3) or potential.ndim != maps.ndim or potential.shape[0] != maps.shape[0]:
        raise ValueError(
            f"maps (B, *s) and potential (B, *S) need the same batch and 1 or 2 spatial axes, got {tuple(maps.shape)} "
            f"and {tuple(potential.shape)}"
        )
    if any(S < s for S, s in zip(potential.shape[1:], maps.shape[1:])):
        raise ValueError(f"mass-preserving upsampling needs an output at least the map's size, got {tuple(potential.shape[1:])} < {tuple(maps.shape[1:])}")
    dtype = torch.promote_types(maps.dtype, torch.float32)
    maps, potential = maps.to(dtype), potential.to(dtype)
    kernels = [axis_kernel(s, S, bandwidth, maps.device, dtype) for s, S in zip(maps.shape[1:], potential.shape[1:])]
    if maps.ndim == 2:
        (k,) = kernels
        to_cells = lambda x: torch.einsum("cp,bp->bc", k, x)  # noqa: E731
        to_fine = lambda x: torch.einsum("cp,bc->bp", k, x)  # noqa: E731
    else:
        kh, kw = kernels
        to_cells = lambda x: torch.einsum("hp,wq,bpq->bhw", kh, kw, x)  # noqa: E731
        to_fine = lambda x: torch.einsum("hp,wq,bhw->bpq", kh, kw, x)  # noqa: E731
    totals = to_cells(potential)
    seen = totals > torch.finfo(dtype).tiny
    shares = to_fine(torch.where(seen, maps / torch.where(seen, totals, 1.0), 0.0)) * potential
    if not bool(seen.all()):
        unseen = torch.where(seen, 0.0, maps)
        shares = shares + to_fine(unseen / to_cells(torch.ones_like(potential)))
    return shares


def sobel_edges(inputs: Tensor) -> Tensor:
    """Gradient magnitude of the input, summed over channels: Sobel filters (replicate padding) for images
    `(B, C, H, W)`, |central difference| / 2 for series `(B, C, T)`."""
    channels = inputs.shape[1]
    if inputs.ndim == 3:
        padded = F.pad(inputs, (1, 1), mode="replicate")
        return ((padded[..., 2:] - padded[..., :-2]).abs() / 2).sum(dim=1)
    gx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=inputs.dtype, device=inputs.device)
    kernels = torch.stack([gx, gx.t()]).unsqueeze(1).repeat(channels, 1, 1, 1)
    padded = F.pad(inputs, (1, 1, 1, 1), mode="replicate")
    edges = F.conv2d(padded, kernels, groups=channels).view(inputs.shape[0], channels, 2, *inputs.shape[2:])
    return edges.pow(2).sum(dim=2).sqrt().sum(dim=1)


@contextmanager
def every_leaf_output(model: nn.Module) -> Iterator[list[tuple[str, Tensor]]]:
    """Each leaf module's output (cloned) during the forward passes inside the block, in execution order."""
    outputs: list[tuple[str, Tensor]] = []
    with ExitStack() as stack:
        for name, module in model.named_modules():
            if name and not any(True for _ in module.children()):
                hook = lambda m, args, out, name=name: outputs.append((name, out.detach().clone())) if isinstance(out, Tensor) else None  # noqa: E731
                stack.callback(module.register_forward_hook(hook).remove)
        yield outputs


def finest_activations(model: nn.Module, inputs: Tensor) -> tuple[str, Tensor]:
    """The deepest leaf layer whose output `(B, K, *s)` has the highest spatial resolution of the model."""
    with every_leaf_output(model) as outputs:
        model_outputs(model, inputs)
    spatial = [(name, out) for name, out in outputs if out.ndim == inputs.ndim and out.shape[0] == inputs.shape[0]]
    if not spatial:
        raise ValueError(f"{type(model).__name__} has no layer with a spatial output (B, K, *s); pass layer= or another potential")
    finest = max(math.prod(out.shape[2:]) for _, out in spatial)
    return [(name, out) for name, out in spatial if math.prod(out.shape[2:]) == finest][-1]


class MassPreservingUpsampler(ModelUpsampler):
    """Mass-preserving (semantic-aware) upsampling, usable as `upsample=` of any layer explainer.

    ("Universal Semantic-Aware Upsampling", USU: upsampling as ratio-form mass redistribution that provably
    preserves attribution mass and relative importance ordering.) Each coarse cell's attribution mass a_c is
    spread over the pixels p of its cell in proportion to a potential phi(p) >= 0 computed from the model on
    the same input:

        U(a)_p = a_c phi(p) / sum_{q in c} phi(q)        (a uniform split a_c / |c| where phi = 0 on c)

    The cells are those of nearest-neighbour upsampling, so a constant potential gives nearest / cell area.
    The output is mass, not density: sum_{p in c} U(a)_p = a_c, sum_p U(a)_p = sum_c a_c, and the order of
    the cells' masses is that of a; mass never crosses a zero of the potential inside a cell. With
    `bandwidth` > 0 (output pixels) the mass of cell c goes to every pixel with weight
    exp(-d(p, c)^2 / (2 bandwidth^2)) phi(p), normalised per cell (d = distance to the cell, 0 inside):
    smoothing across cell borders that still conserves each cell's mass and the total (`redistribute`).

    Args:
        potential: "activations" (default): channel-summed |activations| of an early high-resolution layer,
            `layer` or, when None, the deepest leaf layer at the model's highest spatial resolution;
            "gradients": channel-summed |dy_c/dx| at the input; "input_edges": Sobel gradient magnitude of
            the input, summed over channels; or a callable `(model, inputs, targets) -> (B, *s')` >= 0.
            A potential not at the output size is resized bilinearly.
        layer: the layer for "activations" (dotted path).   bandwidth: >= 0, in output pixels.

    Call: `upsampler(maps, size, model=model, inputs=inputs, targets=targets)` (layer explainers do this).
    """

    def __init__(self, potential: Union[str, PotentialFn] = "activations", layer: Optional[str] = None, bandwidth: float = 0.0) -> None:
        if not callable(potential) and potential not in POTENTIALS:
            raise ValueError(f"potential must be one of {POTENTIALS} or a callable (model, inputs, targets) -> (B, *s), got {potential!r}")
        if layer is not None and potential != "activations":
            raise ValueError("layer= names the layer of potential='activations'; leave it None for other potentials")
        if not (isinstance(bandwidth, (int, float)) and bandwidth >= 0 and math.isfinite(bandwidth)):
            raise ValueError(f"bandwidth must be a finite number >= 0 (output pixels), got {bandwidth!r}")
        self.potential, self.layer, self.bandwidth = potential, layer, float(bandwidth)

    def __repr__(self) -> str:
        return f"MassPreservingUpsampler(potential={self.potential!r}, layer={self.layer!r}, bandwidth={self.bandwidth!r})"

    def __call__(
        self, maps: Tensor, size: tuple[int, ...], model: Optional[nn.Module] = None, inputs: Optional[Tensor] = None,
        targets: Optional[Tensor] = None,
    ) -> Tensor:
        if model is None or inputs is None:
            raise ValueError("MassPreservingUpsampler derives its potential from the model: call it with model= and inputs=")
        if inputs.shape[0] != maps.shape[0]:
            raise ValueError(f"maps {tuple(maps.shape)} and inputs {tuple(inputs.shape)} must have the same batch size")
        potential = self.potential_map(model, inputs, targets, tuple(size))
        return redistribute(maps, potential, self.bandwidth).to(maps.dtype)

    def potential_map(self, model: nn.Module, inputs: Tensor, targets: Optional[Tensor], size: tuple[int, ...]) -> Tensor:
        """phi `(B, *size)` >= 0 for these inputs (model left as found; works under no_grad/inference_mode)."""
        with preserved_model_state(model), gradients_enabled():
            inputs = inputs.detach().clone()
            if callable(self.potential):
                potential = self.potential(model, inputs, targets)
                if not isinstance(potential, Tensor) or potential.ndim != inputs.ndim - 1 or potential.shape[0] != inputs.shape[0]:
                    raise ValueError(f"the potential callable must return a tensor (B, *s) for inputs {tuple(inputs.shape)}")
                if bool((potential < 0).any()) or not bool(torch.isfinite(potential).all()):
                    raise ValueError("the potential callable returned negative or non-finite values; a potential must be finite and >= 0")
            elif self.potential == "activations":
                with torch.no_grad():
                    if self.layer is None:
                        _, activations = finest_activations(model, inputs)
                    else:
                        _, activations = forward_with_activations(model, self.layer, inputs)
                potential = activations.abs().sum(dim=1)
            elif self.potential == "gradients":
                inputs.requires_grad_(True)
                outputs = model_outputs(model, inputs)
                scores, _ = resolved_scores(outputs, targets)
                (gradients,) = torch.autograd.grad(scores.sum(), inputs)
                potential = gradients.abs().sum(dim=1)
            else:
                potential = sobel_edges(inputs)
        potential = potential.detach().to(torch.float32)
        if tuple(potential.shape[1:]) != tuple(size):
            linear = "linear" if len(size) == 1 else "bilinear"
            potential = F.interpolate(potential.unsqueeze(1), size=tuple(size), mode=linear, align_corners=False).squeeze(1)
        return potential.clamp_min(0)
