"""TorchScript for the few sequential loops that run op by op (NMF and lasso coordinate descent)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TypeVar

import torch

F = TypeVar("F", bound=Callable)


def scripted(function: F) -> F:
    """`torch.jit.script(function)` without the deprecation warning torch >= 2.14 prints at every import of
    lit-xai (the scripted loops still run; `torch.compile` would compile them on first use instead)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit.script.*")
        return torch.jit.script(function)  # type: ignore[return-value]
