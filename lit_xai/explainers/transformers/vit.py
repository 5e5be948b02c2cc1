"""The anatomy of a torchvision VisionTransformer that attention methods read, and its attention maps.

torchvision's encoder blocks call `nn.MultiheadAttention(x, x, x, need_weights=False)`, so the attention
probabilities are never materialised. `captured_attention` recomputes them from each block's `in_proj`
on the block's own attention input (a forward pre-hook that changes nothing):

    q, k, v = x W_q^T + b_q, x W_k^T + b_k, x W_v^T + b_v          split into H heads of size d
    A^h     = softmax(q^h k^h^T / sqrt(d))                          (B, H, N, N), rows sum to 1

With `differentiable=True` the block's attention output is replaced by `out_proj(A V)` computed from that
same A (a leaf that requires grad), so gradients with respect to the attention maps exist (LeGrad); the
outputs then equal the model's up to float round-off.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import VisionTransformer


@dataclass
class ViTParts:
    """The pieces of a torchvision VisionTransformer inside `model` (the model itself or a submodule,
    e.g. `ImageClassifier.net`): encoder blocks, final LayerNorm, linear head, class token count (1)."""

    net: VisionTransformer
    blocks: list[nn.Module]
    norm: nn.LayerNorm
    head: nn.Linear
    prefix: int = 1

    @property
    def attentions(self) -> list[nn.MultiheadAttention]:
        return [block.self_attention for block in self.blocks]

    def grid(self, inputs: Tensor) -> tuple[int, int]:
        patch = self.net.patch_size
        return inputs.shape[2] // patch, inputs.shape[3] // patch


def vit_parts(model: nn.Module, method: str) -> ViTParts:
    """Find the torchvision VisionTransformer in `model`, or a ValueError saying what `method` needs."""
    nets = [module for module in model.modules() if isinstance(module, VisionTransformer)]
    if len(nets) != 1:
        found = "none" if not nets else f"{len(nets)}"
        raise ValueError(
            f"{method} explains torchvision VisionTransformer models (ImageClassifier backbones 'vit_b_16', 'vit_b_32', "
            f"'vit_tiny', or torchvision.models.VisionTransformer); {type(model).__name__} contains {found}"
        )
    net = nets[0]
    heads = list(net.heads.children())
    if len(heads) != 1 or not isinstance(heads[0], nn.Linear):
        raise ValueError(f"{method} needs a ViT whose head is one Linear layer (representation_size=None), got {net.heads}")
    return ViTParts(net, list(net.encoder.layers.children()), net.encoder.ln, heads[0])


def attention_probabilities(module: nn.MultiheadAttention, x: Tensor) -> tuple[Tensor, Tensor]:
    """`(A, V)`: attention probabilities `(B, H, N, N)` and values `(B, H, N, d)` of a batch-first
    self-attention on `x (B, N, D)`, from its packed input projection."""
    batch, tokens, dim = x.shape
    heads = module.num_heads
    q, k, v = F.linear(x, module.in_proj_weight, module.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.reshape(batch, tokens, heads, dim // heads).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(dim // heads)
    return scores.softmax(dim=-1), v


def check_attention(module: nn.Module, name: str) -> nn.MultiheadAttention:
    if not isinstance(module, nn.MultiheadAttention) or not module.batch_first or module.in_proj_weight is None:
        raise ValueError(f"block {name} must use a batch-first nn.MultiheadAttention with packed in_proj (torchvision's ViT)")
    if module.bias_k is not None or module.add_zero_attn:
        raise ValueError(f"block {name}'s attention adds key tokens (bias_k / add_zero_attn), which is not supported")
    return module


@contextmanager
def captured_attention(attentions: Sequence[nn.MultiheadAttention], differentiable: bool = False) -> Iterator[list[list[Tensor]]]:
    """Inside the block each forward pass appends every attention module's `A (B, H, N, N)` to its list.

    `differentiable=False`: pre-hooks only, the model's outputs are untouched (`A` computed without
    gradients). `differentiable=True`: `A` is a leaf that requires grad and the module's output is
    `out_proj(A V)` from it. Hooks are removed on exit, also when the block raises."""
    captured: list[list[Tensor]] = [[] for _ in attentions]
    for index, module in enumerate(attentions):
        check_attention(module, str(index))

    def pre_hook(index: int, module: nn.MultiheadAttention, args: tuple) -> None:
        query = args[0]
        if not (args[1] is query and args[2] is query):
            raise ValueError(f"block {index}'s attention is not self-attention (query, key and value differ)")
        if not differentiable:
            with torch.no_grad():
                captured[index].append(attention_probabilities(module, query)[0])

    def forward_hook(index: int, module: nn.MultiheadAttention, args: tuple, output: tuple) -> tuple[Tensor, None]:
        query = args[0]
        probabilities, values = attention_probabilities(module, query)
        probabilities = probabilities.detach().requires_grad_(True)
        captured[index].append(probabilities)
        mixed = (probabilities @ values).transpose(1, 2).reshape(query.shape)
        return module.out_proj(mixed), None

    with ExitStack() as stack:
        for index, module in enumerate(attentions):
            handle = module.register_forward_pre_hook(lambda m, a, index=index: pre_hook(index, m, a))
            stack.callback(handle.remove)
            if differentiable:
                handle = module.register_forward_hook(lambda m, a, o, index=index: forward_hook(index, m, a, o))
                stack.callback(handle.remove)
        yield captured


def select_layers(layers: str | Sequence[int], count: int, method: str) -> list[int]:
    """Block indices from "all" or a list of ints (negative counts from the end), each once, in order."""
    if isinstance(layers, str):
        if layers != "all":
            raise ValueError(f"{method}: layers must be 'all' or a list of block indices, got {layers!r}")
        return list(range(count))
    if not isinstance(layers, Sequence) or not layers or not all(isinstance(i, int) and not isinstance(i, bool) for i in layers):
        raise ValueError(f"{method}: layers must be 'all' or a non-empty list of block indices, got {layers!r}")
    bad = [i for i in layers if not -count <= i < count]
    if bad:
        raise ValueError(f"{method}: layers {bad} are out of range for a ViT with {count} blocks")
    chosen = sorted({i % count for i in layers})
    return chosen


def check_choice(value: str, choices: tuple[str, ...], name: str) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value
