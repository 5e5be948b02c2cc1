"""Keep freed CPU activation memory in the process for the next pass (glibc malloc settings).

A chunked pass allocates its activations, frees them, and the next pass allocates the same sizes again.
By default glibc's malloc returns a freed heap top larger than its trim threshold to the operating system,
and it serves blocks above its mmap threshold with fresh mappings; both thresholds adapt to the largest
block freed so far. Each return costs the next pass page faults on every page it touches. Measured on
2 cores, 1 thread (forward passes over 2048 inputs, time per input): a 2-conv CNN of 16 channels at
16 px took 20-22 us in chunks of 32-64 and 22-74 us, varying from run to run, in chunks of 80-2048;
with the thresholds fixed as below, 19-23 us in every chunk from 32 to 1024. lit-xai's small CNN on
32 px RGB images took 870 us in chunks of 32 and 1180-1700 us in chunks of 64-1024; fixed, 905 us in
chunks of 32 and 64, slower again from 128, where its largest activation reaches 32 MiB, the largest
mmap threshold glibc takes (`lit_xai.chunking` caps activations below it).

`keep_freed_memory` fixes the mmap threshold at 32 MiB (glibc's largest on 64-bit systems) and the trim
threshold at 1 GiB, once per process, the first time lit-xai runs chunked passes on a CPU; PyTorch's own
CPU launcher (`torch.backends.xeon.run_cpu`) does the same with jemalloc. The cost: the process keeps up
to 1 GiB of freed heap instead of returning it. It changes nothing where the C library is not glibc,
where the environment already sets `MALLOC_MMAP_THRESHOLD_` or `MALLOC_TRIM_THRESHOLD_` (your choice
stands), or where `LIT_XAI_KEEP_FREED_MEMORY=0`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 2**30
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers (malloc.h)
_OPT_OUT = "LIT_XAI_KEEP_FREED_MEMORY"

_log = logging.getLogger(__name__)
_decided: bool | None = None  # None until the first call; then whether the thresholds were set


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds once per process (see the module docstring); whether they are set."""
    global _decided
    if _decided is None:
        _decided = _set_thresholds()
    return _decided


def _set_thresholds() -> bool:
    if os.environ.get(_OPT_OUT, "1") == "0":
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    done = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    if done:
        _log.info(
            "lit-xai: glibc malloc keeps freed memory for the next pass (mmap threshold 32 MiB, trim threshold 1 GiB); "
            "set %s=0 to leave malloc as it is",
            _OPT_OUT,
        )
    return done
