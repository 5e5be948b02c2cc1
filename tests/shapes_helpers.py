"""A small CNN trained once per test session on ShapesDataModule (shared by the shapes and randomisation tests)."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import lightning.pytorch as pl
import torch

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


class TrainedShapes(NamedTuple):
    model: ImageClassifier
    data: ShapesDataModule
    val_acc: float


@functools.lru_cache(maxsize=1)
def trained_shapes_classifier() -> TrainedShapes:
    """ImageClassifier (small_cnn, width 16) after 5 epochs on 1,500 training shapes, in eval mode."""
    data = ShapesDataModule(train_size=1500, val_size=400, test_size=64, batch_size=32, seed=0)
    with single_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pl.seed_everything(0, verbose=False)
        model = ImageClassifier(num_classes=data.num_classes, input_shape=data.input_shape, width=16, lr=5e-3)
        trainer = pl.Trainer(
            max_epochs=5, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, num_sanity_val_steps=0, check_val_every_n_epoch=5,
        )
        trainer.fit(model, data)
    return TrainedShapes(model.eval(), data, trainer.callback_metrics["val/acc"].item())
