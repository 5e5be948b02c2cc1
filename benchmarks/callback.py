"""What the ExplainerCallback adds to a validation epoch, divided by what its explainers and metrics cost
when run alone on the same probe (goal, issue 6: at most 1.15 — the callback adds no waste of its own).

    python benchmarks/callback.py [--probe 64] [--size 64]
"""

from __future__ import annotations

import argparse
import sys
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
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = resnet18(num_classes=10)
        self.default_target_layer = "net.layer4"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.log("val/loss", F.cross_entropy(self(batch[0]), batch[1]))


def components(bank: torch.Tensor) -> tuple[dict, list]:
    explainers = {"gradcam": GradCAM(), "expected_gradcam": ExpectedGradCAM(baselines=bank, draws=8)}
    return explainers, [Insertion(steps=16), Deletion(steps=16)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--probe", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(256, 3, args.size, args.size, generator=generator)
    data = TensorDataset(images, torch.randint(0, 10, (256,), generator=generator))
    loader = DataLoader(data, batch_size=64)
    bank = images[:16]
    model = Classifier().eval()

    def validate(callbacks: list) -> float:
        trainer = pl.Trainer(
            accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, callbacks=callbacks,
        )
        start = time.perf_counter()
        trainer.validate(model, loader, verbose=False)
        return time.perf_counter() - start

    def alone() -> float:
        explainers, metrics = components(bank)
        probe = ExplainerCallback(probe_size=args.probe)
        from lit_xai.callbacks.probe import choose_probe

        indices = choose_probe(len(data), args.probe, probe.probe_seed, data.tensors[1])
        inputs = images[indices]
        start = time.perf_counter()
        with torch.no_grad():
            targets = model(inputs).argmax(1)
        for explainer in explainers.values():
            saliency = explainer(model, inputs, targets)
            for metric in metrics:
                metric.update(model, inputs, saliency, targets)
                metric.compute()
        return time.perf_counter() - start

    def with_callback() -> float:
        explainers, metrics = components(bank)
        return validate([ExplainerCallback(explainers, metrics, probe_size=args.probe, log_images=0, print_table=False)])

    validate([])  # warm-up
    without = min(validate([]) for _ in range(args.repeats))
    cost = min(with_callback() for _ in range(args.repeats))
    reference = min(alone() for _ in range(args.repeats))
    print(f"machine: {machine()}; resnet18, 256 validation images 3 x {args.size} x {args.size}, probe {args.probe}")
    print("GradCAM + ExpectedGradCAM(8 draws), Insertion + Deletion (16 steps)")
    print(f"validation without callback {without:.2f} s, with {cost:.2f} s, explainers + metrics alone {reference:.2f} s")
    print(f"(with - without) / alone = {(cost - without) / reference:.2f}")


if __name__ == "__main__":
    main()
