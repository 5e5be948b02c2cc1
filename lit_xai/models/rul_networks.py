"""Networks for remaining-useful-life regression on sensor windows `(B, C, T)`: a Conv1d feature extractor,
a (Bi)LSTM over time and a dense head with one output."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, Optional

import torch
from torch import Tensor, nn

Architecture = Literal["cnn_lstm", "cnn_bilstm", "multihead_cnn_bilstm"]
ARCHITECTURES: tuple[str, ...] = ("cnn_lstm", "cnn_bilstm", "multihead_cnn_bilstm")


@contextmanager
def cudnn_off(active: bool) -> Iterator[None]:
    """Turn cuDNN off inside the block when `active` (only its `enabled` flag; the others are untouched).

    cuDNN's LSTM backward runs in training mode only, and explainers differentiate the model in eval mode
    (Dropout off), so an eval-mode LSTM with gradients on a GPU runs PyTorch's own kernels."""
    if not active:
        yield
        return
    previous = torch.backends.cudnn.enabled
    torch.backends.cudnn.enabled = False
    try:
        yield
    finally:
        torch.backends.cudnn.enabled = previous


def conv_block(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """Conv1d ('same' padding, odd kernel: the time axis keeps its length) + ReLU."""
    return nn.Sequential(nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2), nn.ReLU())


class MultiHeadConv(nn.Module):
    """One convolutional head (two conv blocks) per sensor group; the heads' outputs are concatenated over
    channels, `(B, len(groups) * channels, T)`."""

    def __init__(self, groups: list[list[int]], channels: int, kernel_size: int) -> None:
        super().__init__()
        self.groups = [list(group) for group in groups]
        for index, group in enumerate(self.groups):
            self.register_buffer(f"group{index}", torch.tensor(group, dtype=torch.long), persistent=False)
        self.heads = nn.ModuleList(
            nn.Sequential(conv_block(len(group), channels, kernel_size), conv_block(channels, channels, kernel_size)) for group in self.groups
        )

    def forward(self, inputs: Tensor) -> Tensor:
        return torch.cat([head(inputs.index_select(1, getattr(self, f"group{i}"))) for i, head in enumerate(self.heads)], dim=1)


class CNNRecurrentNetwork(nn.Module):
    """`features` (Conv1d blocks, `(B, K, T)`) -> (Bi)LSTM over the T steps -> dense head -> `(B,)`.

    - "cnn_lstm": features block1 (kernel `kernel_size`) and block2 (kernel 3), a one-way LSTM;
    - "cnn_bilstm": the same features, a bidirectional LSTM;
    - "multihead_cnn_bilstm": one head of two conv blocks per sensor group (`sensor_groups`, channel indices;
      default one head per channel), concatenated and merged by a 1x1 conv block, then a stacked
      bidirectional LSTM.

    The recurrent summary is the last layer's final hidden state (both directions' for a BiLSTM; the
    backward direction's has read the window back to its first step). `target_layer` names the last Conv1d
    block (`features.block2`, or `features.merge` for the multi-head network), whose `(B, K, T)` output
    CAM methods explain over time.
    """

    def __init__(
        self,
        arch: Architecture,
        in_channels: int,
        conv_channels: int = 32,
        kernel_size: int = 5,
        lstm_hidden: int = 64,
        lstm_layers: Optional[int] = None,
        dense: int = 64,
        dropout: float = 0.2,
        sensor_groups: Optional[list[list[int]]] = None,
    ) -> None:
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}, got {arch!r}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (the time axis keeps its length), got {kernel_size}")
        if min(in_channels, conv_channels, lstm_hidden, dense) < 1 or not 0 <= dropout < 1:
            raise ValueError("in_channels, conv_channels, lstm_hidden and dense must be >= 1 and dropout in [0, 1)")
        layers = (2 if arch == "multihead_cnn_bilstm" else 1) if lstm_layers is None else lstm_layers
        if layers < 1:
            raise ValueError(f"lstm_layers must be >= 1, got {lstm_layers}")
        if arch == "multihead_cnn_bilstm":
            groups = [[c] for c in range(in_channels)] if sensor_groups is None else [list(g) for g in sensor_groups]
            if not groups or any(not g or any(not 0 <= c < in_channels for c in g) for g in groups):
                raise ValueError(f"sensor_groups must be non-empty lists of channel indices in [0, {in_channels}), got {sensor_groups}")
            self.features = nn.Sequential(
                OrderedDict(heads=MultiHeadConv(groups, conv_channels, kernel_size), merge=conv_block(len(groups) * conv_channels, conv_channels, 1))
            )
            self.target_layer = "features.merge"
        else:
            if sensor_groups is not None:
                raise ValueError(f"sensor_groups is for arch='multihead_cnn_bilstm', not {arch!r}")
            self.features = nn.Sequential(
                OrderedDict(block1=conv_block(in_channels, conv_channels, kernel_size), block2=conv_block(conv_channels, conv_channels, 3))
            )
            self.target_layer = "features.block2"
        self.bidirectional = arch != "cnn_lstm"
        self.lstm = nn.LSTM(
            conv_channels, lstm_hidden, num_layers=layers, batch_first=True, bidirectional=self.bidirectional, dropout=dropout if layers > 1 else 0.0
        )
        directions = 2 if self.bidirectional else 1
        self.head = nn.Sequential(nn.Linear(directions * lstm_hidden, dense), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dense, 1))

    def forward(self, inputs: Tensor) -> Tensor:
        if inputs.ndim != 3:
            raise ValueError(f"inputs must be windows (B, C, T), got shape {tuple(inputs.shape)}")
        features = self.features(inputs).transpose(1, 2)  # (B, T, K)
        with cudnn_off(inputs.is_cuda and not self.training and torch.is_grad_enabled()):
            _, (hidden, _) = self.lstm(features)
        summary = torch.cat([hidden[-2], hidden[-1]], dim=1) if self.bidirectional else hidden[-1]
        return self.head(summary).squeeze(1)
