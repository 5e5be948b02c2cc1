"""ExplainerCallback: run explainers x faithfulness metrics inside Lightning's validation and test loops."""

from __future__ import annotations

import copy
import re
import time
import warnings
from typing import Any, Literal, Optional, Union

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from lightning.fabric.utilities import move_data_to_device
from torch import Tensor
from torchmetrics import Metric

from lit_xai.callbacks.results import Results, print_results, write_results
from lit_xai.explainers import BankBaselines, Explainer, GradCAM, RandomSaliency
from lit_xai.metrics import Deletion, Insertion
from lit_xai.targets import resolve_targets


def metric_name(metric: Metric) -> str:
    """`InsertionDeletion` -> `insertion_deletion`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(metric).__name__).lower()


def choose_probe(dataset_size: int, probe_size: int, seed: int) -> Tensor:
    """`probe_size` distinct indices drawn with `seed`, sorted (the whole set if it is smaller)."""
    order = torch.randperm(dataset_size, generator=torch.Generator().manual_seed(seed))
    return order[: min(probe_size, dataset_size)].sort().values


def split_batch(batch: Any) -> tuple[Tensor, Tensor | None]:
    """`(inputs, labels)` from a batch that is a tensor or a sequence `(inputs, labels, ...)`."""
    if isinstance(batch, Tensor):
        return batch, None
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], Tensor):
        labels = batch[1] if len(batch) > 1 and isinstance(batch[1], Tensor) else None
        return batch[0], labels
    raise TypeError(f"ExplainerCallback expects batches that are a tensor or (inputs, labels, ...), got {type(batch).__name__}")


class ExplainerCallback(pl.Callback):
    """Explain a fixed probe of validation samples every validation epoch, and every test batch at test time,
    scoring each explainer with each metric.

    Logs `xai/<explainer>/<metric>` and `xai/<explainer>/seconds_per_sample`; prints the explainer x
    metric table at the end of `fit` and `test`, and writes it to `<log_dir>/xai_results.{csv,md}` after
    `test` when the trainer has a logger. Gradients are real in every loop (explainers enable them themselves), the model trains
    exactly as it would without the callback, and under DDP each rank explains its share of the probe
    while the metrics synchronise through torchmetrics.

    Args:
        explainers: name -> explainer; default `{"gradcam": GradCAM(), "random": RandomSaliency()}`.
            CAM explainers without a `target_layer` use the module's `default_target_layer`, else its
            last conv layer.
        metrics: metrics with `update(model, inputs, saliency, targets)`, as a list (named after their
            class, e.g. `insertion`) or a dict name -> metric; each explainer gets its own copies.
            Default: Insertion and Deletion.
        probe_size: validation samples explained per epoch, chosen once with `probe_seed` and kept in
            the callback's state (a resumed run explains the same samples).
        probe_seed: seed of the probe's choice.
        every_n_epochs: explain every n-th validation epoch during `fit` (always in `validate`).
        targets: "predicted" (the model's argmax; the output itself for a regressor) or "label".
        limit_test_samples: explain at most this many test samples per process (default: all).
        baseline_bank_size: explainers with `baselines=None` (Expected Grad-CAM and its variants) get a
            bank of this many training inputs from the datamodule's `baseline_bank(n)` at setup.
        print_table: print the results table at the end of `fit` and `test`.
    """

    def __init__(
        self,
        explainers: Optional[dict[str, Explainer]] = None,
        metrics: Union[list[Metric], dict[str, Metric], None] = None,
        probe_size: int = 64,
        probe_seed: int = 0,
        every_n_epochs: int = 1,
        targets: Literal["predicted", "label"] = "predicted",
        limit_test_samples: Optional[int] = None,
        baseline_bank_size: int = 64,
        print_table: bool = True,
    ) -> None:
        if probe_size < 1 or every_n_epochs < 1:
            raise ValueError(f"probe_size and every_n_epochs must be >= 1, got {probe_size} and {every_n_epochs}")
        if targets not in ("predicted", "label"):
            raise ValueError(f"targets must be 'predicted' or 'label', got {targets!r}")
        self.explainers = dict(explainers) if explainers is not None else {"gradcam": GradCAM(), "random": RandomSaliency()}
        if metrics is None:
            metrics = [Insertion(), Deletion()]
        self.metric_templates = dict(metrics) if isinstance(metrics, dict) else {metric_name(m): m for m in metrics}
        if len(self.metric_templates) != (len(metrics)):
            raise ValueError("two metrics share a name: pass metrics as a dict name -> metric")
        self.probe_size, self.probe_seed = probe_size, probe_seed
        self.every_n_epochs = every_n_epochs
        self.targets = targets
        self.limit_test_samples = limit_test_samples
        self.baseline_bank_size = baseline_bank_size
        self.print_table = print_table
        self.probe_indices: Tensor | None = None
        self.metrics = {name: {m: copy.deepcopy(t) for m, t in self.metric_templates.items()} for name in self.explainers}
        self.results: dict[str, Results] = {}
        self.errors: dict[str, str] = {}
        self._seconds: dict[str, float] = {}
        self._samples: dict[str, int] = {}
        self._test_seen = 0

    # ---- Lightning hooks -------------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        waiting = [e for e in self.explainers.values() if hasattr(e, "baselines") and e.baselines is None]
        datamodule = getattr(trainer, "datamodule", None)
        if not waiting:
            return
        if datamodule is None or not hasattr(datamodule, "baseline_bank"):
            rank_zero_warn(
                "ExplainerCallback: explainers with baselines=None use zero baselines, because the datamodule has no "
                "baseline_bank(n); pass baselines explicitly (e.g. DataBaselines(train_dataset)) to draw from the data"
            )
            return
        bank = BankBaselines(datamodule.baseline_bank(self.baseline_bank_size))
        for explainer in waiting:
            explainer.baselines = bank

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if trainer.state.fn == "fit" and (trainer.current_epoch + 1) % self.every_n_epochs != 0:
            return
        self._start_round(pl_module)
        inputs, labels = self._probe_batch(trainer, pl_module)
        if len(inputs):
            self._explain(pl_module, inputs, labels)
        self._finish_round(pl_module, "validate")

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start_round(pl_module)
        self._test_seen = 0

    def on_test_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        inputs, labels = split_batch(batch)
        if self.limit_test_samples is not None:
            room = max(self.limit_test_samples - self._test_seen, 0)
            inputs, labels = inputs[:room], None if labels is None else labels[:room]
        if len(inputs):
            self._test_seen += len(inputs)
            self._explain(pl_module, inputs, labels)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._finish_round(pl_module, "test")
        if trainer.is_global_zero and trainer.loggers and trainer.log_dir is not None:
            write_results(self.results["test"], trainer.log_dir)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.print_table and trainer.is_global_zero and "validate" in self.results:
            print_results(self.results["validate"], "explainer faithfulness (last validation epoch)", self.errors)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.print_table and trainer.is_global_zero and "test" in self.results:
            print_results(self.results["test"], "explainer faithfulness (test)", self.errors)

    def state_dict(self) -> dict[str, Any]:
        return {"probe_indices": None if self.probe_indices is None else self.probe_indices.tolist()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        indices = state_dict.get("probe_indices")
        self.probe_indices = None if indices is None else torch.tensor(indices, dtype=torch.long)

    # ---- the work ---------------------------------------------------------------------------------
    def _probe_batch(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> tuple[Tensor, Tensor | None]:
        """This rank's share of the probe, collated by the validation dataloader and on the module's device."""
        loader = trainer.val_dataloaders
        loader = loader[0] if isinstance(loader, (list, tuple)) else loader
        dataset = getattr(loader, "dataset", None)
        if dataset is None or not hasattr(dataset, "__len__"):
            raise TypeError("ExplainerCallback needs a validation DataLoader over a map-style dataset (with __len__) to draw its probe")
        if self.probe_indices is None or int(self.probe_indices.max()) >= len(dataset):
            self.probe_indices = choose_probe(len(dataset), self.probe_size, self.probe_seed)
        share = self.probe_indices[trainer.global_rank :: trainer.world_size].tolist()
        if not share:
            return torch.empty(0), None
        batch = move_data_to_device(loader.collate_fn([dataset[i] for i in share]), pl_module.device)
        return split_batch(batch)

    def _targets(self, pl_module: pl.LightningModule, inputs: Tensor, labels: Tensor | None) -> Tensor | None:
        if self.targets == "label":
            if labels is None:
                raise ValueError("targets='label' needs batches (inputs, labels, ...)")
            return labels
        with torch.no_grad():
            return resolve_targets(pl_module(inputs), None)

    def _start_round(self, pl_module: pl.LightningModule) -> None:
        self.errors = {}
        self._seconds = dict.fromkeys(self.explainers, 0.0)
        self._samples = dict.fromkeys(self.explainers, 0)
        for metrics in self.metrics.values():
            for metric in metrics.values():
                metric.reset()
                metric.to(pl_module.device)

    def _explain(self, pl_module: pl.LightningModule, inputs: Tensor, labels: Tensor | None) -> None:
        targets = self._targets(pl_module, inputs, labels)
        for name, explainer in self.explainers.items():
            if name in self.errors:
                continue
            try:
                start = time.perf_counter()
                saliency = explainer(pl_module, inputs, targets)
                if saliency.is_cuda:
                    torch.cuda.synchronize(saliency.device)
                self._seconds[name] += time.perf_counter() - start
                self._samples[name] += len(inputs)
                for metric in self.metrics[name].values():
                    metric.update(pl_module, inputs, saliency, targets)
            except Exception as error:  # an explainer that fails must not stop training
                self.errors[name] = f"{type(error).__name__}: {error}"
                rank_zero_warn(f"ExplainerCallback: explainer {name!r} failed and is skipped this round: {self.errors[name]}")

    def _finish_round(self, pl_module: pl.LightningModule, stage: str) -> None:
        """Compute every metric on every rank (the collectives must match), then log the finite values."""
        results: Results = {}
        for name, metrics in self.metrics.items():
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*compute.*before.*update.*")
                row = {metric: float(m.compute()) for metric, m in metrics.items()}
            samples = self._samples.get(name, 0)
            row["seconds_per_sample"] = self._seconds.get(name, 0.0) / samples if samples else float("nan")
            results[name] = row
            for column, value in row.items():
                if value == value:  # skip NaN: nothing was explained
                    pl_module.log(f"xai/{name}/{column}", value, sync_dist=False)
        self.results[stage] = results
