"""Backbones built by name for the classifiers, each with the layer that CAM methods explain by default."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn
from torchvision.models import VisionTransformer

from lit_xai.models.torchvision_backbones import TORCHVISION_BACKBONES, _vit_target, build_torchvision_backbone

BACKBONES = ("small_cnn", "vit_tiny", *TORCHVISION_BACKBONES)


def small_cnn(in_channels: int, num_classes: int, spatial_dims: int, width: int = 32) -> nn.Sequential:
    """Three conv blocks and a linear head, for 1-D (time series) or 2-D (image) inputs.

    block1: conv 3 + ReLU; block2: conv 3 + ReLU + max-pool 2; block3: conv 3 + ReLU (the default
    target layer, at half the input resolution); head: global average pool + linear.
    """
    conv = {1: nn.Conv1d, 2: nn.Conv2d}[spatial_dims]
    pool = {1: nn.MaxPool1d, 2: nn.MaxPool2d}[spatial_dims]
    avg = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d}[spatial_dims]
    return nn.Sequential(
        OrderedDict(
            block1=nn.Sequential(conv(in_channels, width, 3, padding=1), nn.ReLU()),
            block2=nn.Sequential(conv(width, 2 * width, 3, padding=1), nn.ReLU(), pool(2)),
            block3=nn.Sequential(conv(2 * width, 2 * width, 3, padding=1), nn.ReLU()),
            head=nn.Sequential(avg(1), nn.Flatten(), nn.Linear(2 * width, num_classes)),
        )
    )


def vit_tiny(in_channels: int, image_size: int, num_classes: int, width: int = 64) -> VisionTransformer:
    """A small torchvision VisionTransformer for tests and the quickstart: patch 4, 4 blocks of 4 heads,
    `width` hidden channels (MLP 2 x width), a class token; any channel count (its patch embedding is
    rebuilt for `in_channels`). On 32x32 images it has an 8x8 patch grid and trains in seconds on CPU."""
    if image_size % 4:
        raise ValueError(f"vit_tiny takes square images whose side is a multiple of 4 (patch size), got {image_size}")
    if width % 4:
        raise ValueError(f"vit_tiny's width must be a multiple of its 4 heads, got {width}")
    net = VisionTransformer(
        image_size=image_size, patch_size=4, num_layers=4, num_heads=4, hidden_dim=width, mlp_dim=2 * width, num_classes=num_classes
    )
    if in_channels != 3:
        net.conv_proj = nn.Conv2d(in_channels, width, kernel_size=4, stride=4)
    return net


def build_backbone(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    width: int = 32,
    weights: str | None = None,
    cifar_stem: bool = False,
) -> tuple[nn.Module, str]:
    """`(network, default target layer relative to the network)` for a backbone name.

    "small_cnn" (any channel count, 1-D or 2-D, `width` channels), "vit_tiny" (square images, `width`
    hidden channels; see `vit_tiny`) or a torchvision classifier from
    `TORCHVISION_BACKBONES` (RGB images; `weights` None, "DEFAULT" or a weight name; `cifar_stem` for ResNets).
    """
    if len(input_shape) not in (2, 3):
        raise ValueError(f"input_shape must be (C, H, W) for images or (C, T) for time series, got {tuple(input_shape)}")
    if name == "small_cnn":
        if weights is not None:
            raise ValueError("small_cnn has no pretrained weights; use weights=None")
        return small_cnn(input_shape[0], num_classes, len(input_shape) - 1, width), "block3"
    if name == "vit_tiny":
        if weights is not None:
            raise ValueError("vit_tiny has no pretrained weights; use weights=None")
        if len(input_shape) != 3 or input_shape[1] != input_shape[2]:
            raise ValueError(f"vit_tiny takes square images, input_shape (C, S, S); got {tuple(input_shape)}")
        net = vit_tiny(input_shape[0], input_shape[1], num_classes, width)
        return net, _vit_target(net)
    if name in TORCHVISION_BACKBONES:
        return build_torchvision_backbone(name, tuple(input_shape), num_classes, weights, cifar_stem)
    raise ValueError(f"unknown backbone {name!r}; available: {', '.join(BACKBONES)}")
