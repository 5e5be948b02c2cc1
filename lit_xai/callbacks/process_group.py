"""Destroying, at interpreter exit, a gloo process group that Lightning created for a run.

Lightning registers `destroy_process_group` at exit for NCCL groups only. A gloo group left alive lets
the interpreter exit while gloo's threads still run, which now and then aborts a `ddp_spawn` worker
after its work is done ("terminate called without an active exception", SIGABRT, a non-zero exit).
The teardown is registered only for a group that did not exist when the callback was built, i.e. one
that Lightning's strategy created for this run: a group the user created is theirs to destroy.
"""

from __future__ import annotations

import atexit

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.distributed import _destroy_dist_connection

_registered = False


def process_group_exists() -> bool:
    """Whether this process has an initialised default process group."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def destroy_gloo_group_at_exit(existed_before: bool) -> bool:
    """Register the destruction of the default process group at exit (once per process) when it is a gloo
    group created after the caller looked (`existed_before` False); returns whether it is registered."""
    global _registered
    if existed_before or not process_group_exists() or torch.distributed.get_backend() != "gloo":
        return _registered
    if not _registered:
        atexit.register(_destroy_dist_connection)
        _registered = True
    return _registered


class ProcessGroupTeardown(pl.Callback):
    """Destroy at exit the gloo process group that Lightning creates for a CPU DDP run (see the module's
    docstring). `lit-xai` always adds it and ExplainerCallback does the same by itself; attach it to a
    Trainer of your own when you run DDP on CPU without either."""

    def __init__(self) -> None:
        self.group_existed = process_group_exists()

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        destroy_gloo_group_at_exit(self.group_existed)
