"""Checks and model passes shared by the faithfulness metrics."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torchmetrics import Metric

from lit_xai.checks import all_finite
from lit_xai.chunking import index_chunks, retry_out_of_memory
from lit_xai.explainers.base import Explainer
from lit_xai.model_state import EvalMode
from lit_xai.targets import (
    Output,
    Score,
    Target,
    TargetsLike,
    check_channel_dim,
    check_score,
    check_targets,
    current_call,
    model_call,
    model_outputs,
    resolve_targets,
    target_probabilities,
    to_channels_first,
    to_user_layout,
    unwrap_module,
)


def check_metric_inputs(inputs: Tensor, saliency: Tensor) -> None:
    """Inputs `(B, C, H, W)` or `(B, C, T)`; saliency `(B, *spatial)`, finite."""
    if not isinstance(inputs, Tensor) or inputs.ndim not in (3, 4):
        raise ValueError(f"inputs must be a tensor (B, C, H, W) or (B, C, T), got shape {tuple(getattr(inputs, 'shape', ()))}")
    expected = (inputs.shape[0], *inputs.shape[2:])
    if not isinstance(saliency, Tensor) or tuple(saliency.shape) != expected:
        got = tuple(saliency.shape) if isinstance(saliency, Tensor) else type(saliency).__name__
        hint = " (reduce the channels first, e.g. saliency.abs().sum(1))" if got == tuple(inputs.shape) else ""
        raise ValueError(f"saliency must have shape (B, *spatial) = {expected} to match the inputs, got {got}{hint}")
    if all_finite(inputs, saliency):  # one synchronisation for both; which one it was is looked up only on failure
        return
    if not all_finite(inputs):
        raise ValueError("inputs contain NaN or inf; check the data and its normalisation")
    raise ValueError("saliency contains NaN or inf; check the explainer's output")


def batched_target_scores(
    model: nn.Module,
    batch: Tensor,
    targets: Tensor | Target | None,
    internal_batch_size: int | None,
    batch_size: int | None = None,
    samples: Tensor | None = None,
) -> Tensor:
    """Metric convention (`target_probabilities`): the target's score of every row of `batch`, float64, in
    chunks (`lit_xai.chunking`; `batch_size` is the caller's batch size for automatic chunks). `targets` has a
    row per row of `batch`; `samples` says which sample each row is (default: row b is sample b)."""
    scores = []
    for chunk in index_chunks(batch.shape[0], internal_batch_size, batch, batch_size):
        if len(chunk) == batch.shape[0]:  # one pass over all rows: nothing to gather
            outputs = model_outputs(model, batch, chunk if samples is None else samples)
            return target_probabilities(outputs, targets).double()
        outputs = model_outputs(model, batch[chunk], chunk if samples is None else samples[chunk])
        scores.append(target_probabilities(outputs, None if targets is None else targets[chunk]).double())
    return torch.cat(scores)


def batched_outputs(model: nn.Module, batch: Tensor, internal_batch_size: int | None, batch_size: int | None = None) -> Tensor:
    """The model's outputs on every row of `batch`, in chunks (`lit_xai.chunking`), concatenated; for passes
    without extra inputs (row b is sample b), e.g. rows that every sample shares."""
    outputs = []
    for chunk in index_chunks(batch.shape[0], internal_batch_size, batch, batch_size):
        if len(chunk) == batch.shape[0]:
            return model_outputs(model, batch, chunk)
        outputs.append(model_outputs(model, batch[chunk], chunk))
    return torch.cat(outputs)


def metric_layout(metric: object, inputs: Tensor, saliency: Tensor | None) -> tuple[Tensor, int]:
    """The inputs channel-first (`metric.channel_dim`: the user's channel axis) and checked against the
    saliency; returns them and the channel axis."""
    if not isinstance(inputs, Tensor):
        raise ValueError(f"inputs must be a tensor (B, C, H, W) or (B, C, T), got {type(inputs).__name__}")
    channel_dim = check_channel_dim(getattr(metric, "channel_dim", 1), inputs.ndim)
    inputs = to_channels_first(inputs, channel_dim)
    if saliency is not None:
        check_metric_inputs(inputs, saliency)
    return inputs, channel_dim


class MetricCall(NamedTuple):
    """What a metric update works on inside `metric_passes`: the model to run (a compiled model's own
    module), the inputs channel-first `(B, C, *spatial)`, the saliency `(B, *spatial)` and the targets
    (the argmax on the unperturbed inputs when None; None for a one-output regressor; a `Target` as given)."""

    model: nn.Module
    inputs: Tensor
    saliency: Tensor | None
    targets: Tensor | Target | None


# the pass on the unperturbed inputs that resolved the targets in the open `metric_passes`: (model, inputs,
# targets, the targets' scores), or None when no pass resolved them
_RESOLVING_PASS: ContextVar[tuple[nn.Module, Tensor, Any, Tensor] | None] = ContextVar("lit_xai_resolving_pass", default=None)


@contextmanager
def metric_passes(
    metric: object,
    model: nn.Module,
    inputs: Tensor,
    saliency: Tensor | None,
    targets: TargetsLike,
    forward_args: Tensor | tuple[Tensor, ...] | None = None,
    resolve: bool = True,
) -> Iterator[MetricCall]:
    """The one entry of every model-based metric update (`lit_xai.targets`, "The user's model"): the inputs'
    layout (`metric.channel_dim`), the checks, the model's extra inputs (`forward_args`), how its outputs
    are read (`metric.output`) and scored (`metric.scoring`, the `score=` option); no gradients, the model's state kept inside.
    `resolve=False`: the targets are checked but None stays None (metrics that read no targets skip the pass that
    would resolve them)."""
    inputs, channel_dim = metric_layout(metric, inputs, saliency)
    saliency = None if saliency is None else saliency.to(inputs.device)
    model = unwrap_module(model)
    targets = check_targets(targets, inputs.shape[0], inputs.device)
    call = model_call(inputs.shape[0], forward_args, getattr(metric, "output", None), getattr(metric, "scoring", None), channel_dim, inputs.device)
    with call, torch.no_grad(), EvalMode(model):  # metric passes change no parameter's requires_grad
        resolving = None
        if resolve and (targets is None or is_binary_call()):
            outputs = model_outputs(model, inputs)
            targets = resolve_targets(outputs, targets)
            resolving = (model, inputs, targets, target_probabilities(outputs, targets).double())
        token = _RESOLVING_PASS.set(resolving)  # set in every update, so that no enclosing update's pass is read
        try:
            yield MetricCall(model, inputs, saliency, targets)
        finally:
            _RESOLVING_PASS.reset(token)


def known_original_scores(model: nn.Module, inputs: Tensor, targets: Tensor | Target | None) -> Tensor | None:
    """The targets' scores `(B,)` float64 on the unperturbed `inputs` when the open `metric_passes` ran them
    with this model to resolve the targets (`targets=None`); else None."""
    resolving = _RESOLVING_PASS.get()
    if resolving is not None and resolving[0] is model and resolving[1] is inputs and resolving[2] is targets:
        return resolving[3]
    return None


def original_scores(model: nn.Module, inputs: Tensor, targets: Tensor | Target | None, internal_batch_size: int | None) -> Tensor:
    """The targets' scores `(B,)` float64 on the unperturbed `inputs` (`batched_target_scores`), without a pass
    where they are known (`known_original_scores`: a direct caller without targets pays one pass over the
    batch, not two)."""
    known = known_original_scores(model, inputs, targets)
    return known if known is not None else batched_target_scores(model, inputs, targets, internal_batch_size)


def check_explainer(explainer: object) -> None:
    """A metric's `explainer` is None (the callback sets it) or callable as `explainer(model, inputs, targets)`."""
    if explainer is not None and not callable(explainer):
        raise TypeError(f"explainer must be callable as explainer(model, inputs, targets), got {type(explainer).__name__}")


def explain_rows(explainer: Callable[..., Tensor], model: nn.Module, inputs: Tensor, targets: Tensor | Target | None, rows: Tensor | None) -> Tensor:
    """Run `explainer` from inside a metric on channel-first `inputs` whose samples are `rows` (None: the
    batch), with the current call's extra inputs, layout, output and score (metrics that re-explain)."""
    call = current_call()
    args = call.args_for(inputs.shape[0], rows)
    if isinstance(explainer, Explainer):
        return explainer(
            model, to_user_layout(inputs, call.channel_dim), targets, args or None,
            channel_dim=call.channel_dim, output=call.output, score=call.score,
        )
    if args or call.channel_dim != 1 or call.output is not None or call.score is not None:
        raise ValueError(
            f"{type(explainer).__name__} is a plain callable explainer(model, inputs, targets); with forward_args, channel_dim, "
            "output or score use a lit_xai Explainer, which takes them"
        )
    return explainer(model, inputs, targets)


def is_binary_call() -> bool:
    return current_call().score == "sigmoid"


_BOOKKEEPING = frozenset({"_computed", "_update_count"})  # torchmetrics' per-update attributes (`Metric._wrap_update`)


class PerImageMean(Metric):
    """A metric whose value is the mean over images of a per-image value; also its standard error.

    Sum states (`total`, `total_sq`, `count`, all `dist_reduce_fx="sum"`) so processes synchronise exactly.
    `last_values` holds the per-image values of the latest update (this process's, not a state: for
    figures that show each image's value).

    Metrics that run the model read it as `lit_xai.targets` says ("The user's model"): `score` (None:
    softmax for `(B, K > 1)`, the raw output of a one-output regressor; "softmax", "sigmoid" for multi-label
    and one-logit binary models, "raw", or a callable `outputs -> (B, K)` probabilities), `output` (a
    callable that picks the scores from what the model returns) and `channel_dim` (the inputs' channel
    axis, -1 for `(B, T, C)` series). `update(..., forward_args=...)` passes extra per-sample inputs.
    """

    is_differentiable = False
    full_state_update = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every subclass's `update` halves its chunks and runs again on out of memory (`lit_xai.chunking`);
        updates add to the states only after their last model pass, so a retried update counts once."""
        super().__init_subclass__(**kwargs)
        if "update" in cls.__dict__:
            cls.update = retry_out_of_memory(cls.__dict__["update"])  # type: ignore[method-assign]

    def __init__(self, score: Score = None, output: Output | None = None, channel_dim: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scoring, self.output, self.channel_dim = check_score(score), output, channel_dim
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total_sq", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.last_values: Tensor | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _BOOKKEEPING:  # set twice by every update: plain attributes, never parameters, buffers or modules
            self.__dict__[name] = value
        else:
            super().__setattr__(name, value)

    def add_values(self, values: Tensor) -> None:
        """Accumulate per-image values `(B,)`."""
        if values.requires_grad or values.dtype != torch.float64 or values.device != self.total.device:
            values = values.detach().to(self.total.device, torch.float64)
        flat = values if values.ndim == 1 else values.reshape(-1)
        # states are replaced, never changed in place (`+=`): under CPU `ddp_spawn` a metric that lives on the
        # LightningModule reaches every worker with its state tensors in one shared memory block, so an in-place
        # sum would add every process's values into all of them and the synchronisation would add them again.
        # They are plain tensor attributes (neither parameters nor buffers), so they go straight into the
        # instance's dict, where nn.Module.__setattr__ would put them after its checks (2.5 us each).
        self.__dict__.update(
            last_values=values,
            total=self.total + flat.sum(),
            total_sq=self.total_sq + flat.dot(flat),
            count=self.count + flat.numel(),
        )

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


class SkippingMean(PerImageMean):
    """A `PerImageMean` that leaves out the samples it cannot score (each subclass says when): `add_kept`
    accumulates the kept ones, keeps every sample in `last_values` (NaN where left out) and counts the others
    in the `skipped` state, which `skipped_samples()` returns summed over processes (ExplainerCallback logs
    it as `xai/<explainer>/<metric>_skipped`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("skipped", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def add_kept(self, values: Tensor, kept: Tensor, none_kept: str) -> None:
        """Accumulate `values[kept]` (`(B,)`, `kept` bool); warn `none_kept` when no sample of the batch is kept."""
        if not bool(kept.any()):
            warnings.warn(none_kept, stacklevel=3)
        self.add_values(values[kept])
        self.last_values = values.detach().to(self.total.device)  # every sample, NaN where left out
        self.skipped = self.skipped + int((~kept).sum())

    def skipped_samples(self) -> Tensor:
        """Samples left out since the last reset, summed over processes."""
        with self.sync_context(dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync, should_unsync=True):
            return self.skipped.clone()
