"""Choosing the fixed probe of validation samples an ExplainerCallback explains every epoch."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset, TensorDataset


def dataset_labels(dataset: Dataset) -> Tensor | None:
    """Labels of every sample when the dataset exposes them without loading inputs (`targets` of
    torchvision datasets and of `RULWindows`, the second tensor of a TensorDataset, Subsets of those):
    class indices, or float regression targets (e.g. RUL) of shape `(N,)`."""
    if isinstance(dataset, Subset):
        labels = dataset_labels(dataset.dataset)
        return None if labels is None else labels[torch.as_tensor(dataset.indices, dtype=torch.long)]
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) > 1:
        labels = dataset.tensors[1]
        return labels if labels.ndim == 1 else None
    labels = getattr(dataset, "targets", None)
    if labels is None:
        return None
    labels = torch.as_tensor(labels)
    return labels if labels.ndim == 1 and len(labels) == len(dataset) else None  # type: ignore[arg-type]


def value_bins(values: Tensor, bins: int) -> Tensor:
    """Regression targets -> the index of their bin among `bins` equal-width bins over [min, max]
    (e.g. RUL 0..125 in 5 bins of 25 cycles), so that every range of the target is represented."""
    values = values.double()
    low, high = values.min(), values.max()
    if high <= low:
        return torch.zeros(len(values), dtype=torch.long)
    return ((values - low) / (high - low) * bins).long().clamp(max=bins - 1)


def choose_probe(dataset_size: int, probe_size: int, seed: int, labels: Tensor | None = None, regression_bins: int = 5) -> Tensor:
    """`probe_size` distinct indices (all when the set is smaller), sorted.

    With labels: stratified by class, i.e. classes take turns (in a seeded order) giving one of their
    samples (each class's samples in a seeded order), so every class is represented as evenly as the
    probe size allows. Float labels (regression, e.g. RUL) are stratified by `regression_bins`
    equal-width bins of their value (`value_bins`). Without labels: a seeded random subset.
    """
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(dataset_size, generator=generator)
    if labels is None:
        return order[: min(probe_size, dataset_size)].sort().values
    if labels.is_floating_point():
        labels = value_bins(labels, regression_bins)
    shuffled = labels[order]
    # position of each sample within its class (in the shuffled order), then interleave classes by that position
    classes, inverse = shuffled.unique(return_inverse=True)
    class_order = torch.randperm(len(classes), generator=generator)
    class_rank = torch.empty_like(class_order)
    class_rank[class_order] = torch.arange(len(classes))
    within = torch.zeros_like(inverse)
    for c in range(len(classes)):
        members = inverse == c
        within[members] = torch.arange(int(members.sum()))
    turn = within * len(classes) + class_rank[inverse]
    return order[turn.argsort()[: min(probe_size, dataset_size)]].sort().values
