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
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from lit_xai.chunking import retry_out_of_memory
from lit_xai.model_state import preserved_model_state
from lit_xai.targets import check_targets


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
    finite = torch.isfinite(inputs.detach()).flatten(1).all(dim=1)
    if not bool(finite.all()):
        bad = torch.nonzero(~finite).flatten().tolist()
        raise ValueError(f"inputs contain NaN or inf in samples {bad[:10]}; check the data and its normalisation")


class Explainer(abc.ABC):
    """Base class of every explanation method: subclasses implement `explain`.

    `explain(model, inputs, targets)` receives inputs already cloned inside a gradient-enabled block and
    checked targets (`None` or a long tensor `(B,)`), and returns the raw map `(B, *spatial)`
    (or `(B, C, *spatial)` for input-space methods with `reduce="none"`).
    """

    @retry_out_of_memory  # halves the chunks and runs again on out of memory (lit_xai.chunking)
    def __call__(self, model: nn.Module, inputs: Tensor, targets: Tensor | int | None = None) -> Tensor:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        check_inputs(inputs)
        targets = check_targets(targets, inputs.shape[0], inputs.device)
        with preserved_model_state(model), gradients_enabled():
            # clones made here are normal tensors even when the caller's are inference tensors
            targets = None if targets is None else targets.clone()
            saliency = self.explain(model, inputs.detach().clone(), targets)
        saliency = saliency.detach().to(torch.float32)
        if not bool(torch.isfinite(saliency).all()):
            raise ValueError(
                f"{type(self).__name__} produced NaN or inf: the model's outputs or gradients are not finite "
                "for these inputs (check the model in isolation with the same batch)"
            )
        return saliency

    @abc.abstractmethod
    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        """Compute the raw saliency of `inputs` for `targets` (see the class docstring)."""

    def __repr__(self) -> str:
        params = ", ".join(f"{key}={value!r}" for key, value in vars(self).items() if not key.startswith("_"))
        return f"{type(self).__name__}({params})"
