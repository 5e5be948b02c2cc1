"""Finding the layer a method explains and capturing what it computes during one forward pass."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from lit_xai.explainers.tokens import Reshape, TokenView, current_reshape, spatial_view

SPATIAL_CONVS = (nn.Conv1d, nn.Conv2d)


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """`model.get_submodule(name)`, or a ValueError naming the closest layer names."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"target_layer must be a dotted module path such as 'layer4' or 'features.29', got {name!r}")
    name = name.removeprefix("_orig_mod.")  # a torch.compile'd model's names; explainers run its own module
    try:
        return model.get_submodule(name)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.4)
        hint = f"close matches: {', '.join(close)}" if close else f"the model has {len(names)} layers, e.g. {', '.join(names[-5:])}"
        raise ValueError(
            f"target_layer {name!r} is not a submodule of {type(model).__name__}; {hint}. "
            "List every name with [n for n, _ in model.named_modules()]."
        ) from None


def last_conv_layer(model: nn.Module) -> str:
    """Dotted name of the last Conv1d/Conv2d module in registration order."""
    names = [name for name, module in model.named_modules() if isinstance(module, SPATIAL_CONVS)]
    if not names:
        raise ValueError(
            f"{type(model).__name__} has no Conv1d/Conv2d layer; pass target_layer='<dotted module path>' explicitly"
        )
    return names[-1]


BLOCK_NORMS = ("ln_1", "norm1", "layernorm_before")  # torchvision, timm, Hugging Face transformer blocks


def is_attention(module: nn.Module) -> bool:
    return isinstance(module, nn.MultiheadAttention) or "Attention" in type(module).__name__


def transformer_target_layer(model: nn.Module) -> str | None:
    """A vision transformer's last block's first norm (torchvision `encoder...ln_1`, timm `blocks.N.norm1`,
    Hugging Face `...layer.N.layernorm_before`), never the patch embedding: the last block's own output
    reaches the logits only through the class token (pytorch-grad-cam's advice for ViTs). None for a
    model without attention."""
    if not any(is_attention(m) for m in model.modules()):
        return None
    norms = [name for name, _ in model.named_modules() if name.rpartition(".")[2] in BLOCK_NORMS]
    return norms[-1] if norms else None


def resolve_target_layer(model: nn.Module, target_layer: str | None) -> str:
    """The explicit name (a compiled model's `_orig_mod.` prefix dropped), else the model's
    `default_target_layer`, else a transformer's last block norm, else its last spatial conv layer."""
    if target_layer is not None:
        return target_layer.removeprefix("_orig_mod.")
    default = getattr(model, "default_target_layer", None)
    if isinstance(default, str):
        return default
    return transformer_target_layer(model) or last_conv_layer(model)


def layer_tensor(output: object, name: str) -> tuple[Tensor, tuple | None]:
    """A layer's output tensor: the output itself, or the first element of a tuple / list (LSTM, GRU and
    Hugging Face blocks return `(output, state)`); returns it and the other elements (None for a tensor)."""
    if isinstance(output, Tensor):
        return output, None
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], Tensor):
        return output[0], tuple(output[1:])
    raise TypeError(
        f"target layer {name!r} returns {type(output).__name__}, not a tensor or a tuple whose first element is one; "
        "choose a layer that returns a tensor"
    )


def sequence_reshape(module: nn.Module) -> Reshape | None:
    """Recurrent and transformer-encoder layers output a sequence `(B, T, D)` (batch_first) or `(T, B, D)`:
    seen as `(B, D, T)`, channels first, so a series' maps cover its time steps."""
    if isinstance(module, (nn.RNNBase, nn.TransformerEncoderLayer, nn.TransformerEncoder)):
        batch_first = getattr(module, "batch_first", None)
        if batch_first is None and isinstance(module, nn.TransformerEncoder):
            batch_first = getattr(module.layers[0], "batch_first", False) if len(module.layers) else False
        return transpose_batch_first if batch_first else transpose_sequence_first
    return None


def transpose_batch_first(output: Tensor) -> Tensor:
    return output.transpose(1, 2)


def transpose_sequence_first(output: Tensor) -> Tensor:
    return output.permute(1, 2, 0)


@dataclasses.dataclass
class LayerCapture:
    """What `captured_output` saw: `(spatial activations, TokenView)` per forward pass, or the error that
    the layer's output raised (kept until the pass is over, so it is not reported as a model failure)."""

    found: list[tuple[Tensor, TokenView]] = dataclasses.field(default_factory=list)
    error: Exception | None = None


@contextmanager
def captured_output(layer: nn.Module, name: str, inputs_shape: tuple[int, ...], leaf: bool = False) -> Iterator[LayerCapture]:
    """Collect the layer's output, seen as `(B, D, *spatial)` (`tokens.spatial_view`: conv maps as they are,
    transformer tokens rearranged), and its `TokenView`, during the forward passes run inside the block.

    The hook hands `view.to_output(spatial)` downstream (a clone for conv maps), so the captured tensor
    is the layer's own output even when the next module works in place (`ReLU(inplace=True)`), and
    gradients with respect to it are exact. With `leaf`, the graph starts here: the forward pass is
    expected to run without gradients up to this layer, whose spatial view is captured as a leaf
    (detached, `requires_grad=True`), and gradients are switched on for the rest of the forward pass
    (see `gradients.forward_with_layers`). The hook is removed on exit, also when the block raises.
    """
    captured = LayerCapture()

    def hook(module: nn.Module, args: object, output: object) -> object:
        first, rest = layer_tensor(output, name)
        if captured.found:
            raise ValueError(f"target layer {name!r} runs more than once per forward pass; choose a layer that runs once")
        try:
            reshape = current_reshape() or sequence_reshape(module)
            view = dataclasses.replace(spatial_view(first, inputs_shape, reshape, name), output=first.detach())
        except ValueError as error:
            captured.error = error
            return None
        if leaf:
            torch.set_grad_enabled(True)  # undone when the caller's grad-mode block exits
            spatial = view.to_spatial(first.detach()).requires_grad_(True)
        else:
            spatial = view.to_spatial(first)
        captured.found.append((spatial, view))
        replaced = view.to_output(spatial, first)
        return replaced if rest is None else type(output)((replaced, *rest))  # type: ignore[call-arg]

    handle = layer.register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()


class ConstantOutput(nn.Module):
    """Stands in for a layer: ignores its inputs and returns a fixed tensor."""

    def __init__(self, value: Tensor) -> None:
        super().__init__()
        self.value = value

    def forward(self, *args: object, **kwargs: object) -> Tensor:
        return self.value


@contextmanager
def replaced_output(model: nn.Module, name: str, replacement: Tensor) -> Iterator[None]:
    """Inside the block the layer `name` is swapped for one that returns `replacement` (e.g. ablated
    activations), so the layer itself is not computed; the original is put back on exit, even on error."""
    get_layer(model, name)
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    original = parent._modules[child]
    parent._modules[child] = ConstantOutput(replacement)
    try:
        yield
    finally:
        parent._modules[child] = original
