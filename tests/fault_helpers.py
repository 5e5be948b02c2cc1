"""Modules and models for the fault-injection tests (importable by spawned DDP workers)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tests.helpers import RecordingGradCAM, TinyModule, destroy_gloo_group_at_exit


class MetricStateModule(TinyModule):
    """lit-xai metrics held by the LightningModule (what users do), updated in `validation_step`; at the
    epoch's end it logs each metric's synchronised image count, sum and standard error (numbers that an
    in-place update of spawn-shared states would double, unlike the means)."""

    def setup(self, stage: str) -> None:
        destroy_gloo_group_at_exit()

    def __init__(self) -> None:
        super().__init__()
        from lit_xai.metrics import AverageDrop, Deletion, Insertion, NASAScore, WeakLocalization

        self.metrics = nn.ModuleDict({"insertion": Insertion(steps=4), "deletion": Deletion(steps=4), "ad": AverageDrop()})
        self.nasa = NASAScore()
        self.metrics["localisation"] = WeakLocalization()

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        inputs, labels = batch
        saliency = inputs.abs().sum(1)
        for name, metric in self.metrics.items():
            if name == "localisation":
                masks = torch.zeros_like(saliency, dtype=torch.bool)
                masks[:, 2:6, 2:6] = True
                metric.update(saliency, masks)
            else:
                metric.update(self, inputs, saliency, labels)
        self.nasa.update(self(inputs).max(dim=1).values * 10, labels.double() * 10)

    def on_validation_epoch_end(self) -> None:
        for name, metric in self.metrics.items():
            with metric.sync_context(should_unsync=True):
                count, total = float(metric.count), float(metric.total)
                curve = float(metric.curve_sum.sum()) if hasattr(metric, "curve_sum") else float(getattr(metric, "iou_sum", 0.0))
            self.log(f"state/{name}/count", count, sync_dist=True)
            self.log(f"state/{name}/total", total, sync_dist=True)
            self.log(f"state/{name}/curve_sum", curve, sync_dist=True)
            self.log(f"state/{name}/se", float(metric.standard_error()), sync_dist=True)
            self.log(f"state/{name}/mean", float(metric.compute()), sync_dist=True)
        self.log("state/nasa", float(self.nasa.compute()), sync_dist=True)


class FlakyGradCAM(RecordingGradCAM):
    """Grad-CAM that raises on the calls numbered in `fail_calls` (1-based, counted per process), on the
    ranks in `ranks` (None: every rank): an explainer that fails mid-round, or on one rank only."""

    def __init__(self, fail_calls: tuple[int, ...], ranks: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.fail_calls, self.ranks, self.calls = fail_calls, ranks, 0

    def __call__(self, model, inputs, targets=None):  # type: ignore[no-untyped-def]
        self.calls += 1
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        if self.calls in self.fail_calls and (self.ranks is None or rank in self.ranks):
            raise RuntimeError(f"flaky on call {self.calls}")
        return super().__call__(model, inputs, targets)


class DivergingModule(TinyModule):
    """Outputs NaN outside training (validation, test) from epoch `epoch` on, on the ranks in `ranks`
    (None: every rank); training steps stay finite, as a model that diverges shows it at validation."""

    def setup(self, stage: str) -> None:
        destroy_gloo_group_at_exit()

    def __init__(self, epochs: tuple[int, ...] = (1,), ranks: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.nan_epochs, self.nan_ranks = epochs, ranks

    def forward(self, x: Tensor) -> Tensor:
        outputs = self.net(x)
        diverged = not self.training and self.current_epoch in self.nan_epochs
        if diverged and (self.nan_ranks is None or self.global_rank in self.nan_ranks):
            return outputs * float("nan")
        return outputs


class InterruptedModule(TinyModule):
    """Once `armed` (by a callback, when the validation epoch ends and the explain round begins), raises
    KeyboardInterrupt from its forward at the `at`-th pass."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.passes, self.armed = at, 0, False

    def forward(self, x: Tensor) -> Tensor:
        if self.armed:
            self.passes += 1
            if self.passes == self.at:
                raise KeyboardInterrupt("Ctrl-C during the explain round")
        return self.net(x)
