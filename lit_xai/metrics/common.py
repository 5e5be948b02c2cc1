"""Checks and model passes shared by the faithfulness metrics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import math
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import Metric

from lit_xai.chunking import index_chunks, retry_out_of_memory
from lit_xai.model_state import preserved_model_state
from lit_xai.targets import check_targets, model_outputs, resolve_targets, target_probabilities


def check_metric_inputs(inputs: Tensor, saliency: Tensor) -> None:
    """Inputs `(B, C, H, W)` or `(B, C, T)`; saliency `(B, *spatial)`, finite."""
    if not isinstance(inputs, Tensor) or inputs.ndim not in (3, 4):
        raise ValueError(f"inputs must be a tensor (B, C, H, W) or (B, C, T), got shape {tuple(getattr(inputs, 'shape', ()))}")
    if not bool(torch.isfinite(inputs).all()):
        raise ValueError("inputs contain NaN or inf; check the data and its normalisation")
    expected = (inputs.shape[0], *inputs.shape[2:])
    if not isinstance(saliency, Tensor) or tuple(saliency.shape) != expected:
        got = tuple(saliency.shape) if isinstance(saliency, Tensor) else type(saliency).__name__
        hint = " (reduce the channels first, e.g. saliency.abs().sum(1))" if got == tuple(inputs.shape) else ""
        raise ValueError(f"saliency must have shape (B, *spatial) = {expected} to match the inputs, got {got}{hint}")
    if not bool(torch.isfinite(saliency).all()):
        raise ValueError("saliency contains NaN or inf; check the explainer's output")


def batched_target_scores(
    model: nn.Module, batch: Tensor, targets: Tensor | None, internal_batch_size: int | None, batch_size: int | None = None
) -> Tensor:
    """Metric convention: softmax probability of the target (a regressor's raw output), float64, in chunks
    (`lit_xai.chunking`; `batch_size` is the caller's batch size for automatic chunks)."""
    scores = []
    for chunk in index_chunks(batch.shape[0], internal_batch_size, batch, batch_size):
        outputs = model_outputs(model, batch[chunk])
        scores.append(target_probabilities(outputs, None if targets is None else targets[chunk]).double())
    return torch.cat(scores)


@contextmanager
def metric_passes(model: nn.Module, inputs: Tensor, targets: Tensor | int | None) -> Iterator[Tensor | None]:
    """No gradients and the model's state kept inside; yields the checked targets (the argmax on the
    unperturbed inputs when None; None for a one-output regressor)."""
    targets = check_targets(targets, inputs.shape[0], inputs.device)
    with torch.no_grad(), preserved_model_state(model):
        yield resolve_targets(model_outputs(model, inputs), None) if targets is None else targets


class PerImageMean(Metric):
    """A metric whose value is the mean over images of a per-image value; also its standard error.

    Sum states (`total`, `total_sq`, `count`, all `dist_reduce_fx="sum"`) so processes synchronise exactly.
    `last_values` holds the per-image values of the latest update (this process's, not a state: for
    figures that show each image's value).
    """

    is_differentiable = False
    full_state_update = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every subclass's `update` halves its chunks and runs again on out of memory (`lit_xai.chunking`);
        updates add to the states only after their last model pass, so a retried update counts once."""
        super().__init_subclass__(**kwargs)
        if "update" in cls.__dict__:
            cls.update = retry_out_of_memory(cls.__dict__["update"])  # type: ignore[method-assign]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total_sq", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.last_values: Tensor | None = None

    def add_values(self, values: Tensor) -> None:
        """Accumulate per-image values `(B,)`."""
        values = values.double().to(self.total.device)
        self.last_values = values.detach()
        # states are replaced, never changed in place (`+=`): under CPU `ddp_spawn` a metric that lives on the
        # LightningModule reaches every worker with its state tensors in one shared memory block, so an in-place
        # sum would add every process's values into all of them and the synchronisation would add them again
        self.total = self.total + values.sum()
        self.total_sq = self.total_sq + values.square().sum()
        self.count = self.count + values.numel()

    def compute(self) -> Tensor:
        return (self.total / self.count).float() if self.count > 0 else torch.tensor(math.nan)

    def standard_error(self) -> Tensor:
        """Standard error of the mean over images (synchronised across processes); NaN below 2 images."""
        with self.sync_context(dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync, should_unsync=True):
            n = self.count.double()
            if n < 2:
                return torch.tensor(math.nan)
            variance = (self.total_sq - self.total.square() / n) / (n - 1)
            return (variance.clamp_min(0) / n).sqrt().float()
