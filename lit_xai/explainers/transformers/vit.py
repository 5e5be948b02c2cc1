"""The anatomy of a vision transformer that attention methods read, and its attention maps.

Three families of ViT are read (`attention_parts`): torchvision's `VisionTransformer`, timm's
`VisionTransformer` (blocks `blocks[i].attn` with a packed `qkv`), and Hugging Face's `ViTForImageClassification`
(`...layers[i].attention` with `q_proj` / `k_proj` / `v_proj` / `o_proj`). None of them materialises its
attention probabilities (torchvision calls `nn.MultiheadAttention(x, x, x, need_weights=False)`; timm and
Hugging Face use fused scaled-dot-product attention), so `captured_attention` recomputes them from each
block's projections on the attention module's own input (a forward pre-hook that changes nothing):

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

    patch: tuple[int, int] | None = None
    modules: list[nn.Module] | None = None

    @property
    def attentions(self) -> list[nn.Module]:
        """Each block's attention module (what `captured_attention` hooks)."""
        return self.modules if self.modules is not None else [block.self_attention for block in self.blocks]

    def grid(self, inputs: Tensor) -> tuple[int, int]:
        patch = self.patch if self.patch is not None else (self.net.patch_size, self.net.patch_size)
        return inputs.shape[2] // patch[0], inputs.shape[3] // patch[1]


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


def pair(value: object) -> tuple[int, int]:
    return (int(value[0]), int(value[1])) if isinstance(value, (tuple, list)) else (int(value), int(value))  # type: ignore[index]


def attention_parts(model: nn.Module, method: str) -> ViTParts:
    """The ViT in `model`: torchvision's (`vit_parts`), timm's or Hugging Face's; a ValueError saying what
    `method` reads otherwise. Register tokens are counted in the prefix (timm `num_prefix_tokens`)."""
    timm_nets = [m for m in model.modules() if hasattr(m, "blocks") and hasattr(m, "patch_embed") and hasattr(m, "num_prefix_tokens")]
    if len(timm_nets) == 1:
        net = timm_nets[0]
        head, norm = net.head, net.norm if isinstance(getattr(net, "fc_norm", None), nn.Identity) else net.fc_norm
        if not isinstance(head, nn.Linear):
            raise ValueError(f"{method} needs a timm ViT whose head is one Linear layer, got {type(head).__name__}")
        if getattr(net, "global_pool", "token") != "token":
            raise ValueError(f"{method} reads the class token; this timm ViT pools its tokens with global_pool={net.global_pool!r}")
        blocks = list(net.blocks)
        return ViTParts(net, blocks, norm, head, int(net.num_prefix_tokens), pair(net.patch_embed.patch_size), [b.attn for b in blocks])
    hf_nets = [m for m in model.modules() if hasattr(m, "vit") and hasattr(m, "classifier") and hasattr(getattr(m, "config", None), "patch_size")]
    if len(hf_nets) == 1:
        net, vit = hf_nets[0], hf_nets[0].vit
        layers = getattr(vit, "layers", None)
        if layers is None or not all(hasattr(layer.attention, "q_proj") for layer in layers):
            raise ValueError(
                f"{method} reads Hugging Face ViTs with `vit.layers[i].attention.q_proj/k_proj/v_proj/o_proj` (transformers >= 5); "
                "this model's layout is older: upgrade transformers or use a layer method (GradCAM) instead"
            )
        if not isinstance(net.classifier, nn.Linear):
            raise ValueError(f"{method} needs a Hugging Face ViT whose classifier is one Linear layer")
        blocks = list(layers)
        return ViTParts(net, blocks, vit.layernorm, net.classifier, 1, pair(net.config.patch_size), [b.attention for b in blocks])
    try:
        return vit_parts(model, method)
    except ValueError:
        raise ValueError(
            f"{method} explains vision transformers from torchvision (VisionTransformer), timm (VisionTransformer with a class "
            f"token) and Hugging Face (ViTForImageClassification); {type(model).__name__} is none of them"
        ) from None


def projections(module: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """`(A, V)` of any supported attention module on its input `x (B, N, D)`: `A = softmax(q k^T / sqrt(d))`
    `(B, H, N, N)` (after timm's q/k norms), `V (B, H, N, d)`."""
    if isinstance(module, nn.MultiheadAttention):
        return attention_probabilities(module, x)
    batch, tokens, _ = x.shape
    if hasattr(module, "qkv"):  # timm
        q, k, v = module.qkv(x).reshape(batch, tokens, 3, module.num_heads, module.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        q, k = module.q_norm(q), module.k_norm(k)
        return (q * module.scale @ k.transpose(-2, -1)).softmax(dim=-1), v
    if hasattr(module, "q_proj"):  # Hugging Face
        q, k, v = (proj(x).view(batch, tokens, -1, module.head_dim).transpose(1, 2) for proj in (module.q_proj, module.k_proj, module.v_proj))
        return (q @ k.transpose(-2, -1) * module.scaling).softmax(dim=-1), v
    raise ValueError(f"attention module {type(module).__name__} is not one lit-xai reads (torchvision, timm, Hugging Face ViTs)")


def mixed_output(module: nn.Module, probabilities: Tensor, values: Tensor, x: Tensor) -> object:
    """The attention module's output recomputed from `probabilities` (same structure as the module's own)."""
    mixed = (probabilities @ values).transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)
    if isinstance(module, nn.MultiheadAttention):
        return module.out_proj(mixed), None
    if hasattr(module, "qkv"):  # timm: norm, optional gate, projection (dropouts are identities in eval mode)
        out = module.norm(mixed)
        if getattr(module, "gate", None) is not None:
            out = out * module.gate(x).sigmoid()
        return module.proj_drop(module.proj(out))
    return module.o_proj(mixed), probabilities


def attention_probabilities(module: nn.MultiheadAttention, x: Tensor) -> tuple[Tensor, Tensor]:
    """`(A, V)`: attention probabilities `(B, H, N, N)` and values `(B, H, N, d)` of a batch-first
    self-attention on `x (B, N, D)`, from its packed input projection."""
    batch, tokens, dim = x.shape
    heads = module.num_heads
    q, k, v = F.linear(x, module.in_proj_weight, module.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.reshape(batch, tokens, heads, dim // heads).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(dim // heads)
    return scores.softmax(dim=-1), v


def check_attention(module: nn.Module, name: str) -> nn.Module:
    if not isinstance(module, nn.MultiheadAttention) and (hasattr(module, "qkv") or hasattr(module, "q_proj")):
        return module  # timm / Hugging Face (see `projections`)
    if not isinstance(module, nn.MultiheadAttention) or not module.batch_first or module.in_proj_weight is None:
        raise ValueError(f"block {name} must use a batch-first nn.MultiheadAttention with packed in_proj (torchvision's ViT)")
    if module.bias_k is not None or module.add_zero_attn:
        raise ValueError(f"block {name}'s attention adds key tokens (bias_k / add_zero_attn), which is not supported")
    return module


@contextmanager
def captured_attention(attentions: Sequence[nn.Module], differentiable: bool = False) -> Iterator[list[list[Tensor]]]:
    """Inside the block each forward pass appends every attention module's `A (B, H, N, N)` to its list.

    `differentiable=False`: pre-hooks only, the model's outputs are untouched (`A` computed without
    gradients). `differentiable=True`: `A` is a leaf that requires grad and the module's output is
    `out_proj(A V)` from it. Hooks are removed on exit, also when the block raises."""
    captured: list[list[Tensor]] = [[] for _ in attentions]
    for index, module in enumerate(attentions):
        check_attention(module, str(index))

    def pre_hook(index: int, module: nn.Module, args: tuple) -> None:
        query = args[0]
        if isinstance(module, nn.MultiheadAttention) and not (args[1] is query and args[2] is query):
            raise ValueError(f"block {index}'s attention is not self-attention (query, key and value differ)")
        if not differentiable:
            with torch.no_grad():
                captured[index].append(projections(module, query)[0])

    def forward_hook(index: int, module: nn.Module, args: tuple, output: object) -> object:
        query = args[0]
        probabilities, values = projections(module, query)
        probabilities = probabilities.detach().requires_grad_(True)
        captured[index].append(probabilities)
        return mixed_output(module, probabilities, values, query)

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
