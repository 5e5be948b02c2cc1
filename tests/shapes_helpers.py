"""A small CNN trained once per test session on ShapesDataModule (shared by the shapes and randomisation tests)."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import lightning.pytorch as pl
import torch
from filelock import FileLock

from lit_xai.datamodules.shapes import ShapesDataModule
from lit_xai.models import ImageClassifier


@contextmanager
def single_thread() -> Iterator[None]:
    """One intra-op thread: small convolutions on a busy 2-core machine run several times faster (and the
    result does not depend on the machine's thread count)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


SHARED_FOLDER = "LIT_XAI_TEST_SHARED"  # set by tests/conftest.py: one folder per pytest run, shared by its xdist workers


def trained_once(name: str, build: Callable[[], torch.nn.Module], train: Callable[[torch.nn.Module], float]) -> tuple[torch.nn.Module, float]:
    """`build()` a model and `train(model) -> validation accuracy` it once per pytest run: the first process
    (of the run's xdist workers) to get here trains and saves the weights and the accuracy in the run's
    shared temporary folder, under a file lock; the others load them (the same numbers: the weights are
    the trained ones, bit for bit). Outside pytest (no shared folder) it just trains."""
    model = build()
    folder = os.environ.get(SHARED_FOLDER)
    if not folder:
        return model, train(model)
    path = Path(folder) / f"{name}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if path.exists():
            saved = torch.load(path, weights_only=True)
            model.load_state_dict(saved["state_dict"])
            return model, float(saved["val_acc"])
        accuracy = train(model)
        torch.save({"state_dict": model.state_dict(), "val_acc": accuracy}, path)
    return model, accuracy


def fit_quietly(model: pl.LightningModule, data: pl.LightningDataModule, epochs: int) -> float:
    """`epochs` epochs on one thread, validation after the last only; the validation accuracy."""
    with single_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = pl.Trainer(
            max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, num_sanity_val_steps=0, check_val_every_n_epoch=epochs,
        )
        trainer.fit(model, data)
    return trainer.callback_metrics["val/acc"].item()


def seeded(build: Callable[[], torch.nn.Module]) -> Callable[[], torch.nn.Module]:
    """`build` after `pl.seed_everything(0)` (the initial weights, and the training that follows, are seeded)."""

    def run() -> torch.nn.Module:
        pl.seed_everything(0, verbose=False)
        return build()

    return run


class TrainedShapes(NamedTuple):
    model: ImageClassifier
    data: ShapesDataModule
    val_acc: float


@functools.lru_cache(maxsize=1)
def trained_shapes_classifier() -> TrainedShapes:
    """ImageClassifier (small_cnn, width 16) after 5 epochs on 1,500 training shapes, in eval mode (trained
    once per pytest run, `trained_once`)."""
    data = ShapesDataModule(train_size=1500, val_size=400, test_size=64, batch_size=32, seed=0)
    build = seeded(lambda: ImageClassifier(num_classes=data.num_classes, input_shape=data.input_shape, width=16, lr=5e-3))
    model, accuracy = trained_once("shapes_classifier", build, lambda model: fit_quietly(model, data, epochs=5))  # type: ignore[arg-type]
    return TrainedShapes(model.eval(), data, accuracy)  # type: ignore[arg-type]
