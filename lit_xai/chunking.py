"""Chunked model evaluations: the one loop every batched explainer and metric walks.

Many methods evaluate the model on several derived inputs per sample: path points (Expected Grad-CAM,
Integrated Gradients), noise draws (SmoothGrad), masks (Score-CAM, RISE), perturbation steps
(Insertion/Deletion). Each flattens its (sample, repeat) grid into one index range and walks it with
`index_chunks` / `pair_chunks`, running one forward (and backward) pass per chunk.

`internal_batch_size` is the number of derived inputs per pass. An explicit positive int always wins.
`None` (every method's default) chooses it for the device, the one place where that is decided:

* CPU: the caller's batch size, raised to at least `CPU_MIN_ELEMENTS` and capped at `CPU_MAX_ELEMENTS`
  input elements per pass (enough inputs to pay the network's per-call overhead: resnet18 at 32 px,
  1 thread, 0.69 ms per image in passes of 512, 1.6 ms in passes of 8), then capped by the network's
  activations: the first chunk (the caller's batch, at least `CPU_FIRST_ROWS`: fewer rows can round
  differently in a GEMM) runs while a global module forward hook records the largest tensor any module
  outputs, and the rest run in equal chunks whose largest activation stays within
  `CPU_MAX_ACTIVATION_BYTES`. A larger one leaves the caches, and from 32 MiB malloc maps it afresh every
  pass. Work too small to reach the cap even in a network that widens its input `CPU_MAX_WIDENING` times
  runs in one pass, unmeasured. Per input, 1 and 2 threads (docs/benchmarks.md, "Chunk sizes on CPU"):
  before the cap and the malloc thresholds, networks that widen a small input to many channels took
  1.5-4.7 x the time of their best chunk (a 2-conv CNN of 16 channels at 16 px, 77 us against 20 us at
  1 thread; lit-xai's small CNN on 32 px RGB images, 1.34 ms against 0.89 ms); now 1.0-1.27 x, and
  resnet18, ResNet-50, vit_tiny and C-MAPSS windows run as before. Chunked CPU passes also set glibc's malloc thresholds
  once per process (`lit_xai.cpu_allocator`); without them the freed activations go back to the
  operating system after each pass and the next pass faults them in again.
* CUDA: the first chunk is the caller's batch size; its peak memory per derived input is measured, and
  every later chunk is as large as `CUDA_MEMORY_FRACTION` of the memory then free allows (at most
  `CUDA_MAX_CHUNK`). Measuring resets the device's peak-memory statistic
  (`torch.cuda.reset_peak_memory_stats`).
* any other device: the caller's batch size.

Out of memory (`torch.OutOfMemoryError`, alias `torch.cuda.OutOfMemoryError`; found through the cause
chain, as `lit_xai.targets.model_outputs` wraps the model's errors): automatic chunks fill half of the
memory free when measured, and other tenants of the device move it. Every explainer call
(`Explainer.__call__`) and every metric update runs under `retry_out_of_memory`: on out of memory it
halves the largest chunk the failed attempt ran, frees the cached blocks, and runs the whole call
again (explainers and metric updates are pure until they return: randomness is seeded per pair and
states are added last); the size that worked is warned once and kept on the explainer or metric
(`_chunk_limit`) for the rest of the run, capping every later chunk, explicit sizes included. Since a
result never depends on the chunk size, the maps are those of that size set by hand. An out-of-memory
error that chunks of one derived input still raise, or one raised before any chunk ran, is re-raised.

A sample's result never depends on how its derived inputs are chunked: randomness is seeded per
(sample, repeat) pair (`lit_xai.explainers.seeding`), so the chunk size changes speed only.
"""

from __future__ import annotations

import functools
import math
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch
from torch import Tensor

from lit_xai.checks import check_positive_int
from lit_xai.cpu_allocator import keep_freed_memory

CPU_MIN_ELEMENTS = 2**19
CPU_MAX_ELEMENTS = 2**20
CPU_MAX_ACTIVATION_BYTES = 2**24
CPU_MAX_WIDENING = 64
CPU_FIRST_ROWS = 8
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


class _Attempt:
    """One run of a call under `retry_out_of_memory`: the chunk cap it runs with and the largest chunk it ran."""

    def __init__(self, limit: int | None) -> None:
        self.limit, self.largest = limit, 0


_running = threading.local()  # the stack of attempts in this thread, innermost last


def _attempts() -> list[_Attempt]:
    if not hasattr(_running, "stack"):
        _running.stack = []
    return _running.stack


def out_of_memory_error(error: BaseException) -> BaseException | None:
    """The `torch.OutOfMemoryError` in `error`'s cause / context chain (lit-xai wraps model errors), or None."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, torch.OutOfMemoryError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


Call = TypeVar("Call", bound=Callable[..., Any])


def retry_out_of_memory(method: Call) -> Call:
    """Decorate an explainer's `__call__` or a metric's `update` (see the module docstring): on out of
    memory, halve the largest chunk that ran, run the call again, warn once with the size that worked and
    keep it on the object (`_chunk_limit`) for its later calls."""

    @functools.wraps(method)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        failed: list[int] = []
        while True:
            attempt = _Attempt(vars(self).get("_chunk_limit"))  # not getattr: a missing attribute costs nn.Module a raised error
            _attempts().append(attempt)
            try:
                result = method(self, *args, **kwargs)
            except BaseException as error:
                if out_of_memory_error(error) is None or attempt.largest <= 1:
                    raise
                failed.append(attempt.largest)  # leaving the except block frees the failed attempt's tensors
            else:
                if failed:
                    warnings.warn(
                        f"{type(self).__name__}: out of memory with chunks of {failed[0]} derived inputs a pass; halved and "
                        f"retried, chunks of at most {self._chunk_limit} worked and are kept for the rest of the run "
                        f"(internal_batch_size={self._chunk_limit} starts there)",
                        stacklevel=2,
                    )
                return result
            finally:
                _attempts().pop()
            self._chunk_limit = max(1, failed[-1] // 2)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    return guarded  # type: ignore[return-value]


class _LargestOutput:
    """A global module forward hook: the largest tensor (bytes) any module outputs while it is registered."""

    def __init__(self) -> None:
        self.bytes = 0

    def __call__(self, module: torch.nn.Module, inputs: object, output: object) -> None:
        self.bytes = max(self.bytes, _largest_tensor_bytes(output))


def _largest_tensor_bytes(value: object, depth: int = 2) -> int:
    """Bytes of the largest tensor in a module output: a tensor, or tensors in tuples, lists or mappings."""
    if isinstance(value, Tensor):
        return value.numel() * value.element_size()
    if depth == 0:
        return 0
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return max((_largest_tensor_bytes(item, depth - 1) for item in value), default=0)
    return 0


def cpu_chunk_from_activations(largest_bytes: int, rows: int, size: int) -> int:
    """`size` capped so that a pass's largest activation stays within `CPU_MAX_ACTIVATION_BYTES`, given the
    `largest_bytes` measured on a pass of `rows` derived inputs (nothing measured: `size` stands)."""
    per_row = largest_bytes / max(1, rows)
    if per_row <= 0:
        return size
    return max(1, min(size, int(CPU_MAX_ACTIVATION_BYTES // per_row)))


def index_chunks(total: int, internal_batch_size: int | None, like: Tensor, batch_size: int | None = None) -> Iterator[Tensor]:
    """Consecutive index tensors (on `like`'s device) that together cover `range(total)` once, in order.

    `internal_batch_size=None` sizes them automatically for `like` (inputs of the caller's batch, or one
    item of the derived inputs, `(1, *item)`, with `batch_size` the caller's batch size). Inside a call
    under `retry_out_of_memory`, no chunk exceeds the size that call learned after an out-of-memory error.
    """
    device = like.device
    if device.type == "cpu":
        keep_freed_memory()
    attempts = _attempts()
    attempt = attempts[-1] if attempts else None
    limit = attempt.limit if attempt is not None else None
    measure_cuda = measure_cpu = False
    if internal_batch_size is not None:
        size = check_positive_int(internal_batch_size, "internal_batch_size")
    else:
        size = automatic_chunk_size(like, batch_size)
        measure_cuda = device.type == "cuda"
        if device.type == "cpu" and limit is None:  # under a learned limit, chunks are that size, as set by hand
            first = min(size, max(CPU_FIRST_ROWS, like.shape[0] if batch_size is None else batch_size))
            widest = total * math.prod(like.shape[1:]) * like.element_size() * CPU_MAX_WIDENING
            if total > first and widest > CPU_MAX_ACTIVATION_BYTES:
                measure_cpu, size, rule = True, first, size
    if limit is not None:
        size = min(size, limit)
    if measure_cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start_bytes = torch.cuda.memory_allocated(device)
    start = 0
    while start < total:
        stop = min(start + size, total)
        if attempt is not None:
            attempt.largest = max(attempt.largest, stop - start)
        if measure_cpu:
            largest = _LargestOutput()
            handle = torch.nn.modules.module.register_module_forward_hook(largest)
            try:
                yield torch.arange(start, stop, device=device)
            finally:
                handle.remove()
            size, measure_cpu = cpu_chunk_from_activations(largest.bytes, stop - start, rule), False
            if stop < total:  # the rest in equal chunks: no small last chunk
                size = math.ceil((total - stop) / math.ceil((total - stop) / size))
        else:
            yield torch.arange(start, stop, device=device)
        if measure_cuda:
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device) - start_bytes
            free, _ = torch.cuda.mem_get_info(device)
            size, measure_cuda = max(size, chunk_size_from_memory(peak, stop - start, free)), False
            size = size if limit is None else min(size, limit)
        start = stop


def pair_chunks(
    samples: int, repeats: int, internal_batch_size: int | None, like: Tensor, batch_size: int | None = None
) -> Iterator[tuple[Tensor, Tensor]]:
    """Chunks of the flattened `(samples, repeats)` grid as `(sample, repeat)` index tensors, sample-major:
    (0, 0), (0, 1), ..., (0, repeats - 1), (1, 0), ..."""
    for pairs in index_chunks(samples * repeats, internal_batch_size, like, batch_size):
        yield pairs // repeats, pairs % repeats
