"""CPU chunk sizes: lit-xai's automatic chunks against the input rule alone and the best fixed chunk.

    python benchmarks/chunks.py [--threads 1] [--only toy16,r18_32] [--repeats 3]
    LIT_XAI_KEEP_FREED_MEMORY=0 python benchmarks/chunks.py ...   # glibc's malloc left as it is

Each network runs no-grad forward passes over N random derived inputs, 8 at a time from the caller's
point of view (`index_chunks(N, None, one_input, batch_size=8)`), and the time per input is reported for
the automatic chunks (`lit_xai.chunking`), for chunks of the input rule alone
(`automatic_chunk_size`: 2^19-2^20 input elements a pass, what lit-xai did before the activation cap),
and for every power-of-two chunk, of which the best is shown. Best of `--repeats` runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet18, resnet50

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

from lit_xai.chunking import automatic_chunk_size, index_chunks  # noqa: E402
from lit_xai.cpu_allocator import keep_freed_memory  # noqa: E402
from lit_xai.models.backbones import small_cnn, vit_tiny  # noqa: E402


def two_conv() -> nn.Module:
    """The quantus benchmark's network: 16 channels at full resolution, global pooling, 10 classes."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(256, 10),
    )


# name: (network, one input's shape, derived inputs N, what it stands for)
NETWORKS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], int, str]] = {
    "toy16": (two_conv, (1, 16, 16), 2048, "2-conv CNN, 16 channels, 1 x 16 x 16"),
    "toy32": (two_conv, (1, 32, 32), 2048, "2-conv CNN, 16 channels, 1 x 32 x 32"),
    "digits": (lambda: small_cnn(1, 10, 2), (1, 8, 8), 2048, "lit-xai small_cnn, digits 1 x 8 x 8"),
    "cmapss": (lambda: small_cnn(14, 1, 1), (14, 30), 2048, "lit-xai small_cnn 1-D, C-MAPSS windows 14 x 30"),
    "cifar_cnn": (lambda: small_cnn(3, 10, 2), (3, 32, 32), 1024, "lit-xai small_cnn, 3 x 32 x 32"),
    "vit32": (lambda: vit_tiny(3, 32, 10), (3, 32, 32), 1024, "lit-xai vit_tiny, 3 x 32 x 32"),
    "r18_32": (lambda: resnet18(num_classes=10), (3, 32, 32), 1024, "resnet18, 3 x 32 x 32"),
    "r18_64": (lambda: resnet18(num_classes=10), (3, 64, 64), 512, "resnet18, 3 x 64 x 64"),
    "r50_224": (resnet50, (3, 224, 224), 16, "ResNet-50, 3 x 224 x 224"),
}


def per_input(model: nn.Module, inputs: torch.Tensor, chunk: int | None, repeats: int) -> tuple[float, list[int]]:
    """Best time per input (microseconds) of forward passes over `inputs` in `chunk`s, and the chunk sizes."""
    total, sizes = inputs.shape[0], []

    def run() -> list[int]:
        ran = []
        with torch.no_grad():
            for rows in index_chunks(total, chunk, inputs[:1], batch_size=8):
                ran.append(len(rows))
                model(inputs[rows])
        return ran

    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        sizes = run()
        best = min(best, time.perf_counter() - start)
    return 1e6 * best / total, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default=",".join(NETWORKS), help="comma-separated names: " + ", ".join(NETWORKS))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.only.split(",")
    unknown = sorted(set(names) - set(NETWORKS))
    if unknown:
        parser.error(f"unknown networks {unknown}; choose from {', '.join(NETWORKS)}")
    kept = keep_freed_memory()
    print(f"machine: {machine()}; glibc malloc keeps freed memory: {kept}")
    print("| network | N | automatic, us | chunks | input rule alone, us | chunk | best fixed, us | chunk | automatic / best |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        build, shape, total, label = NETWORKS[name]
        torch.manual_seed(0)
        model = build().eval()
        inputs = torch.rand(total, *shape)
        auto, sizes = per_input(model, inputs, None, args.repeats)
        rule = automatic_chunk_size(inputs[:1], batch_size=8)
        rule_time, _ = per_input(model, inputs, rule, args.repeats)
        fixed = {c: per_input(model, inputs, c, args.repeats)[0] for c in (2**k for k in range(13)) if c <= total}
        best = min(fixed, key=fixed.__getitem__)
        chunks = ", ".join(map(str, sizes[:2])) + (", ..." if len(sizes) > 2 else "")
        print(f"| {label} | {total} | {auto:.1f} | {chunks} | {rule_time:.1f} | {rule} | {fixed[best]:.1f} | {best} | {auto / fixed[best]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
