"""Memory stays flat over a long run: after the third validation round, neither the process's resident memory
(RSS) nor the number of live tensors grows (the full figure, 50 rounds with every registered explainer,
comes from `benchmarks/memory.py`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from lit_xai.callbacks import ExplainerCallback
from lit_xai.datamodules import DigitsDataModule
from lit_xai.explainers import GradCAM, RandomSaliency
from lit_xai.models import ImageClassifier

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from memory import MemoryRecorder, classic_metrics, growth, run  # noqa: E402

SLOW = os.environ.get("LIT_XAI_SLOW") == "1"


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: these passes are tiny, and on a loaded 2-core machine two OpenMP threads make
    each small convolution wait for the other thread (measured: 52 ms instead of 0.06 ms)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def rounds_of(explainers: dict | None, rounds: int, probe: int, directory: Path) -> MemoryRecorder:
    if explainers is None:
        return run(rounds, probe, steps=4, directory=str(directory), width=8, log_images=2)
    pl.seed_everything(0)
    recorder = MemoryRecorder()
    callback = ExplainerCallback(explainers, metrics=classic_metrics(2), probe_size=probe, log_images=2, print_table=False)
    trainer = pl.Trainer(
        max_epochs=rounds, accelerator="cpu", devices=1, limit_train_batches=1, limit_val_batches=1, num_sanity_val_steps=0,
        logger=CSVLogger(directory, name="memory"), enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[callback, recorder],
    )
    trainer.fit(ImageClassifier(num_classes=10, input_shape=(1, 8, 8), width=8), DigitsDataModule(batch_size=32))
    assert not callback.errors
    return recorder


def test_memory_is_flat_over_validation_rounds(tmp_path: Path) -> None:
    """6 rounds of Grad-CAM and a random baseline x the six classic metrics, with overlays and curves
    written every round (the slow test and the benchmark run every registered explainer)."""
    recorder = rounds_of({"gradcam": GradCAM(), "random": RandomSaliency()}, rounds=6, probe=4, directory=tmp_path)
    assert len(recorder.rss) == 6
    assert growth(recorder.rss) < 0.05, [r / 2**20 for r in recorder.rss]
    assert recorder.tensors[-1] <= recorder.tensors[2], recorder.tensors  # nothing accumulates round after round


@pytest.mark.slow
@pytest.mark.skipif(not SLOW, reason="slow (every registered explainer, 6 rounds): set LIT_XAI_SLOW=1")
def test_memory_is_flat_with_every_registered_explainer(tmp_path: Path) -> None:
    recorder = rounds_of(None, rounds=6, probe=4, directory=tmp_path)
    assert growth(recorder.rss) < 0.05, [r / 2**20 for r in recorder.rss]
    assert recorder.tensors[-1] <= recorder.tensors[2], recorder.tensors
