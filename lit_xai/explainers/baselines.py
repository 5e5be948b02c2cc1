"""Baselines x' for path methods (Expected Grad-CAM, Integrated/Expected Gradients).

A baseline source gives, for inputs `(B, *shape)` and `draws` M, a tensor `(B, M, *shape)`. Draws
depend only on the seed and each sample's content (seeding.py), so explanations do not depend on the
batch or the process. Sources that draw from a fixed bank also return the bank indices, so the
bank's layer activations can be computed once and reused.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from lit_xai.explainers.seeding import per_sample_normal, sample_seed


class BaselineSource(abc.ABC):
    """Something to draw baselines from."""

    @abc.abstractmethod
    def draw(self, inputs: Tensor, draws: int, seed: int) -> tuple[Tensor, Tensor | None]:
        """`(baselines (B, M, *shape), bank indices (B, M) or None)`."""


class ZeroBaseline(BaselineSource):
    """x' = 0 (in normalised input space: the data mean)."""

    def draw(self, inputs: Tensor, draws: int, seed: int) -> tuple[Tensor, Tensor | None]:
        return inputs.new_zeros((inputs.shape[0], draws, *inputs.shape[1:])), None


class GaussianBaselines(BaselineSource):
    """x' ~ N(mean, std^2) independently per element (or, with `around_input`, x' = x + N(0, std^2))."""

    def __init__(self, std: float = 1.0, mean: float = 0.0, around_input: bool = False) -> None:
        if std <= 0:
            raise ValueError(f"std must be > 0, got {std}")
        self.std, self.mean, self.around_input = std, mean, around_input

    def draw(self, inputs: Tensor, draws: int, seed: int) -> tuple[Tensor, Tensor | None]:
        noise = per_sample_normal(inputs, draws, seed) * self.std
        centre = inputs.unsqueeze(1) if self.around_input else self.mean
        return noise + centre, None


class BankBaselines(BaselineSource):
    """Baselines drawn uniformly, with replacement, from a fixed bank `(N, *shape)` (N = 1: a fixed baseline)."""

    def __init__(self, bank: Tensor) -> None:
        if not isinstance(bank, Tensor) or bank.ndim < 2 or not bank.is_floating_point():
            raise ValueError(f"a baseline bank must be a float tensor (N, *input_shape), got {getattr(bank, 'shape', bank)!r}")
        if not bool(torch.isfinite(bank).all()):
            raise ValueError("the baseline bank contains NaN or inf")
        self.bank = bank.detach()
        self._copies: dict[tuple[torch.device, torch.dtype], Tensor] = {}

    def bank_on(self, device: torch.device, dtype: torch.dtype) -> Tensor:
        """The bank on a device and dtype, copied once (so cached activations stay valid)."""
        key = (torch.device(device), dtype)
        if key not in self._copies:
            self._copies[key] = self.bank.to(device=device, dtype=dtype)
        return self._copies[key]

    def draw(self, inputs: Tensor, draws: int, seed: int) -> tuple[Tensor, Tensor | None]:
        if tuple(self.bank.shape[1:]) != tuple(inputs.shape[1:]):
            raise ValueError(
                f"baselines have shape {tuple(self.bank.shape[1:])} per sample but the inputs have {tuple(inputs.shape[1:])}"
            )
        count = self.bank.shape[0]
        indices = torch.stack(
            [torch.randint(count, (draws,), generator=torch.Generator().manual_seed(sample_seed(x, seed))) for x in inputs]
        ).to(inputs.device)
        return self.bank_on(inputs.device, inputs.dtype)[indices], indices


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
