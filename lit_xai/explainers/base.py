"""The explainer contract shared by every method (see DESIGN.md, "Explainers").

`explainer(model, inputs, targets=None) -> Tensor` of shape `(B, *spatial)`, float32, on the inputs'
device, raw (not min-max normalised). The call:

* checks its arguments and raises a ValueError that says what is wrong and what to do;
* enters `torch.inference_mode(False)` and `torch.enable_grad()` together and clones the inputs inside,
  so gradients exist even inside Lightning's validate/test loops (inference mode) or fit's validation
  (no_grad);
* runs the model in eval mode and leaves it as it found it: training flags and `requires_grad` flags
  are restored, even when the method raises (eval mode: no Dropout draws, no BatchNorm updates).
  Parameter `.grad` is never touched because methods take `torch.autograd.grad` with respect to
  activations or the cloned inputs, never `.backward()`.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from lit_xai.checks import all_finite
from lit_xai.chunking import retry_out_of_memory
from lit_xai.explainers.layers import resolve_target_layer
from lit_xai.model_state import preserved_model_state
from lit_xai.targets import (
    Output,
    Score,
    Target,
    TargetsLike,
    as_forward_args,
    check_channel_dim,
    check_targets,
    model_call,
    to_channels_first,
    to_user_layout,
    unwrap_module,
)


@contextmanager
def gradients_enabled() -> Iterator[None]:
    """Autograd on, whatever the caller's mode (`no_grad`, `inference_mode`)."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def check_inputs(inputs: Tensor) -> None:
    """Inputs are a float tensor `(B, C, *spatial)` with one or two spatial dims and no NaN/inf."""
    if not isinstance(inputs, Tensor):
        raise TypeError(f"inputs must be a torch.Tensor of shape (B, C, H, W) or (B, C, T), got {type(inputs).__name__}")
    if inputs.ndim not in (3, 4):
        raise ValueError(
            f"inputs must have shape (B, C, H, W) for images or (B, C, T) for time series, got {tuple(inputs.shape)}; "
            "add the batch dimension with inputs.unsqueeze(0) for a single sample"
        )
    if not inputs.is_floating_point():
        raise ValueError(f"inputs must be floating point (normalised), got dtype {inputs.dtype}; convert with inputs.float()")
    if not all_finite(inputs):
        bad = torch.nonzero(~torch.isfinite(inputs.detach()).flatten(1).all(dim=1)).flatten().tolist()
        raise ValueError(f"inputs contain NaN or inf in samples {bad[:10]}; check the data and its normalisation")


def warn_if_all_zero(explainer: object, model: nn.Module, saliency: Tensor) -> None:
    """A map that is zero for every sample of a batch explains nothing: say so, naming the layer (e.g. a
    layer before a zero-initialised BatchNorm of an untrained model has zero gradients)."""
    if saliency.numel() and not int(saliency.count_nonzero()):
        where = ""
        if hasattr(explainer, "target_layer"):
            try:
                where = f" at target layer {resolve_target_layer(model, explainer.target_layer)!r}"
            except ValueError:
                where = ""
        warnings.warn(
            f"{type(explainer).__name__}{where} returned an all-zero map for every sample of the batch: the target score "
            "does not depend on what it reads there (untrained or zero-initialised layers after it, a layer the score does "
            "not reach); choose another target_layer or check the model",
            stacklevel=3,
        )


class Explainer(abc.ABC):
    """Base class of every explanation method: subclasses implement `explain`.

    `explain(model, inputs, targets)` receives inputs already cloned inside a gradient-enabled block and
    checked targets (`None`, a long tensor `(B,)` or a `lit_xai.targets.Target`), and returns the raw map `(B, *spatial)`
    (or `(B, C, *spatial)` for input-space methods with `reduce="none"`).
    """

    @retry_out_of_memory  # halves the chunks and runs again on out of memory (lit_xai.chunking)
    def __call__(
        self,
        model: nn.Module,
        inputs: Tensor,
        targets: TargetsLike = None,
        forward_args: Tensor | tuple[Tensor, ...] | None = None,
        *,
        channel_dim: int = 1,
        output: Output | None = None,
        score: Score = None,
    ) -> Tensor:
        """Explain `inputs` for `targets` (see the module docstring and `lit_xai.targets`).

        `forward_args`: extra per-sample inputs, `model(inputs, *forward_args)`; the map explains `inputs` only.
        `channel_dim`: the inputs' channel axis (-1 for `(B, T, C)` series); maps cover the other axes, and
        `reduce="none"` attributions come back in the inputs' own layout. `output`: a callable that picks the
        scores from what the model returns (default: `lit_xai.targets.unwrap_outputs`'s rule). `score`:
        "sigmoid" makes a one-logit model a binary classifier (target 0 explained through -logit); "raw" with
        several outputs (a multi-output regressor) needs explicit targets.
        """
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        model = unwrap_module(model)
        if not isinstance(inputs, Tensor):
            raise TypeError(f"inputs must be a torch.Tensor of shape (B, C, H, W) or (B, C, T), got {type(inputs).__name__}")
        channel_dim = check_channel_dim(channel_dim, inputs.ndim)
        inputs = to_channels_first(inputs, channel_dim)
        check_inputs(inputs)
        targets = check_targets(targets, inputs.shape[0], inputs.device)
        with preserved_model_state(model), gradients_enabled():
            # clones made here are normal tensors even when the caller's are inference tensors (Lightning's loops)
            args = None if forward_args is None else tuple(a.detach().clone() for a in as_forward_args(forward_args, inputs.shape[0]))
            if isinstance(targets, Tensor) and targets.is_inference():
                targets = targets.clone()
            elif isinstance(targets, Target):
                targets = targets.index(torch.arange(len(targets), device=inputs.device))
            with model_call(inputs.shape[0], args, output, score, channel_dim, inputs.device):
                saliency = self.explain(model, inputs.detach().clone(), targets)
        if saliency.requires_grad or saliency.dtype != torch.float32:
            saliency = saliency.detach().to(torch.float32)
        total = float(saliency.sum())  # one synchronisation for both checks below in the common case
        if not math.isfinite(total) and not all_finite(saliency):  # a finite sum has no NaN or inf (`all_finite`)
            raise ValueError(
                f"{type(self).__name__} produced NaN or inf: the model's outputs or gradients are not finite "
                "for these inputs (check the model in isolation with the same batch)"
            )
        if total == 0.0:  # an all-zero map sums to 0; a map that sums to 0 is counted
            warn_if_all_zero(self, model, saliency)
        if saliency.ndim == inputs.ndim:  # reduce="none": the inputs' own layout
            saliency = to_user_layout(saliency, channel_dim)
        return saliency

    @abc.abstractmethod
    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | Target | None) -> Tensor:
        """Compute the raw saliency of `inputs` for `targets` (see the class docstring)."""

    def __repr__(self) -> str:
        return constructor_repr(self)


def argument_repr(value: object) -> str:
    """`repr` of a constructor argument for logs and configs: a tensor by its shape and dtype (and device
    when not the CPU), never its values (a baseline bank holds millions); lists, tuples and dicts element by
    element; dataclass instances (e.g. diagnostics) field by field; anything else by its own `repr`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = ", ".join(f"{field.name}={argument_repr(getattr(value, field.name))}" for field in dataclasses.fields(value))
        return f"{type(value).__name__}({fields})"
    if isinstance(value, Tensor):
        device = "" if value.device.type == "cpu" else f", device='{value.device}'"
        return f"Tensor(shape={tuple(value.shape)}, dtype={value.dtype}{device})"
    if isinstance(value, list):
        return "[" + ", ".join(argument_repr(item) for item in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(argument_repr(item) for item in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key!r}: {argument_repr(item)}" for key, item in value.items()) + "}"
    return repr(value)


def constructor_repr(obj: object) -> str:
    """`Name(key=value, ...)` over the object's public attributes, each by `argument_repr`."""
    params = ", ".join(f"{key}={argument_repr(value)}" for key, value in vars(obj).items() if not key.startswith("_"))
    return f"{type(obj).__name__}({params})"
