"""Backbones built by name for the classifiers, each with the layer that CAM methods explain by default."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from lit_xai.models.torchvision_backbones import TORCHVISION_BACKBONES, build_torchvision_backbone

BACKBONES = ("small_cnn", *TORCHVISION_BACKBONES)


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


def build_backbone(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    width: int = 32,
    weights: str | None = None,
    cifar_stem: bool = False,
) -> tuple[nn.Module, str]:
    """`(network, default target layer relative to the network)` for a backbone name.

    "small_cnn" (any channel count, 1-D or 2-D, `width` channels) or a torchvision classifier from
    `TORCHVISION_BACKBONES` (RGB images; `weights` None, "DEFAULT" or a weight name; `cifar_stem` for ResNets).
    """
    if len(input_shape) not in (2, 3):
        raise ValueError(f"input_shape must be (C, H, W) for images or (C, T) for time series, got {tuple(input_shape)}")
    if name == "small_cnn":
        if weights is not None:
            raise ValueError("small_cnn has no pretrained weights; use weights=None")
        return small_cnn(input_shape[0], num_classes, len(input_shape) - 1, width), "block3"
    if name in TORCHVISION_BACKBONES:
        return build_torchvision_backbone(name, tuple(input_shape), num_classes, weights, cifar_stem)
    raise ValueError(f"unknown backbone {name!r}; available: {', '.join(BACKBONES)}")
