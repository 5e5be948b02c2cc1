"""Memory over a long run: validation rounds of the ExplainerCallback with every registered explainer and
the six classic metrics (Insertion, Deletion, Ins-Del, AD, IIC, ADD) on the digits model, with overlays and
curves written by a CSV logger. Prints the process's resident memory (RSS) and the number of live tensors
after each round, and the RSS growth from the end of round 3 to the last round (goal, issue 28: < 5 %).

    python benchmarks/memory.py [--rounds 50] [--probe 64]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import CSVLogger

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

from lit_xai.callbacks import ExplainerCallback  # noqa: E402
from lit_xai.datamodules import DigitsDataModule  # noqa: E402
from lit_xai.metrics import AverageDrop, AverageDropInDeletion, Deletion, IncreaseInConfidence, Insertion, InsertionDeletion  # noqa: E402
from lit_xai.models import ImageClassifier  # noqa: E402


def resident_bytes() -> int:
    """This process's resident set size (Linux /proc; the peak from getrusage elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def live_tensors() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, torch.Tensor))


class MemoryRecorder(pl.Callback):
    """RSS (after a garbage collection) and live tensors at the end of every validation round."""

    def __init__(self, verbose: bool = False) -> None:
        self.verbose = verbose
        self.rss: list[int] = []
        self.tensors: list[int] = []
        self.seconds: list[float] = []
        self._start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.tensors.append(live_tensors())
        self.rss.append(resident_bytes())
        self.seconds.append(time.perf_counter() - self._start)
        self._start = time.perf_counter()
        if self.verbose:
            print(f"round {len(self.rss)}: {self.rss[-1] / 2**20:.1f} MiB, {self.tensors[-1]} tensors, {self.seconds[-1]:.1f} s", flush=True)


def classic_metrics(steps: int) -> list:
    return [
        Insertion(steps=steps), Deletion(steps=steps), InsertionDeletion(steps=steps),
        AverageDrop(), IncreaseInConfidence(), AverageDropInDeletion(),
    ]


def run(rounds: int, probe: int, steps: int, directory: str, width: int = 32, log_images: int = 4, verbose: bool = False) -> MemoryRecorder:
    """`rounds` epochs of one training batch each, every one followed by an explain round (every registered explainer)."""
    pl.seed_everything(0)
    recorder = MemoryRecorder(verbose)
    callback = ExplainerCallback(metrics=classic_metrics(steps), probe_size=probe, log_images=log_images, print_table=False)
    trainer = pl.Trainer(
        max_epochs=rounds, accelerator="cpu", devices=1, limit_train_batches=1, limit_val_batches=1, num_sanity_val_steps=0,
        logger=CSVLogger(directory, name="memory"), enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[callback, recorder],
    )
    trainer.fit(ImageClassifier(num_classes=10, input_shape=(1, 8, 8), width=width), DigitsDataModule(batch_size=64))
    if callback.errors:
        raise RuntimeError(f"explainers failed: {callback.errors}")
    return recorder


def growth(values: list[int], after: int = 3) -> float:
    """Relative growth from the end of round `after` to the last round."""
    return values[-1] / values[after - 1] - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--probe", type=int, default=64)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's own)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as directory:
        recorder = run(args.rounds, args.probe, args.steps, directory, verbose=True)
    print(f"# {machine()}; {args.rounds} rounds, probe {args.probe}, every registered explainer, six classic metrics ({args.steps} steps)")
    print("round,rss_mib,live_tensors,seconds")
    for index, (rss, tensors, seconds) in enumerate(zip(recorder.rss, recorder.tensors, recorder.seconds), start=1):
        print(f"{index},{rss / 2**20:.1f},{tensors},{seconds:.2f}")
    half = len(recorder.rss) // 2
    print(
        f"RSS growth after round 3: {100 * growth(recorder.rss):+.2f} % (goal < 5 %); over the last {len(recorder.rss) - half} rounds: "
        f"{100 * growth(recorder.rss, half):+.2f} %; live tensors {recorder.tensors[2]} -> {recorder.tensors[-1]}"
    )


if __name__ == "__main__":
    main()
