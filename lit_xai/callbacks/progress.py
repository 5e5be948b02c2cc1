"""The explain round's progress on the trainer's own progress bar (tqdm or rich, whichever it uses).

An explain round (every explainer over the probe, or over the test batches) adds one bar or rich task,
described `xai: <explainer>` after the explainer at work, that counts samples explained, summed over
explainers (total: samples x explainers when known). Nothing is shown when the trainer has no progress
bar or it is disabled (as on every rank but 0), and nothing is left on screen after the round.
"""

from __future__ import annotations

import sys

import lightning.pytorch as pl
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

DESCRIPTION = "xai"


class ExplainProgress:
    """One explain round's bar: `advance(explainer, samples)` after an explainer explained `samples`
    samples; `close()` at the end of the round."""

    def __init__(self, trainer: pl.Trainer, total: int | None) -> None:
        self._tqdm: Tqdm | None = None
        self._rich: RichProgressBar | None = None
        self._task = None
        bar = trainer.progress_bar_callback
        if bar is None or not bar.is_enabled:
            return
        if isinstance(bar, RichProgressBar):
            if bar.progress is not None:
                self._rich = bar
                self._task = bar.progress.add_task(DESCRIPTION, total=total)
        elif isinstance(bar, TQDMProgressBar):
            below = 2 if trainer.state.fn == "fit" else 1  # under the training and validation bars, or the test bar
            self._tqdm = Tqdm(
                desc=DESCRIPTION, total=total, position=2 * bar.process_position + below, leave=False,
                dynamic_ncols=True, file=sys.stdout, bar_format=bar.BAR_FORMAT if total is not None else None,
            )

    def advance(self, explainer: str, samples: int) -> None:
        description = f"{DESCRIPTION}: {explainer}"
        if self._tqdm is not None:
            self._tqdm.set_description(description, refresh=False)
            self._tqdm.update(samples)
            self._tqdm.refresh()
        elif self._rich is not None and self._rich.progress is not None:
            self._rich.progress.update(self._task, advance=samples, description=description)  # type: ignore[arg-type]
            self._rich.refresh()

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
        elif self._rich is not None and self._rich.progress is not None:
            self._rich.progress.update(self._task, visible=False)  # type: ignore[arg-type]
            self._rich.refresh()
            self._rich = None


def samples_in_test(trainer: pl.Trainer, limit: int | None) -> int | None:
    """Samples this process will see in `test` (after `limit_test_batches`, at most `limit`), or None when
    a dataloader does not say (an iterable dataset)."""
    loaders = trainer.test_dataloaders
    loaders = loaders if isinstance(loaders, (list, tuple)) else [loaders]
    total = 0
    for loader, batches in zip(loaders, trainer.num_test_batches):
        try:
            samples = len(loader.sampler) if getattr(loader, "sampler", None) is not None else len(loader.dataset)
        except TypeError:
            return None
        if getattr(loader, "batch_size", None) and batches != float("inf"):
            samples = min(samples, int(batches) * loader.batch_size)
        total += samples
    return total if limit is None else min(total, limit)
