"""Baselines x' for path methods (Expected Grad-CAM, Integrated/Expected Gradients).

A source either holds a fixed bank `(N, *shape)` that draws index into (`bank` returns it; the bank's
layer activations can then be computed once and cached), or draws each baseline on its own
(`draw_pairs`). Every draw depends only on the seed, the sample's content and the draw's number
(seeding.py), so explanations do not depend on the batch or the process, and baselines are made one
chunk at a time (memory does not grow with the number of draws).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from lit_xai.explainers.base import constructor_repr
from lit_xai.explainers.seeding import pair_generator


class BaselineSource(abc.ABC):
    """Something to draw baselines from."""

    def bank(self, inputs: Tensor) -> Tensor | None:
        """The fixed bank `(N, *shape)` on the inputs' device and dtype, or None for per-draw sources."""
        return None

    def draw_pairs(self, inputs: Tensor, samples: Tensor, draws: Tensor, seeds: list[int]) -> Tensor:
        """Baselines `(n, *shape)` for (sample, draw number) pairs; `seeds[b]` is sample b's seed."""
        raise TypeError(f"{type(self).__name__} draws from a bank; use bank()")

    def __repr__(self) -> str:
        return constructor_repr(self)  # a bank by its shape and dtype, not its values


class BankBaselines(BaselineSource):
    """Baselines drawn uniformly, with replacement, from a fixed bank `(N, *shape)` (N = 1: a fixed baseline)."""

    def __init__(self, bank: Tensor) -> None:
        if not isinstance(bank, Tensor) or bank.ndim < 2 or not bank.is_floating_point():
            raise ValueError(f"a baseline bank must be a float tensor (N, *input_shape), got {getattr(bank, 'shape', bank)!r}")
        if not bool(torch.isfinite(bank).all()):
            raise ValueError("the baseline bank contains NaN or inf")
        self.data = bank.detach()
        self._copies: dict[tuple[torch.device, torch.dtype], Tensor] = {}

    def bank(self, inputs: Tensor) -> Tensor:
        if tuple(self.data.shape[1:]) != tuple(inputs.shape[1:]):
            raise ValueError(
                f"baselines have shape {tuple(self.data.shape[1:])} per sample but the inputs have {tuple(inputs.shape[1:])}"
            )
        key = (inputs.device, inputs.dtype)
        if key not in self._copies:  # one copy per device and dtype, so cached activations stay valid
            self._copies[key] = self.data.to(device=inputs.device, dtype=inputs.dtype)
        return self._copies[key]


class ZeroBaseline(BankBaselines):
    """x' = 0 (in normalised input space: the data mean): a bank of one zero input, made per input shape."""

    def __init__(self) -> None:
        self._copies = {}

    def bank(self, inputs: Tensor) -> Tensor:
        key = (inputs.device, inputs.dtype, tuple(inputs.shape[1:]))
        if key not in self._copies:
            self._copies[key] = inputs.new_zeros((1, *inputs.shape[1:]))  # type: ignore[index]
        return self._copies[key]  # type: ignore[index]


class GaussianBaselines(BaselineSource):
    """x' ~ N(mean, std^2) independently per element (or, with `around_input`, x' = x + N(0, std^2))."""

    def __init__(self, std: float = 1.0, mean: float = 0.0, around_input: bool = False) -> None:
        if std <= 0:
            raise ValueError(f"std must be > 0, got {std}")
        self.std, self.mean, self.around_input = std, mean, around_input

    def draw_pairs(self, inputs: Tensor, samples: Tensor, draws: Tensor, seeds: list[int]) -> Tensor:
        noise = pair_normal(inputs, samples, draws, seeds, stream=1) * self.std
        return noise + (inputs[samples] if self.around_input else self.mean)


def pair_normal(inputs: Tensor, samples: Tensor, draws: Tensor, seeds: list[int], stream: int) -> Tensor:
    """Standard normal noise `(n, *shape)` drawn on the inputs' device, one independent stream per (sample seed,
    draw number, stream) (`lit_xai.explainers.seeding`)."""
    shape, device = tuple(inputs.shape[1:]), inputs.device
    noise = [
        torch.randn(shape, generator=pair_generator(seeds[b], d, stream, device), device=device)
        for b, d in zip(samples.tolist(), draws.tolist())
    ]
    return torch.stack(noise).to(dtype=inputs.dtype)


class DataBaselines(BankBaselines):
    """A bank of `size` samples drawn once from a dataset, a DataLoader or a tensor (e.g. the training set),
    with `seed` or explicit `indices` for reproducibility (Erion et al.'s expected gradients draw
    baselines from the training data)."""

    def __init__(
        self,
        data: Dataset | DataLoader | Tensor,
        size: int = 64,
        seed: int = 0,
        indices: Iterable[int] | None = None,
    ) -> None:
        super().__init__(bank_from_data(data, size, seed, indices))


def bank_from_data(data: Dataset | DataLoader | Tensor, size: int, seed: int, indices: Iterable[int] | None) -> Tensor:
    """`size` inputs (the first element of each sample) chosen with `seed`, or at `indices`."""
    dataset = data.dataset if isinstance(data, DataLoader) else data
    length = len(dataset)  # type: ignore[arg-type]
    if indices is None:
        chosen = torch.randperm(length, generator=torch.Generator().manual_seed(seed))[: min(size, length)].tolist()
    else:
        chosen = list(indices)
        if any(not 0 <= i < length for i in chosen):
            raise ValueError(f"baseline indices must lie in [0, {length}), got {chosen}")
    if not chosen:
        raise ValueError("no baselines: the dataset is empty or no indices were given")
    samples = [dataset[i] for i in chosen]
    inputs = [s[0] if isinstance(s, (tuple, list)) else s for s in samples]
    return torch.stack([torch.as_tensor(x, dtype=torch.float32) for x in inputs])


def as_baseline_source(baselines: BaselineSource | Tensor | None) -> BaselineSource:
    """`None` -> zeros; a tensor `(N, *shape)` -> a bank; a source is kept."""
    if baselines is None:
        return ZeroBaseline()
    if isinstance(baselines, BaselineSource):
        return baselines
    if isinstance(baselines, Tensor):
        return BankBaselines(baselines)
    raise ValueError(f"baselines must be a tensor (N, *input_shape), a BaselineSource or None, got {type(baselines).__name__}")
