"""torchvision classification networks as backbones: head replaced for `num_classes`, pretrained weights by
name (offline-friendly errors), and the layer each family explains by default."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision.models import WeightsEnum

from lit_xai.downloads import DownloadError, explain_download_failure


class WeightsUnavailableError(DownloadError):
    """Pretrained weights are neither in the torch hub cache nor downloadable (e.g. offline)."""


def _last_child_index(module: nn.Module) -> str:
    return str(len(list(module.children())) - 1)


def _vgg_target(net: nn.Module) -> str:
    """`features.<index of the ReLU after the last conv>` (features.29 for vgg16, features.19 for vgg11)."""
    layers = list(net.features.children())
    last_conv = max(i for i, layer in enumerate(layers) if isinstance(layer, nn.Conv2d))
    relu = next(i for i in range(last_conv + 1, len(layers)) if isinstance(layers[i], nn.ReLU))
    return f"features.{relu}"


def _vit_target(net: nn.Module) -> str:
    """The last encoder block's first LayerNorm (`encoder.layers.encoder_layer_11.ln_1` for vit_b_16).

    The last block's own output reaches the logits through the class token only (the final LayerNorm
    works per token and the head reads the class token), so its patch tokens have zero gradient; at the
    block's first norm the patch tokens still feed the class token through attention. pytorch-grad-cam
    documents the same layer (`blocks[-1].norm1`) for ViTs."""
    last = list(net.encoder.layers.named_children())[-1][0]
    return f"encoder.layers.{last}.ln_1"


@dataclass(frozen=True)
class Family:
    """How to handle one torchvision family: where its final Linear sits and which layer to explain."""

    head: str  # dotted path of the final nn.Linear
    target_layer: Callable[[nn.Module], str]


FAMILIES: dict[str, Family] = {
    "resnet": Family("fc", lambda net: "layer4"),
    "vgg": Family("classifier.6", _vgg_target),
    "densenet": Family("classifier", lambda net: "features"),
    "mobilenet_v3": Family("classifier.3", lambda net: f"features.{_last_child_index(net.features)}"),
    "efficientnet": Family("classifier.1", lambda net: f"features.{_last_child_index(net.features)}"),
    "convnext": Family("classifier.2", lambda net: f"features.{_last_child_index(net.features)}"),
    "vit": Family("heads.head", _vit_target),
    "swin": Family("head", lambda net: f"features.{_last_child_index(net.features)}"),
}

TORCHVISION_BACKBONES: dict[str, str] = {
    **{name: "resnet" for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")},
    **{name: "vgg" for name in ("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn")},
    **{name: "densenet" for name in ("densenet121", "densenet161", "densenet169", "densenet201")},
    **{name: "mobilenet_v3" for name in ("mobilenet_v3_small", "mobilenet_v3_large")},
    **{name: "efficientnet" for name in ("efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3")},
    **{name: "convnext" for name in ("convnext_tiny", "convnext_small", "convnext_base")},
    **{name: "vit" for name in ("vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32")},
    **{name: "swin" for name in ("swin_t", "swin_s", "swin_b", "swin_v2_t", "swin_v2_s", "swin_v2_b")},
}


def resolve_weights(name: str, weights: str | None) -> WeightsEnum | None:
    """The torchvision weight enum for `weights`: None, "DEFAULT", an enum member name ("IMAGENET1K_V2")
    or its full name ("ResNet50_Weights.IMAGENET1K_V2"). Unknown names raise a ValueError listing the valid ones."""
    if weights is None or weights in ("none", "None", "null"):
        return None
    enum = torchvision.models.get_model_weights(name)
    prefix, _, member = weights.rpartition(".")
    available = ["DEFAULT", *(w.name for w in enum)]
    if (prefix and prefix != enum.__name__) or member not in available:
        raise ValueError(
            f"unknown weights {weights!r} for backbone {name!r}; available: {', '.join(available)} "
            f"(or {enum.__name__}.<name>, or None for random initialisation)"
        )
    return enum.DEFAULT if member == "DEFAULT" else enum[member]


def weights_download_hint(weights: WeightsEnum) -> tuple[str, str, str]:
    """`(what, by hand, switch off)` for `explain_download_failure`: the weights, how to fetch them on a
    machine with internet and where to copy them here, and how to train without them."""
    full_name = f"{type(weights).__name__}.{weights.name}"
    filename = os.path.basename(urlparse(weights.url).path)
    cache = os.path.join(torch.hub.get_dir(), "checkpoints")
    what = f"pretrained weights {full_name} (not in the torch hub cache {cache})"
    by_hand = (
        f"on a machine with internet run\n"
        f"    python -c \"import torchvision; torchvision.models.get_weight('{full_name}').get_state_dict(progress=True)\"\n"
        f"  and copy {filename} from that machine's $TORCH_HOME/hub/checkpoints (default ~/.cache/torch/hub/checkpoints) "
        f"into {cache} here (or set TORCH_HOME to a directory holding hub/checkpoints/{filename})"
    )
    return what, by_hand, "weights=null (--model.init_args.weights=null) trains from random initialisation"


def vit_options(name: str, input_shape: tuple[int, ...], weights: WeightsEnum | None) -> dict[str, int]:
    """torchvision ViTs take square images of one size, a multiple of the patch size: `image_size` from the
    input shape (random weights: any such size; pretrained: the size the weights were trained at)."""
    patch = int(name.rsplit("_", 1)[1])
    height, width = input_shape[1:]
    if height != width or height % patch:
        raise ValueError(f"backbone {name!r} takes square images whose side is a multiple of {patch}, got input_shape {tuple(input_shape)}")
    if weights is None:
        return {"image_size": height}
    trained = weights.meta["min_size"][0]
    if height != trained:
        raise ValueError(
            f"weights {type(weights).__name__}.{weights.name} were trained on {trained}x{trained} images and fix the "
            f"position embeddings to that size; resize the inputs to {trained} (input_shape (3, {trained}, {trained})) or use weights=None"
        )
    return {}


def build_torchvision_backbone(
    name: str, input_shape: tuple[int, ...], num_classes: int, weights: str | None = None, cifar_stem: bool = False
) -> tuple[nn.Module, str]:
    """`(network, default target layer relative to it)` for a torchvision classifier.

    The final Linear is replaced by a fresh `Linear(in_features, num_classes)` unless the pretrained weights
    already have `num_classes` categories (then the pretrained head is kept: ImageNet evaluation).
    `cifar_stem` (ResNets only) swaps the 7x7 stride-2 stem and its max-pool for a 3x3 stride-1 conv, so
    32x32 inputs keep a 4x4 map at layer4 instead of 1x1.
    """
    family = FAMILIES[TORCHVISION_BACKBONES[name]]
    if len(input_shape) != 3 or input_shape[0] != 3:
        raise ValueError(f"backbone {name!r} takes RGB images, input_shape (3, H, W); got {tuple(input_shape)}")
    if cifar_stem and TORCHVISION_BACKBONES[name] != "resnet":
        raise ValueError(f"cifar_stem applies to ResNets only, not {name!r}")
    weight_enum = resolve_weights(name, weights)
    options = vit_options(name, input_shape, weight_enum) if TORCHVISION_BACKBONES[name] == "vit" else {}
    if weight_enum is None:
        net = torchvision.models.get_model(name, weights=None, **options)
    else:
        what, by_hand, switch_off = weights_download_hint(weight_enum)
        with explain_download_failure(what, weight_enum.url, by_hand, switch_off, WeightsUnavailableError):
            net = torchvision.models.get_model(name, weights=weight_enum, **options)
    pretrained_classes = len(weight_enum.meta.get("categories") or []) if weight_enum is not None else -1
    if pretrained_classes != num_classes:
        parent_path, _, attribute = family.head.rpartition(".")
        parent = net.get_submodule(parent_path) if parent_path else net
        old = getattr(parent, attribute)
        if not isinstance(old, nn.Linear):
            raise TypeError(f"expected an nn.Linear head at {family.head} of {name}, found {type(old).__name__}")
        if isinstance(parent, nn.Sequential) and attribute.isdigit():
            parent[int(attribute)] = nn.Linear(old.in_features, num_classes)
        else:
            setattr(parent, attribute, nn.Linear(old.in_features, num_classes))
    if cifar_stem:
        net.conv1 = nn.Conv2d(3, net.conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    return net, family.target_layer(net)
