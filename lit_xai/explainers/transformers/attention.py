"""Attention-based explanations of vision transformers: Attention Rollout and LeGrad."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import torch
from torch import Tensor, nn

from lit_xai.explainers.base import Explainer
from lit_xai.explainers.transformers.vit import ViTParts, attention_parts, captured_attention, check_choice, select_layers
from lit_xai.explainers.upsample import UpsampleMode, check_upsample, upsample
from lit_xai.targets import model_outputs, resolve_targets, select_scores

HEAD_FUSIONS = ("mean", "max", "min")


def fuse_heads(attention: Tensor, head_fusion: str) -> Tensor:
    """`(B, H, N, N) -> (B, N, N)` by the mean, max or min over heads."""
    if head_fusion == "mean":
        return attention.mean(dim=1)
    return attention.amax(dim=1) if head_fusion == "max" else attention.amin(dim=1)


def discard_lowest(attention: Tensor, ratio: float) -> Tensor:
    """Set the `ratio` lowest entries of each sample's `(N, N)` matrix to 0, never the class token's
    attention to itself (entry (0, 0)), as in the reference implementation of rollout."""
    flat = attention.flatten(1).clone()
    count = int(flat.shape[1] * ratio)
    if count == 0:
        return attention
    lowest = flat.topk(count, dim=1, largest=False).indices
    keep_cls = lowest == 0
    flat.scatter_(1, lowest, 0.0)
    flat[:, 0] = torch.where(keep_cls.any(dim=1), attention.flatten(1)[:, 0], flat[:, 0])
    return flat.view_as(attention)


def to_grid(token_map: Tensor, parts: ViTParts, inputs: Tensor) -> Tensor:
    """Patch-token scores `(B, N)` -> `(B, h, w)`."""
    return token_map.reshape(inputs.shape[0], *parts.grid(inputs))


class AttentionRollout(Explainer):
    """Attention Rollout (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020).

        A^l      = fuse_h(softmax(q k^T / sqrt(d)))          heads fused by mean / max / min  (B, N, N)
        A^l      <- A^l with its `discard_ratio` lowest entries set to 0 (never the class token's self-attention)
        Â^l      = (A^l + I) / rowsum(A^l + I)              the residual connection as identity
        R        = Â^L Â^(L-1) ... Â^1
        map_ij   = R[cls, patch (i, j)]

    The attention maps are recomputed from each block's attention input (`lit_xai.explainers.transformers.vit`; the
    model's outputs are not changed). The map does not depend on the target class (targets are
    accepted and ignored). Works on torchvision, timm and Hugging Face ViTs (prefix tokens, the class and
    any register tokens, are dropped from the map); `upsample` as for CAMs ("none" keeps the patch grid).
    """

    def __init__(self, head_fusion: str = "mean", discard_ratio: float = 0.0, upsample: UpsampleMode = "bilinear") -> None:
        self.head_fusion = check_choice(head_fusion, HEAD_FUSIONS, "head_fusion")
        if not isinstance(discard_ratio, (int, float)) or not 0.0 <= discard_ratio < 1.0:
            raise ValueError(f"discard_ratio must be in [0, 1), got {discard_ratio!r}")
        self.discard_ratio = float(discard_ratio)
        self.upsample = check_upsample(upsample)

    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        parts = attention_parts(model, type(self).__name__)
        with torch.no_grad(), captured_attention(parts.attentions) as captured:
            model_outputs(model, inputs)
        rollout = None
        for (attention,) in captured:
            fused = discard_lowest(fuse_heads(attention, self.head_fusion), self.discard_ratio)
            fused = fused + torch.eye(fused.shape[-1], dtype=fused.dtype, device=fused.device)
            fused = fused / fused.sum(dim=-1, keepdim=True)
            rollout = fused if rollout is None else fused @ rollout
        assert rollout is not None
        cam = to_grid(rollout[:, 0, parts.prefix :], parts, inputs)
        return upsample(cam, tuple(inputs.shape[2:]), self.upsample)


class LeGrad(Explainer):
    """LeGrad (Bousselham et al., "LeGrad: An Explainability Method for Vision Transformers via Feature
    Formation Sensitivity", ICCV 2025).

        s^l   = head(LN(mean_i z_i^l))[c]                  block l's tokens read by the final norm and head
        E^l   = 1 / (H (N + 1)) sum_h sum_i ReLU(ds^l / dA^l_{h,i,:})        (N + 1 scores per layer)
        map   = mean over the chosen layers of E^l at the patch tokens (class token dropped)

    A^l are block l's post-softmax attention maps, made differentiable by recomputing each block's
    attention output from them (`lit_xai.explainers.transformers.vit.captured_attention`). As torchcam's `LeGrad`,
    the map is not multiplied by the attention values.

    Args:
        layers: "all" blocks or a list of block indices (negative from the end).
        upsample: as for CAMs ("none" keeps the patch grid).
    """

    def __init__(self, layers: Union[str, Sequence[int]] = "all", upsample: UpsampleMode = "bilinear") -> None:
        if not isinstance(layers, str):
            select_layers(layers, max((abs(i) + 1 for i in layers if isinstance(i, int)), default=1), "LeGrad")
        else:
            select_layers(layers, 0, "LeGrad")  # types checked now, ranges on the model
        self.layers = layers if isinstance(layers, str) else list(layers)
        self.upsample = check_upsample(upsample)

    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        parts = attention_parts(model, type(self).__name__)
        chosen = select_layers(self.layers, len(parts.blocks), "LeGrad")
        tokens: dict[int, Tensor] = {}
        handles = [
            parts.blocks[index].register_forward_hook(lambda m, a, out, index=index: tokens.__setitem__(index, out)) for index in chosen
        ]
        try:
            with captured_attention([parts.attentions[i] for i in chosen], differentiable=True) as captured:
                outputs = model_outputs(model, inputs)
        finally:
            for handle in handles:
                handle.remove()
        targets = resolve_targets(outputs, targets)
        maps = []
        for position, index in enumerate(chosen):
            scores = select_scores(parts.head(parts.norm(tokens[index].mean(dim=1))), targets)
            (gradient,) = torch.autograd.grad(scores.sum(), captured[position][0], retain_graph=position < len(chosen) - 1)
            maps.append(gradient.relu().mean(dim=(1, 2))[:, parts.prefix :])
        cam = to_grid(torch.stack(maps).mean(dim=0), parts, inputs)
        return upsample(cam, tuple(inputs.shape[2:]), self.upsample)
