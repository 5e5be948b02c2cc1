"""Chunked model evaluations: the one loop every batched explainer and metric walks.

Many methods evaluate the model on several derived inputs per sample: path points (Expected Grad-CAM,
Integrated Gradients), noise draws (SmoothGrad), masks (Score-CAM, RISE), perturbation steps
(Insertion/Deletion). Each flattens its (sample, repeat) grid into one index range and walks it with
`index_chunks` / `pair_chunks`, running one forward (and backward) pass per chunk.

`internal_batch_size` is the number of derived inputs per pass. An explicit positive int always wins.
`None` (every method's default) chooses it for the device, the one place where that is decided:

* CPU: the caller's batch size, raised to at least `CPU_MIN_ELEMENTS` and capped at `CPU_MAX_ELEMENTS`
  input elements per pass. A pass costs least per input between about half a million and a million
  elements (measured on 2 cores, best per-image time: ResNet-50 at 224 px 65-67 ms for 4-8 images a pass,
  70 ms for 16, 109 ms for 32, 104 ms for 1; resnet18 at 64 px 2.4 ms for 64-128 images, 5.5 ms for 4):
  small passes pay the network's per-call overhead, large ones lose the caches and make the allocator
  return and re-fetch their activations every pass. So 224 px images go 4-6 a pass, 64 px images 43-85.
* CUDA: the first chunk is the caller's batch size; its peak memory per derived input is measured, and
  every later chunk is as large as `CUDA_MEMORY_FRACTION` of the memory then free allows (at most
  `CUDA_MAX_CHUNK`). Measuring resets the device's peak-memory statistic
  (`torch.cuda.reset_peak_memory_stats`).
* any other device: the caller's batch size.

A sample's result never depends on how its derived inputs are chunked: randomness is seeded per
(sample, repeat) pair (`lit_xai.explainers.seeding`), so the chunk size changes speed only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor

from lit_xai.checks import check_positive_int

CPU_MIN_ELEMENTS = 2**19
CPU_MAX_ELEMENTS = 2**20
CUDA_MEMORY_FRACTION = 0.5
CUDA_MAX_CHUNK = 4096


def check_internal_batch_size(value: object) -> int | None:
    """`None` (automatic) or a positive int."""
    return None if value is None else check_positive_int(value, "internal_batch_size")


def automatic_chunk_size(like: Tensor, batch_size: int | None = None) -> int:
    """The first chunk's size for inputs shaped like `like` `(B, *item)` (see the module docstring)."""
    batch = max(1, like.shape[0] if batch_size is None else batch_size)
    if like.device.type == "cpu":
        item = max(1, math.prod(like.shape[1:]))
        low = math.ceil(CPU_MIN_ELEMENTS / item)
        return min(max(batch, low), max(low, CPU_MAX_ELEMENTS // item))
    return batch


def chunk_size_from_memory(peak_bytes: int, items: int, free_bytes: int, fraction: float = CUDA_MEMORY_FRACTION) -> int:
    """Derived inputs per pass such that `items`' measured peak scaled up fits `fraction` of the free memory."""
    per_item = max(1.0, peak_bytes / max(1, items))
    return int(min(CUDA_MAX_CHUNK, max(1, fraction * free_bytes // per_item)))


def index_chunks(total: int, internal_batch_size: int | None, like: Tensor, batch_size: int | None = None) -> Iterator[Tensor]:
    """Consecutive index tensors (on `like`'s device) that together cover `range(total)` once, in order.

    `internal_batch_size=None` sizes them automatically for `like` (inputs of the caller's batch, or one
    item of the derived inputs, `(1, *item)`, with `batch_size` the caller's batch size).
    """
    if internal_batch_size is not None:
        size, measure = check_positive_int(internal_batch_size, "internal_batch_size"), False
    else:
        size, measure = automatic_chunk_size(like, batch_size), like.device.type == "cuda"
    device = like.device
    if measure:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start_bytes = torch.cuda.memory_allocated(device)
    start = 0
    while start < total:
        stop = min(start + size, total)
        yield torch.arange(start, stop, device=device)
        if measure:
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device) - start_bytes
            free, _ = torch.cuda.mem_get_info(device)
            size, measure = max(size, chunk_size_from_memory(peak, stop - start, free)), False
        start = stop


def pair_chunks(
    samples: int, repeats: int, internal_batch_size: int | None, like: Tensor, batch_size: int | None = None
) -> Iterator[tuple[Tensor, Tensor]]:
    """Chunks of the flattened `(samples, repeats)` grid as `(sample, repeat)` index tensors, sample-major:
    (0, 0), (0, 1), ..., (0, repeats - 1), (1, 0), ..."""
    for pairs in index_chunks(samples * repeats, internal_batch_size, like, batch_size):
        yield pairs // repeats, pairs % repeats
