"""The ExplainerCallback's validation explain round on 2 DDP processes (gloo, CPU) against 1 process:
each rank explains half the probe, so the round should take at most 0.6 x the single-process time
(goal, issue 16). Each process gets `cores / processes` torch threads: the two ranks share the cores one
process had, so the round only gets faster where one process's threads scale badly. `--threads N` gives
every process N threads instead (1 process with N threads against 2 with N each: each rank on cores of its
own, as on separate devices; needs 2 N cores).

    python benchmarks/callback_ddp.py [--probe 64] [--size 64] [--threads N]

The round's time is measured inside the callback's hook (the slowest rank counts), so process start-up
and the validation loop itself are not in the figure.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torchvision.models import resnet18

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

from lit_xai.callbacks import ExplainerCallback  # noqa: E402
from lit_xai.explainers import ExpectedGradCAM, GradCAM  # noqa: E402
from lit_xai.metrics import Deletion, Insertion  # noqa: E402


class Classifier(pl.LightningModule):
    def __init__(self, threads: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = resnet18(num_classes=10)
        self.default_target_layer = "net.layer4"
        self.threads = threads

    def setup(self, stage: str) -> None:
        torch.set_num_threads(self.threads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.log("val/loss", F.cross_entropy(self(batch[0]), batch[1]), sync_dist=True)


class TimedCallback(ExplainerCallback):
    """Writes the wall time of each validation explain round to `<folder>/rank<r>.txt`."""

    def __init__(self, folder: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.folder = folder

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        start = time.perf_counter()
        super().on_validation_epoch_end(trainer, pl_module)
        with (Path(self.folder) / f"rank{trainer.global_rank}.txt").open("a") as handle:
            handle.write(f"{time.perf_counter() - start}\n")


def round_seconds(processes: int, loader: DataLoader, bank: torch.Tensor, probe: int, cores: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        callback = TimedCallback(
            folder,
            explainers={"gradcam": GradCAM(), "expected_gradcam": ExpectedGradCAM(baselines=bank, draws=8)},
            metrics=[Insertion(steps=16), Deletion(steps=16)], probe_size=probe, log_images=0, print_table=False,
        )
        trainer = pl.Trainer(
            accelerator="cpu", devices=processes, strategy="ddp_spawn" if processes > 1 else "auto", logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[callback],
        )
        trainer.validate(Classifier(max(1, cores // processes)), loader, verbose=False)
        return max(float(path.read_text().split()[-1]) for path in Path(folder).glob("rank*.txt"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probe", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads of every process (default: cores / processes)")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    if args.threads is not None and 2 * args.threads > cores:
        parser.error(f"--threads {args.threads}: 2 processes need {2 * args.threads} cores, this machine has {cores}")
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(128, 3, args.size, args.size, generator=generator)
    loader = DataLoader(TensorDataset(images, torch.randint(0, 10, (128,), generator=generator)), batch_size=32)
    bank = images[:16]
    threads = {1: args.threads or cores, 2: args.threads or max(1, cores // 2)}
    one = min(round_seconds(1, loader, bank, args.probe, threads[1]) for _ in range(args.repeats))
    two = min(round_seconds(2, loader, bank, args.probe, 2 * threads[2]) for _ in range(args.repeats))
    print(f"machine: {machine()}, {cores} cores; resnet18, probe {args.probe} x 3 x {args.size} x {args.size}")
    print("GradCAM + ExpectedGradCAM(8 draws), Insertion + Deletion (16 steps)")
    print("| processes | threads each | explain round s | / 1 process |\n| --- | ---: | ---: | ---: |")
    print(f"| 1 | {threads[1]} | {one:.2f} | 1.00 |")
    print(f"| 2 | {threads[2]} | {two:.2f} | {two / one:.2f} |")


if __name__ == "__main__":
    main()
