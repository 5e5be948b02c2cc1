"""Input-space attributions `(B, C, *spatial)` and how their channels are reduced for metrics.

`InputSpaceExplainer` is the base of every input-space method: a subclass computes the attributions
`(B, C, *spatial)` and the base reduces them over channels with `reduce`. The helpers below are the
passes those methods share: the clean pass that fixes the targets, the chunked gradient pass over
(sample, repeat) pairs (path points, noise draws) and the chunked score pass (masks, windows).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from lit_xai.chunking import pair_chunks
from lit_xai.explainers.base import Explainer
from lit_xai.targets import model_outputs, resolved_scores

REDUCTIONS = ("none", "sum", "abs_sum", "max_abs")


def check_reduce(reduce: str) -> str:
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    return reduce


def reduce_channels(attributions: Tensor, reduce: str) -> Tensor:
    """"none": `(B, C, *s)` unchanged; "sum": sum over C; "abs_sum": sum of |.|; "max_abs": max of |.|."""
    if reduce == "none":
        return attributions
    if reduce == "sum":
        return attributions.sum(dim=1)
    if reduce == "abs_sum":
        return attributions.abs().sum(dim=1)
    return attributions.abs().amax(dim=1)


class InputSpaceExplainer(Explainer):
    """An attribution per input element `(B, C, *spatial)`, reduced over channels by `reduce`
    ("none" keeps `(B, C, *spatial)`; "sum", "abs_sum", "max_abs" give `(B, *spatial)`)."""

    def __init__(self, reduce: str = "abs_sum") -> None:
        self.reduce = check_reduce(reduce)

    @abc.abstractmethod
    def attributions(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        """The unreduced attributions `(B, C, *spatial)` (inputs and targets as in `Explainer.explain`)."""

    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        return reduce_channels(self.attributions(model, inputs, targets), self.reduce)


def clean_pass(model: nn.Module, inputs: Tensor, targets: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """Target scores `(B,)` of the unperturbed inputs (no graph) and the resolved targets (argmax when None)."""
    with torch.no_grad():
        outputs = model_outputs(model, inputs)
    return resolved_scores(outputs, targets)


def input_gradients(
    model: nn.Module, points: Tensor, targets: Tensor | None, samples: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """`(d y^c / d points, y^c, targets)` per row of `points` (a fresh leaf is made here), the targets
    resolved from this pass (argmax when None). Samples do not interact in eval mode, so the gradient of
    the summed scores is the per-row gradient. Parameter `.grad` is never touched (`torch.autograd.grad`
    with respect to the points only). `samples`: each row's sample (`lit_xai.targets.model_outputs`)."""
    points = points.detach().requires_grad_(True)
    outputs = model_outputs(model, points, samples)
    scores, targets = resolved_scores(outputs, targets)
    (gradients,) = torch.autograd.grad(scores.sum(), points, allow_unused=True)
    if gradients is None:
        raise ValueError(
            f"the output of {type(model).__name__} does not depend on its inputs; input-space attribution needs a path "
            "from the inputs to the output"
        )
    return gradients, scores.detach(), targets


def chunked_gradients(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor | None,
    repeats: int,
    points: Callable[[Tensor, Tensor], Tensor],
    internal_batch_size: int | None,
) -> Iterator[tuple[Tensor, Tensor, Tensor, Tensor]]:
    """For every chunk of the `(sample, repeat)` grid (`lit_xai.chunking.pair_chunks`): the sample and
    repeat indices, the derived inputs `points(sample, repeat)` and the target gradients there."""
    for sample, repeat in pair_chunks(inputs.shape[0], repeats, internal_batch_size, inputs):
        derived = points(sample, repeat)
        gradients, _, _ = input_gradients(model, derived, None if targets is None else targets[sample], sample)
        yield sample, repeat, derived, gradients


def chunked_scores(
    model: nn.Module,
    inputs: Tensor,
    repeats: int,
    perturbed: Callable[[Tensor, Tensor], Tensor],
    score: Callable[[Tensor, Tensor], Tensor],
    internal_batch_size: int | None,
) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """For every chunk of the `(sample, repeat)` grid: sample and repeat indices and `score(outputs, sample)`
    of the model on `perturbed(sample, repeat)`, without gradients."""
    with torch.no_grad():
        for sample, repeat in pair_chunks(inputs.shape[0], repeats, internal_batch_size, inputs):
            yield sample, repeat, score(model_outputs(model, perturbed(sample, repeat), sample), sample)


def expand_batch(value: float | Tensor, inputs: Tensor, name: str) -> Tensor:
    """A scalar, or a tensor broadcastable to the inputs `(B, C, *spatial)` (one sample's shape `(C, *spatial)`
    included), as a tensor of the inputs' shape, dtype and device (a broadcast view, no copy)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Tensor)):
        raise ValueError(f"{name} must be a number or a tensor broadcastable to the inputs, got {type(value).__name__}")
    tensor = torch.as_tensor(value, dtype=inputs.dtype, device=inputs.device)
    try:
        return torch.broadcast_to(tensor, inputs.shape)
    except RuntimeError as error:
        raise ValueError(
            f"{name} of shape {tuple(tensor.shape)} does not broadcast to the inputs' shape {tuple(inputs.shape)}; "
            "give a number, one sample's shape (C, *spatial), or the batch's shape"
        ) from error
