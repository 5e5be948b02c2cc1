"""The target logit of a classifier ViT written as a sum over layers, heads and tokens (TextSpan with the
class's weight vector in place of a text embedding), and the CHILI-style object weighting of heads.

Residual stream of the class token (torchvision ViT, pre-norm blocks):

    z^L = z^0 + sum_l MSA^l(LN_1(z^(l-1))) + sum_l MLP^l(LN_2(.))              (class-token rows)
    MSA^l_cls = sum_h sum_i W_O^(l,h) (alpha^(l,h)_(cls,i) v^(l,h)_i) + b_O^l

The logit y_c = w_c . LN(z^L) + b_c, with the final LayerNorm linearised at the actual z^L (its
standard deviation sigma is held fixed, as the notes do): LN(z) = gamma * (z - mean(z)) / sigma + beta.
Every part p of z^L then contributes u . p with u = centred(gamma * w_c / sigma), and

    y_c = sum_(l,h,i) A_(i,l,h) + epsilon,    A_(i,l,h) = u . W_O^(l,h) (alpha^(l,h)_(cls,i) v^(l,h)_i)
    epsilon = u . (z^0 + sum_l (b_O^l + MLP^l_cls)) + w_c . beta + b_c

exactly (the linearisation is exact at the point it is taken). The map is sum_(l,h) A_(i,l,h) at the
patch tokens i.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_xai.explainers.base import Explainer, gradients_enabled
from lit_xai.explainers.transformers.vit import ViTParts, attention_probabilities, vit_parts
from lit_xai.explainers.upsample import UpsampleMode, check_upsample, upsample
from lit_xai.model_state import preserved_model_state
from lit_xai.targets import check_targets, model_outputs, resolve_targets, select_scores


@dataclass
class HeadContributions:
    """`parts (B, L, H, N + 1)`: A_(i,l,h) for every token i (class token first); `residual (B,)`:
    epsilon; `logits (B,)`: the model's target logits; `grid`: the patch grid (h, w)."""

    parts: Tensor
    residual: Tensor
    logits: Tensor
    grid: tuple[int, int]
    prefix: int = 1

    def patch_maps(self) -> Tensor:
        """`(B, L, H, h, w)`: each head's contributions at the patch tokens."""
        return self.parts[..., self.prefix :].reshape(*self.parts.shape[:3], *self.grid)


def decompose(model: nn.Module, parts: ViTParts, inputs: Tensor, targets: Optional[Tensor]) -> HeadContributions:
    """One forward pass without gradients, capturing each block's attention input, each MLP's output,
    the first block's input and the final norm's input (forward hooks that change nothing)."""
    captured: dict[str, list[Tensor]] = {"attention_in": [], "mlp_out": [], "stream_in": [], "final_in": []}
    hooks = [parts.norm.register_forward_pre_hook(lambda m, a: captured["final_in"].append(a[0]))]
    hooks.append(parts.blocks[0].register_forward_pre_hook(lambda m, a: captured["stream_in"].append(a[0])))
    for block in parts.blocks:
        hooks.append(block.self_attention.register_forward_pre_hook(lambda m, a: captured["attention_in"].append(a[0])))
        hooks.append(block.mlp.register_forward_hook(lambda m, a, out: captured["mlp_out"].append(out)))
    try:
        with torch.no_grad():
            outputs = model_outputs(model, inputs)
    finally:
        for hook in hooks:
            hook.remove()
    targets = resolve_targets(outputs, targets)
    if targets is None:
        raise ValueError("HeadDecomposition explains a class logit: the model must output (B, num_classes) with num_classes > 1")
    with torch.no_grad():
        final = captured["final_in"][0][:, 0]
        sigma = torch.sqrt(final.var(dim=-1, unbiased=False, keepdim=True) + parts.norm.eps)
        weight = parts.head.weight[targets]  # (B, D)
        gamma = parts.norm.weight if parts.norm.weight is not None else torch.ones_like(final[0])
        beta = parts.norm.bias if parts.norm.bias is not None else torch.zeros_like(final[0])
        direction = gamma * weight / sigma
        direction = direction - direction.mean(dim=-1, keepdim=True)  # u: the centring of LN is linear
        residual = captured["stream_in"][0][:, 0]
        contributions = []
        for block, x, mlp in zip(parts.blocks, captured["attention_in"], captured["mlp_out"]):
            attention = block.self_attention
            probabilities, values = attention_probabilities(attention, x)  # (B, H, N, N), (B, H, N, d)
            heads, head_dim = probabilities.shape[1], values.shape[-1]
            # u . W_O^h a = (W_O^h^T u) . a: project u through each head's slice of the output projection
            projected = (direction @ attention.out_proj.weight).view(-1, heads, head_dim)  # (B, H, d)
            contributions.append(probabilities[:, :, 0, :] * torch.einsum("bhnd,bhd->bhn", values, projected))
            if attention.out_proj.bias is not None:
                residual = residual + attention.out_proj.bias
            residual = residual + mlp[:, 0]
        epsilon = (direction * residual).sum(dim=-1) + weight @ beta + (parts.head.bias[targets] if parts.head.bias is not None else 0.0)
    return HeadContributions(torch.stack(contributions, dim=1), epsilon, select_scores(outputs, targets), parts.grid(inputs), parts.prefix)


def median_filter(maps: Tensor, size: int) -> Tensor:
    """`size x size` median filter over the last two axes (replicate padding): f_m, which removes the
    isolated high-norm tokens (pseudo-registers) of a head's map."""
    if size == 1:
        return maps
    shape = maps.shape
    flat = maps.reshape(-1, 1, *shape[-2:])
    pad = size // 2
    padded = F.pad(flat, (pad, pad, pad, pad), mode="replicate")
    windows = F.unfold(padded, size)  # (n, size^2, h * w)
    return windows.median(dim=1).values.reshape(shape)


class HeadDecomposition(Explainer):
    """Per-head decomposition of the target logit of a torchvision ViT classifier (TextSpan, Gandelsman
    et al., "Interpreting CLIP's Image Representation via Text-Based Decomposition", ICLR 2024, with the
    class's weight vector for the text embedding; the lecture notes' formulation):

        map_i = sum_l sum_h A_(i,l,h)                       (see the module docstring for A and epsilon)

    With `object_weights` (CHILI-style object/context split; weights `(L, H)` in [0, 1] from
    `head_localisation`) the map keeps each head's object part:

        map_i = sum_l sum_h w_(l,h) f_m(A_(l,h))_i           f_m: `median` x `median` median filter

    The map is signed (a decomposition, not a CAM) and class-specific. `contributions` returns the parts,
    the residual term and the logits (`sum(parts) + residual == logits`).
    """

    def __init__(self, object_weights: Optional[Tensor] = None, median: int = 3, upsample: UpsampleMode = "bilinear") -> None:
        if object_weights is not None:
            object_weights = torch.as_tensor(object_weights, dtype=torch.float32)
            if object_weights.ndim != 2 or bool(((object_weights < 0) | (object_weights > 1)).any()):
                raise ValueError("object_weights must be an (L, H) tensor in [0, 1], e.g. from head_localisation(model, datamodule)")
        if not isinstance(median, int) or median < 1 or median % 2 == 0:
            raise ValueError(f"median must be an odd positive int (the median filter's size), got {median!r}")
        self.object_weights = object_weights
        self.median = median
        self.upsample = check_upsample(upsample)

    def contributions(self, model: nn.Module, inputs: Tensor, targets: Tensor | int | None = None) -> HeadContributions:
        """The decomposition itself (model state preserved as in every explainer call)."""
        targets = check_targets(targets, inputs.shape[0], inputs.device)
        with preserved_model_state(model), gradients_enabled():
            return decompose(model, vit_parts(model, type(self).__name__), inputs.detach().clone(), targets)

    def explain(self, model: nn.Module, inputs: Tensor, targets: Tensor | None) -> Tensor:
        result = decompose(model, vit_parts(model, type(self).__name__), inputs, targets)
        maps = result.patch_maps()
        if self.object_weights is None:
            cam = maps.sum(dim=(1, 2))
        else:
            weights = self.object_weights.to(maps.device)
            if weights.shape != maps.shape[1:3]:
                raise ValueError(f"object_weights has shape {tuple(weights.shape)}, but the model has (L, H) = {tuple(maps.shape[1:3])}")
            cam = (weights[None, :, :, None, None] * median_filter(maps, self.median)).sum(dim=(1, 2))
        return upsample(cam, tuple(inputs.shape[2:]), self.upsample)


def localisation_iou(maps: Tensor, masks: Tensor) -> Tensor:
    """IoU of h_m(map) with the mask: h_m keeps the positions at or above half the map's positive maximum
    (none when the maximum is <= 0). `maps (B, ..., H, W)`, masks `(B, H, W)` bool."""
    peak = maps.flatten(-2).amax(dim=-1)[..., None, None]
    binary = (maps >= peak / 2) & (peak > 0)
    truth = masks.view(masks.shape[0], *(1,) * (maps.ndim - 3), *masks.shape[-2:])
    inter = (binary & truth).flatten(-2).sum(-1).float()
    union = (binary | truth).flatten(-2).sum(-1).float()
    return inter / union.clamp_min(1)


def head_localisation(
    model: nn.Module, datamodule: object, alpha: float = 5.0, median: int = 3, max_batches: Optional[int] = None
) -> Tensor:
    """CHILI's head weights `(L, H)` on a probing set with masks (the datamodule's validation batches
    `(images, labels, masks, ...)`, e.g. `ShapesDataModule(return_annotations=True)`):

        w_(l,h) = mean over images of 1 - exp(-alpha IoU(h_m(up(f_m(A_(l,h)))), G))

    A_(l,h) each head's contributions for the true label, f_m the median filter, up bilinear to the image,
    h_m the positions at or above half the map's maximum, G the mask.

    Args:
        model: a classifier holding a torchvision VisionTransformer.
        datamodule: a LightningDataModule whose `val_dataloader()` yields annotated batches (set up here),
            or any iterable of such batches.
        alpha: how fast a head's weight saturates with its IoU.   median: f_m's size (odd).
        max_batches: probe at most this many batches (default: all)."""
    if hasattr(datamodule, "val_dataloader"):
        if hasattr(datamodule, "setup"):
            datamodule.setup("validate")
        batches: Iterable = datamodule.val_dataloader()
    else:
        batches = datamodule  # any iterable of such batches
    explainer = HeadDecomposition(median=median)
    total, count = None, 0
    for index, batch in enumerate(batches):
        if max_batches is not None and index >= max_batches:
            break
        if not isinstance(batch, (tuple, list)) or len(batch) < 3 or batch[2].dtype != torch.bool:
            raise ValueError(
                "head_localisation needs batches (images, labels, masks, ...) with boolean masks: build the datamodule "
                "with return_annotations=True (e.g. ShapesDataModule(return_annotations=True))"
            )
        images, labels, masks = batch[0], batch[1], batch[2]
        maps = median_filter(explainer.contributions(model, images, labels).patch_maps(), median)
        size = tuple(images.shape[2:])
        upsampled = F.interpolate(maps.flatten(1, 2), size=size, mode="bilinear", align_corners=False).view(*maps.shape[:3], *size)
        scores = (1 - torch.exp(-alpha * localisation_iou(upsampled, masks.to(maps.device)))).sum(dim=0)
        total = scores if total is None else total + scores
        count += images.shape[0]
    if total is None:
        raise ValueError("head_localisation got no batches: the probing set is empty")
    return (total / count).cpu()

