"""The explain round's progress on Lightning's progress bar (tqdm or rich), and nothing without one."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar, TQDMProgressBar

from lit_xai.callbacks import ExplainerCallback
from lit_xai.explainers import GradCAM, RandomSaliency
from lit_xai.metrics import Deletion
from tests.helpers import TinyData, TinyModule


def run(progress: bool | ProgressBar, limit_test_samples: int | None = None) -> tuple[pl.Trainer, ExplainerCallback]:
    callback = ExplainerCallback(
        explainers={"gradcam": GradCAM(), "random": RandomSaliency()}, metrics=[Deletion(steps=4)], probe_size=20,
        log_images=0, print_table=False, limit_test_samples=limit_test_samples,
    )
    callbacks: list[pl.Callback] = [callback] + ([progress] if isinstance(progress, ProgressBar) else [])
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_model_summary=False,
        enable_progress_bar=bool(progress), callbacks=callbacks,
    )
    return trainer, callback


def test_tqdm_shows_explainer_and_samples_done(capsys: pytest.CaptureFixture[str]) -> None:
    trainer, _ = run(TQDMProgressBar(), limit_test_samples=12)
    module, data = TinyModule(), TinyData()
    trainer.validate(module, data, verbose=False)
    out = capsys.readouterr().out
    # the 20-sample probe, gradcam then random: 20 then 40 of 20 x 2 explanations
    assert "xai: gradcam:  50%" in out and "20/40" in out
    assert "xai: random: 100%" in out and "40/40" in out
    trainer.test(module, data, verbose=False)
    out = capsys.readouterr().out
    # test batches of 8: 8 + 4 samples (limit 12) per explainer, 24 explanations in all
    assert [f"{n}/24" in out for n in (8, 16, 20, 24)] == [True] * 4 and "xai: random" in out


def test_rich_task_counts_the_round_and_is_hidden_after_it() -> None:
    bar = RichProgressBar()
    trainer, _ = run(bar)
    trainer.validate(TinyModule(), TinyData(), verbose=False)
    (task,) = [task for task in bar.progress.tasks if task.description.startswith("xai")]  # type: ignore[union-attr]
    assert (task.description, task.completed, task.total, task.visible) == ("xai: random", 40, 40, False)


def test_nothing_when_the_progress_bar_is_disabled(capsys: pytest.CaptureFixture[str]) -> None:
    trainer, callback = run(False)
    trainer.validate(TinyModule(), TinyData(), verbose=False)
    assert "xai: " not in capsys.readouterr().out
    assert callback._progress is not None and callback._progress._tqdm is None and callback._progress._rich is None
