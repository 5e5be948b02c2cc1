"""Target scores: the quantity an explainer differentiates (DESIGN.md: the raw output, a logit)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def check_targets(targets: Tensor | int | None, batch_size: int, device: torch.device) -> Tensor | None:
    """`None`, an int for every sample, or an integer tensor `(B,)`; returned as a long tensor on `device`."""
    if batch_size == 0:
        raise ValueError("the batch is empty: explain or score at least one sample")
    if targets is None:
        return None
    if isinstance(targets, int):
        return torch.full((batch_size,), targets, dtype=torch.long, device=device)
    if not isinstance(targets, Tensor) or targets.is_floating_point() or targets.is_complex():
        raise ValueError(
            f"targets must be None, an int, or an integer tensor of shape ({batch_size},) holding class indices, got {targets!r}"
        )
    if targets.ndim == 0:
        targets = targets.expand(batch_size)
    if targets.shape != (batch_size,):
        raise ValueError(f"targets must have shape ({batch_size},) to match the batch, got {tuple(targets.shape)}")
    return targets.to(device=device, dtype=torch.long)


def check_outputs(outputs: object, batch_size: int) -> Tensor:
    """A model's output must be a tensor `(B, num_classes)`, `(B, 1)` or `(B,)`."""
    if not isinstance(outputs, Tensor):
        raise TypeError(
            f"the model returned {type(outputs).__name__}; explainers need a tensor of shape (B, num_classes) "
            "or (B,) for a one-output regressor (wrap the model so that forward returns the logits)"
        )
    if outputs.ndim not in (1, 2) or outputs.shape[0] != batch_size:
        raise ValueError(
            f"the model's output has shape {tuple(outputs.shape)}; expected (B, num_classes) or (B,) with B = {batch_size}"
        )
    return outputs


def model_outputs(model: nn.Module, inputs: Tensor) -> Tensor:
    """`model(inputs)`, checked; a failure inside the model is re-raised saying which inputs it got."""
    try:
        outputs = model(inputs)
    except (RuntimeError, ValueError, TypeError) as error:
        raise ValueError(
            f"{type(model).__name__} failed on inputs of shape {tuple(inputs.shape)} ({type(error).__name__}: {error}); "
            "check that the inputs have the shape and dtype the model expects"
        ) from error
    return check_outputs(outputs, inputs.shape[0])


def is_regression(outputs: Tensor) -> bool:
    """A one-output model (`(B,)` or `(B, 1)`) is a regressor: its target is the output itself."""
    return outputs.ndim == 1 or outputs.shape[1] == 1


def resolve_targets(outputs: Tensor, targets: Tensor | None) -> Tensor | None:
    """`None` becomes the argmax class for classifiers (stays `None` for regressors); indices are range-checked."""
    outputs = check_outputs(outputs, outputs.shape[0])
    if is_regression(outputs):
        if targets is not None and bool((targets != 0).any()):
            raise ValueError("the model has one output (regression): targets must be None or 0")
        return None
    if targets is None:
        return outputs.detach().argmax(dim=1)
    checked_indices(outputs, targets)
    return targets


def checked_indices(outputs: Tensor, targets: Tensor | None) -> Tensor:
    """Targets as a column of indices into `outputs`' classes, or a ValueError naming the valid range."""
    if targets is None:
        raise ValueError("a classifier's scores need targets; call resolve_targets first")
    num_classes = outputs.shape[1]
    if bool(((targets < 0) | (targets >= num_classes)).any()):
        raise ValueError(f"targets must be class indices in [0, {num_classes}), got values {targets.unique().tolist()[:10]}")
    return targets.view(-1, 1)


def select_scores(outputs: Tensor, targets: Tensor | None) -> Tensor:
    """Raw output of each sample's target class, `(B,)`; for a regressor the output itself."""
    if is_regression(outputs):
        return outputs.reshape(outputs.shape[0])
    return outputs.gather(1, checked_indices(outputs, targets)).squeeze(1)


def target_probabilities(outputs: Tensor, targets: Tensor | None) -> Tensor:
    """Metric convention: softmax probability of the target class; a regressor's raw prediction."""
    if is_regression(outputs):
        return outputs.reshape(outputs.shape[0])
    return torch.softmax(outputs, dim=1).gather(1, checked_indices(outputs, targets)).squeeze(1)
