"""The user's model, as it is: how every explainer, metric and chunked pass calls it and reads its scores.

One mechanism (DESIGN.md, "The user's model") shared by explainers, metrics and the callback. A call of an
explainer or a metric update opens a `ModelCall` (`model_call(...)`), and every pass inside goes through
`model_outputs(model, inputs, samples)`:

* **outputs**: the model's return value is unwrapped by `unwrap_outputs`: a tensor as it is; an
  `output=` callable `outputs -> Tensor` when given; else a Hugging Face `ModelOutput` (or any object) with
  a `logits` attribute -> `.logits`; a mapping -> its `"logits"` or `"out"` entry (torchvision
  segmentation); a tuple or list -> its first element.
* **extra inputs**: `forward_args` (a tensor or tuple of tensors whose leading dimension is the batch's)
  are passed as `model(inputs, *forward_args)`. A pass over derived inputs (chunks, repeats, masks) names
  the sample each row belongs to (`samples`), and the extra inputs are gathered with the same indices,
  as captum repeats `additional_forward_args`.
* **layout**: inside lit-xai inputs are channel-first `(B, C, *spatial)`; with `channel_dim` != 1 (e.g.
  -1 for `(B, T, C)` series) the channel axis is moved back to where the model expects it for each pass.
* **scores**: explainers explain the raw target score (`select_scores`): the target's logit, a region's
  summed logits, an output index of a regressor, and, for a one-logit binary classifier under
  `score="sigmoid"`, the logit for class 1 and -logit for class 0. Metrics score probabilities
  (`target_probabilities`): `score=None` is softmax for `(B, K > 1)` and the raw output for one-output
  regressors; `"softmax"`, `"sigmoid"` (multi-label, and one-logit binary with p(0) = 1 - sigmoid(logit)),
  `"raw"`, or a callable `outputs -> (B, K)` (per position for segmentation outputs) probabilities.
* **targets**: `None` (the argmax; the output itself for a one-output regressor; an error for a
  multi-output regressor under `score="raw"`), an int, a `(B,)` index tensor, or a `Target` object that
  scores the outputs per sample and is indexed per sample like the inputs (`RegionTarget`).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Union

import torch
from torch import Tensor, nn

Output = Callable[[Any], Tensor]
Score = Union[str, Callable[[Tensor], Tensor], None]
SCORES = ("softmax", "sigmoid", "raw")
ForwardArgs = Union[Tensor, tuple[Tensor, ...], list[Tensor], None]


class Target(abc.ABC):
    """A per-sample target that scores a model's outputs itself (pytorch-grad-cam's target callables).

    Subclasses hold per-sample data with the batch's leading dimension; `index(rows)` returns the target of
    those samples (every chunked method gathers it with its inputs), and `raw(outputs)` / `probability(outputs,
    score)` return one score per row `(rows,)`.
    """

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def index(self, rows: Tensor) -> Target:
        """The target of the samples `rows` (a long tensor of indices into this target's samples)."""

    @abc.abstractmethod
    def to(self, device: torch.device) -> Target: ...

    @abc.abstractmethod
    def raw(self, outputs: Tensor) -> Tensor:
        """The quantity explainers differentiate, `(B,)`."""

    @abc.abstractmethod
    def probability(self, outputs: Tensor, score: Score) -> Tensor:
        """The quantity metrics score, `(B,)`, with `score` applied as documented in the module."""

    def __getitem__(self, rows: Tensor | int | slice) -> Target:
        if isinstance(rows, int):
            rows = torch.tensor([rows])
        elif isinstance(rows, slice):
            rows = torch.arange(len(self))[rows]
        return self.index(rows)


def per_sample(value: Tensor | int, batch_size: int, name: str) -> Tensor:
    value = torch.as_tensor(value)
    if value.ndim == 0:
        value = value.expand(batch_size)
    if value.shape != (batch_size,) or value.is_floating_point():
        raise ValueError(f"{name} must be an int or an integer tensor ({batch_size},), got {tuple(value.shape)} {value.dtype}")
    return value.long()


class RegionTarget(Target):
    """The summed output of one category over a region of each sample: segmentation models
    (pytorch-grad-cam's `SemanticSegmentationTarget`): raw = sum_{ij} y_{c,ij} m_{ij}.

    Args:
        category: the class channel of the `(B, K, H, W)` (or `(B, K, T)`) output, an int or `(B,)` tensor.
        masks: `(B, H, W)` (or `(B, T)`) weights, 1 on the region, at the output's resolution.

    Metrics apply `score` per position (softmax over the K channels by default) and sum the category's
    probability over the mask.
    """

    def __init__(self, category: Tensor | int, masks: Tensor) -> None:
        if not isinstance(masks, Tensor) or masks.ndim < 2:
            raise ValueError(f"RegionTarget masks must be a tensor (B, H, W) or (B, T), got {getattr(masks, 'shape', type(masks).__name__)}")
        self.masks = masks
        self.category = per_sample(category, masks.shape[0], "RegionTarget category").to(masks.device)

    def __len__(self) -> int:
        return self.masks.shape[0]

    def index(self, rows: Tensor) -> RegionTarget:
        rows = rows.to(self.masks.device)
        return RegionTarget(self.category[rows], self.masks[rows])

    def to(self, device: torch.device) -> RegionTarget:
        return RegionTarget(self.category.to(device), self.masks.to(device))

    def _check(self, outputs: Tensor) -> None:
        if outputs.ndim != self.masks.ndim + 1 or outputs.shape[2:] != self.masks.shape[1:]:
            raise ValueError(
                f"RegionTarget needs outputs (B, K, *spatial) with the masks' spatial size {tuple(self.masks.shape[1:])}, "
                f"got outputs of shape {tuple(outputs.shape)}; resize the masks to the model's output resolution"
            )
        if bool((self.category >= outputs.shape[1]).any()) or bool((self.category < 0).any()):
            raise ValueError(f"RegionTarget category must be in [0, {outputs.shape[1]}), got {self.category.unique().tolist()[:10]}")

    def _region_sum(self, values: Tensor) -> Tensor:
        index = self.category.view(-1, *([1] * (values.ndim - 1))).expand(-1, 1, *values.shape[2:])
        picked = values.gather(1, index.to(values.device)).squeeze(1)
        return (picked * self.masks.to(picked.dtype)).flatten(1).sum(dim=1)

    def raw(self, outputs: Tensor) -> Tensor:
        self._check(outputs)
        return self._region_sum(outputs)

    def probability(self, outputs: Tensor, score: Score) -> Tensor:
        self._check(outputs)
        return self._region_sum(probabilities(outputs, score if score is not None else "softmax"))


# ---- the call context --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ModelCall:
    """How the model is called and read inside one explainer call or metric update (see the module)."""

    forward_args: tuple[Tensor, ...] = ()
    output: Output | None = None
    score: Score = None
    channel_dim: int = 1
    batch_size: int | None = None

    def args_for(self, rows: int, samples: Tensor | None) -> tuple[Tensor, ...]:
        """The extra inputs of a pass of `rows` inputs whose samples are `samples` (None: the batch itself)."""
        if not self.forward_args:
            return ()
        if samples is None:
            if rows != self.batch_size:
                raise ValueError(
                    f"a pass of {rows} derived inputs from a batch of {self.batch_size} does not say which sample each belongs to, "
                    "so forward_args cannot follow them; this method does not support forward_args (bind the extra inputs "
                    "in a wrapper model and explain one sample at a time, or use another method)"
                )
            return self.forward_args
        samples = samples.reshape(-1)
        if samples.numel() != rows:
            raise ValueError(f"internal: {samples.numel()} sample indices for a pass of {rows} inputs")
        return tuple(arg.index_select(0, samples.to(arg.device)) for arg in self.forward_args)


_PLAIN_CALL = ModelCall()  # no extra inputs, outputs read and scored by default, channels first
_CALL: ContextVar[ModelCall] = ContextVar("lit_xai_model_call", default=_PLAIN_CALL)


def current_call() -> ModelCall:
    return _CALL.get()


def check_score(score: Score) -> Score:
    if score is None or callable(score) or score in SCORES:
        return score
    raise ValueError(f"score must be None, one of {SCORES} or a callable outputs -> (B, K) probabilities, got {score!r}")


def check_channel_dim(channel_dim: int, ndim: int) -> int:
    """The input's channel axis as a positive index (1 = channels first)."""
    if not isinstance(channel_dim, int) or isinstance(channel_dim, bool) or not -ndim < channel_dim < ndim or channel_dim in (0, -ndim):
        raise ValueError(f"channel_dim must index a non-batch dimension of inputs with {ndim} dimensions (1 or -1 usually), got {channel_dim!r}")
    return channel_dim % ndim


def as_forward_args(forward_args: Tensor | tuple | list | None, batch_size: int, device: torch.device | None = None) -> tuple[Tensor, ...]:
    """`forward_args` as a tuple of tensors with the batch's leading dimension."""
    if forward_args is None:
        return ()
    args = (forward_args,) if isinstance(forward_args, Tensor) else tuple(forward_args)
    for position, arg in enumerate(args):
        if not isinstance(arg, Tensor) or arg.ndim == 0 or arg.shape[0] != batch_size:
            got = tuple(arg.shape) if isinstance(arg, Tensor) else type(arg).__name__
            raise ValueError(
                f"forward_args[{position}] must be a tensor whose first dimension is the batch's ({batch_size}), got {got}; "
                "pass per-sample extra inputs (captum's additional_forward_args), not constants (bind those in the model)"
            )
    return tuple(arg if device is None else arg.to(device) for arg in args)


@contextmanager
def model_call(
    batch_size: int,
    forward_args: Tensor | tuple | list | None = None,
    output: Output | None = None,
    score: Score = None,
    channel_dim: int = 1,
    device: torch.device | None = None,
) -> Iterator[ModelCall]:
    """Open the `ModelCall` every pass inside reads (explainer calls and metric updates open one)."""
    if forward_args is None and output is None and score is None and channel_dim == 1 and _CALL.get() is _PLAIN_CALL:
        yield _PLAIN_CALL  # the plain call is already open: nothing to set (most calls; 5-8 us saved a call)
        return
    if output is not None and not callable(output):
        raise ValueError(f"output must be a callable model outputs -> Tensor, got {output!r}")
    call = ModelCall(as_forward_args(forward_args, batch_size, device), output, check_score(score), channel_dim, batch_size)
    token = _CALL.set(call)
    try:
        yield call
    finally:
        _CALL.reset(token)


def to_channels_first(inputs: Tensor, channel_dim: int) -> Tensor:
    """The user's layout -> lit-xai's `(B, C, *spatial)` (`channel_dim` already checked)."""
    return inputs if channel_dim == 1 else inputs.movedim(channel_dim, 1)


def to_user_layout(inputs: Tensor, channel_dim: int) -> Tensor:
    """lit-xai's `(B, C, *spatial)` -> the layout the model takes."""
    return inputs if channel_dim == 1 else inputs.movedim(1, channel_dim)


def unwrap_module(model: nn.Module) -> nn.Module:
    """The module `torch.compile` wraps (`_orig_mod`), so that hooks run and layer names are its own."""
    inner = model._modules.get("_orig_mod") if isinstance(model, nn.Module) else None  # a registered child: no getattr miss
    return inner if isinstance(inner, nn.Module) else model


# ---- outputs -----------------------------------------------------------------------------------------
def unwrap_outputs(outputs: Any, output: Output | None = None) -> Tensor:
    """The model's scores by the rule of the module docstring (`output` first, then logits / out / first)."""
    if output is not None:
        outputs = output(outputs)
    elif not isinstance(outputs, Tensor):
        if isinstance(getattr(outputs, "logits", None), Tensor):
            outputs = outputs.logits
        elif isinstance(outputs, Mapping):
            key = next((k for k in ("logits", "out") if k in outputs), None)
            if key is None:
                raise TypeError(
                    f"the model returned a mapping with keys {list(outputs)[:8]} and no 'logits' or 'out'; "
                    "pass output=<callable outputs -> Tensor> to say which entry holds the scores"
                )
            outputs = outputs[key]
        elif isinstance(outputs, (tuple, list)) and outputs:
            outputs = outputs[0]
    if not isinstance(outputs, Tensor):
        raise TypeError(
            f"the model's output {type(outputs).__name__} holds no score tensor lit-xai can find (tensor, .logits, "
            "['logits'] / ['out'], first element); pass output=<callable outputs -> Tensor>"
        )
    return outputs


def check_outputs(outputs: object, batch_size: int) -> Tensor:
    """Scores are a tensor whose first dimension is the batch: `(B, K)`, `(B,)`, or `(B, K, *spatial)` for
    dense (segmentation) outputs scored through a `RegionTarget`."""
    if not isinstance(outputs, Tensor):
        raise TypeError(f"the model returned {type(outputs).__name__}; pass output=<callable outputs -> Tensor>")
    if outputs.ndim == 0 or outputs.shape[0] != batch_size:
        raise ValueError(f"the model's output has shape {tuple(outputs.shape)}; expected (B, num_classes) or (B,) with B = {batch_size}")
    return outputs


def model_outputs(model: nn.Module, inputs: Tensor, samples: Tensor | None = None) -> Tensor:
    """The model's scores on `inputs` (channel-first), in the current `ModelCall`: extra inputs gathered for
    `samples` (each row's sample; None: the batch itself), the layout restored, the output unwrapped. A
    failure inside the model is re-raised saying which inputs it got."""
    call = current_call()
    args = call.args_for(inputs.shape[0], samples)
    try:
        outputs = model(to_user_layout(inputs, call.channel_dim), *args)
    except (RuntimeError, ValueError, TypeError) as error:
        shapes = ", ".join(str(tuple(a.shape)) for a in args)
        raise ValueError(
            f"{type(model).__name__} failed on inputs of shape {tuple(to_user_layout(inputs, call.channel_dim).shape)}"
            f"{f' and forward_args of shapes {shapes}' if args else ''} ({type(error).__name__}: {error}); check that the inputs "
            "have the shape and dtype the model expects (channel_dim= for channels-last inputs, forward_args= for extra inputs)"
        ) from error
    return check_outputs(unwrap_outputs(outputs, call.output), inputs.shape[0])


# ---- targets and scores ------------------------------------------------------------------------------
TargetsLike = Union[Tensor, int, Target, None]


def check_targets(targets: TargetsLike, batch_size: int, device: torch.device) -> Tensor | Target | None:
    """`None`, an int for every sample, an integer tensor `(B,)`, or a `Target` of B samples; on `device`."""
    if batch_size == 0:
        raise ValueError("the batch is empty: explain or score at least one sample")
    if targets is None:
        return None
    if type(targets) is Tensor and targets.dtype == torch.long and targets.shape == (batch_size,) and targets.device == device:
        return targets  # already what the checks below return (the common case, without their dispatches)
    if isinstance(targets, Target):
        if len(targets) != batch_size:
            raise ValueError(f"the target object holds {len(targets)} samples; the batch has {batch_size}")
        return targets.to(device)
    if isinstance(targets, int) and not isinstance(targets, bool):
        return torch.full((batch_size,), targets, dtype=torch.long, device=device)
    if not isinstance(targets, Tensor) or targets.is_floating_point() or targets.is_complex():
        raise ValueError(
            f"targets must be None, an int, an integer tensor of shape ({batch_size},) holding class indices, or a "
            f"lit_xai.targets.Target (e.g. RegionTarget), got {targets!r}"
        )
    if targets.ndim == 0:
        targets = targets.expand(batch_size)
    if targets.shape != (batch_size,):
        raise ValueError(f"targets must have shape ({batch_size},) to match the batch, got {tuple(targets.shape)}")
    return targets.to(device=device, dtype=torch.long)


def is_regression(outputs: Tensor) -> bool:
    """A one-output model (`(B,)` or `(B, 1)`) that is not a sigmoid binary classifier: its target is the output."""
    return (outputs.ndim == 1 or (outputs.ndim == 2 and outputs.shape[1] == 1)) and current_call().score != "sigmoid"


def is_binary_logit(outputs: Tensor) -> bool:
    """A one-logit binary classifier (`score="sigmoid"` and one output)."""
    return (outputs.ndim == 1 or (outputs.ndim == 2 and outputs.shape[1] == 1)) and current_call().score == "sigmoid"


def dense_outputs_error(outputs: Tensor) -> ValueError:
    return ValueError(
        f"the model's output has shape {tuple(outputs.shape)} (a score per position, e.g. segmentation): pass "
        "targets=RegionTarget(category, masks) (lit_xai.targets) to say which region of which class to explain"
    )


def resolve_targets(outputs: Tensor, targets: Tensor | Target | None) -> Tensor | Target | None:
    """`None` becomes the argmax class for classifiers (stays `None` for regressors; the predicted class of a
    one-logit sigmoid model); indices are range-checked; a `Target` object is passed through."""
    if isinstance(targets, Target):
        return targets  # it checks the outputs' shape when it scores them
    if outputs.ndim > 2:
        raise dense_outputs_error(outputs)
    if is_binary_logit(outputs):
        if targets is None:
            return (outputs.detach().reshape(-1) > 0).long()
        if bool(((targets != 0) & (targets != 1)).any()):
            raise ValueError(f"a one-logit binary classifier (score='sigmoid') takes targets 0 or 1, got {targets.unique().tolist()[:10]}")
        return targets
    if is_regression(outputs):
        if targets is not None and bool((targets != 0).any()):
            raise ValueError(
                "the model has one output (regression): targets must be None or 0; for a one-logit binary classifier "
                "set score='sigmoid' (target 0 is then the negative class)"
            )
        return None
    if targets is None:
        if current_call().score == "raw":
            raise ValueError(
                f"the model has {outputs.shape[1]} outputs scored raw (a multi-output regressor): targets=None would take the "
                "argmax of unrelated outputs; pass targets= the output index to explain (an int or a (B,) tensor)"
            )
        return outputs.detach().argmax(dim=1)
    checked_indices(outputs, targets)
    return targets


def checked_indices(outputs: Tensor, targets: Tensor | Target | None) -> Tensor:
    """Targets as a column of indices into `outputs`' classes, or a ValueError naming the valid range."""
    if targets is None:
        raise ValueError("a classifier's scores need targets; call resolve_targets first")
    if isinstance(targets, Target):
        raise ValueError(f"this method needs class indices as targets, not a {type(targets).__name__}")
    if outputs.ndim > 2:
        raise dense_outputs_error(outputs)
    num_classes = outputs.shape[1]
    lowest, highest = targets.aminmax() if targets.numel() else (0, 0)
    if int(lowest) < 0 or int(highest) >= num_classes:
        raise ValueError(f"targets must be class indices in [0, {num_classes}), got values {targets.unique().tolist()[:10]}")
    return targets.view(-1, 1)


def select_scores(outputs: Tensor, targets: Tensor | Target | None, checked: bool = False) -> Tensor:
    """The raw target score of each sample, `(B,)`: the target's logit, a `Target`'s raw score, a regressor's
    output, +-logit of a one-logit sigmoid classifier (class 1: logit, class 0: -logit). `checked`: the
    targets come from `resolve_targets` on these outputs, so their range is not checked again."""
    if isinstance(targets, Target):
        return targets.raw(outputs)
    if is_binary_logit(outputs):
        logit = outputs.reshape(outputs.shape[0])
        return torch.where(targets.to(logit.device) == 1, logit, -logit) if targets is not None else logit
    if is_regression(outputs):
        return outputs.reshape(outputs.shape[0])
    return outputs.gather(1, targets.view(-1, 1) if checked else checked_indices(outputs, targets)).squeeze(1)


def resolved_scores(outputs: Tensor, targets: Tensor | Target | None) -> tuple[Tensor, Tensor | Target | None]:
    """`resolve_targets` then `select_scores` on the same outputs, the indices checked once (one
    synchronisation): the target scores `(B,)` and the resolved targets."""
    targets = resolve_targets(outputs, targets)
    return select_scores(outputs, targets, checked=True), targets


def probabilities(outputs: Tensor, score: Score) -> Tensor:
    """`score` applied to `(B, K, *spatial)` outputs over the class dimension."""
    if callable(score):
        values = score(outputs)
        if not isinstance(values, Tensor) or values.shape != outputs.shape:
            raise ValueError(f"the score callable must return probabilities of the outputs' shape {tuple(outputs.shape)}, got {getattr(values, 'shape', values)}")
        return values
    if score == "softmax":
        return torch.softmax(outputs, dim=1)
    if score == "sigmoid":
        return torch.sigmoid(outputs)
    return outputs


def target_probabilities(outputs: Tensor, targets: Tensor | Target | None) -> Tensor:
    """Metric convention (the current call's `score`): softmax probability of the target class by default, a
    regressor's raw prediction, sigmoid probabilities (1 - p for class 0 of a one-logit model), raw outputs,
    a callable's probabilities, or a `Target`'s region probability."""
    score = current_call().score
    if isinstance(targets, Target):
        return targets.probability(outputs, score)
    if is_binary_logit(outputs):
        p = torch.sigmoid(outputs.reshape(outputs.shape[0]))
        return torch.where(targets.to(p.device) == 1, p, 1 - p) if targets is not None else p
    if is_regression(outputs):
        return outputs.reshape(outputs.shape[0])
    return probabilities(outputs, "softmax" if score is None else score).gather(1, checked_indices(outputs, targets)).squeeze(1)
