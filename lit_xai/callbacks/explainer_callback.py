"""ExplainerCallback: run explainers x faithfulness metrics inside Lightning's validation and test loops."""

from __future__ import annotations

import copy
import inspect
import math
import re
import time
import warnings
from typing import Any, Literal, Optional, Union

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities import move_data_to_device
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torchmetrics import Metric

from lit_xai.callbacks.faults import DIVERGED_KEY, anywhere, diverged_message, outputs_diverged, unreported
from lit_xai.callbacks.probe import choose_probe, dataset_labels
from lit_xai.callbacks.process_group import destroy_gloo_group_at_exit, process_group_exists
from lit_xai.callbacks.progress import ExplainProgress, samples_in_test
from lit_xai.callbacks.ranking import print_ranking, report_ranking
from lit_xai.callbacks.resume import callback_state, checked_state, reconcile
from lit_xai.callbacks.results import Results, gather_values, markdown_table, print_results, table_rows, write_results, write_scores
from lit_xai.callbacks.visuals import curves_figure, log_figure, log_table, overlay_figure, sample_captions
from lit_xai.explainers import BankBaselines, Explainer
from lit_xai.explainers.registry import default_explainers
from lit_xai.metrics import Deletion, Insertion, LocalisationMetric
from lit_xai.ranking import RankingReport, check_level
from lit_xai.callbacks.batches import BatchKeys, BatchTransform, XaiBatch, check_batch_keys, read_batch
from lit_xai.targets import (
    Output,
    RegionTarget,
    Score,
    Target,
    check_channel_dim,
    check_score,
    model_call,
    model_outputs,
    resolve_targets,
    to_channels_first,
    unwrap_module,
)


def metric_name(metric: Metric) -> str:
    """`InsertionDeletion` -> `insertion_deletion`, `ROADCombined` -> `road_combined` (acronyms stay whole)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", type(metric).__name__).lower()


def log_synchronised(pl_module: pl.LightningModule, name: str, value: float) -> None:
    """Log, from every rank, a value that needs no reduction: one already the same on every rank (a
    torchmetrics `compute()`, synchronised; a flag reduced by the callback), or, for seconds per sample,
    rank 0's own measurement (what the loggers, which write on rank 0, receive).

    Lightning warns ("It is recommended to use `self.log(..., sync_dist=True)`") for epoch-level values
    logged with `sync_dist=False` under DDP; `sync_dist=True` with `rank_zero_only=True` tells it the
    value needs no reduction (its sync function is then a no-op), so nothing is reduced and nothing warned."""
    pl_module.log(name, value, sync_dist=True, rank_zero_only=True)


def check_metric(name: str, metric: Metric) -> Metric:
    """The callback runs faithfulness metrics, update(model, inputs, saliency, targets), and localisation
    metrics, update(saliency, masks_or_boxes); anything else is refused with a clear message. Metrics
    that need the explainer (an `explainer` attribute, e.g. MaxSensitivity) must leave it unset: each
    explainer's copy gets that explainer (`with_explainer`)."""
    if isinstance(metric, LocalisationMetric):
        return metric
    parameters = list(inspect.signature(metric.update).parameters)
    if parameters[:3] != ["model", "inputs", "saliency"]:
        raise ValueError(
            f"metric {name!r} ({type(metric).__name__}) has update({', '.join(parameters)}); the callback runs metrics with "
            "update(model, inputs, saliency, targets) or localisation metrics with update(saliency, masks_or_boxes). "
            "Run this metric on its own (see docs/metrics.md)."
        )
    if getattr(metric, "explainer", None) is not None:
        raise ValueError(
            f"metric {name!r} ({type(metric).__name__}) was given an explainer; in ExplainerCallback leave it unset "
            f"(e.g. {type(metric).__name__}()): each explainer's copy of the metric gets the explainer whose maps it scores"
        )
    return metric


def with_explainer(metric: Metric, explainer: Explainer) -> Metric:
    """`metric` with its unset `explainer` attribute (metrics that need the explainer) set to `explainer`."""
    if hasattr(metric, "explainer") and metric.explainer is None:
        metric.explainer = explainer
    return metric


class ExplainerCallback(pl.Callback):
    """Explain a fixed probe of validation samples every validation epoch, and every test batch at test
    time, scoring each explainer with each metric.

    Logs `xai/<explainer>/<metric>` and `xai/<explainer>/seconds_per_sample`; draws the probe's overlays
    and the mean perturbation curves; prints the explainer x metric table at the end of `fit` and `test`
    and, after `test`, writes it (mean, standard error, seconds per sample) to
    `<log_dir>/xai_results.{csv,md}` and the loggers, and every test image's value of every per-image
    metric to `<log_dir>/xai_scores.csv` (explainer, metric, sample, value; `sample` is the same image for
    every explainer, so methods can be compared image by image; `nan` marks a sample the metric left
    out, e.g. a ratio metric's score <= 0). A metric that left samples out (AverageDrop and the other
    ratio metrics, `skipped_samples()`) also logs their number as `xai/<explainer>/<metric>_skipped`
    and puts it in the table. Gradients are real in every loop (explainers enable them themselves), the
    model trains exactly as it would without the callback, and under DDP each rank explains its share
    of the probe while the metrics synchronise through torchmetrics; only rank 0 draws figures and
    writes files, and every rank runs the same collectives.

    Args:
        explainers: name -> explainer; default: every registered method that applies to the module
            (`lit_xai.explainers.registry`). CAM explainers without a `target_layer` use the module's
            `default_target_layer`, else its last conv layer.
        metrics: faithfulness metrics (`update(model, inputs, saliency, targets)`) and localisation
            metrics (`update(saliency, masks_or_boxes)`, fed from the batches' third element), as a list
            (named after their class, e.g. `insertion`) or a dict name -> metric; each explainer gets
            its own copies. Default: Insertion and Deletion. Metrics that need the explainer
            (MaxSensitivity) are given without one: each explainer's copy gets that explainer.
        probe_size: validation samples explained per epoch, chosen once (stratified by class when the
            dataset exposes its labels, by bins of the target for regression) with `probe_seed`, and
            kept in the callback's state: a resumed run explains the same samples.
        every_n_epochs: explain every n-th validation epoch during `fit` (always in `validate`).
        targets: "predicted" (the model's argmax; the output itself for a regressor) or "label".
        max_seconds: time budget of one validation round: from the speeds measured in the last round
            (synchronised across ranks, so every rank decides alike), the fastest explainers that fit are
            run and the rest are skipped, with a warning (their metrics are not logged that round).
        log_images: probe samples drawn with every explainer's overlay each round (0: no figures).
        limit_test_samples: explain at most this many test samples per process (default: all).
        baseline_bank_size: explainers with `baselines=None` (Expected Grad-CAM and its variants) get a
            bank of this many training inputs from the datamodule's `baseline_bank(n)` at setup.
        print_table: print the results table at the end of `fit` and `test`.
        batch_transform: a callable `batch -> XaiBatch(inputs, labels, regions, forward_args)` for batches
            the default rule cannot read (`lit_xai.callbacks.batches`).
        batch_keys: for mapping batches, which keys hold the inputs, labels, regions and extra inputs, e.g.
            `{"inputs": "image", "labels": "label"}`.
        score: how metrics score the outputs ("softmax", "sigmoid" for multi-label and one-logit binary
            models, "raw" for regressors, a callable; None: softmax, raw for one output), see `lit_xai.targets`.
        output: a callable that picks the scores from what the model returns (default: a tensor, `.logits`,
            `["logits"]` / `["out"]`, a tuple's first element).
        channel_dim: the inputs' channel axis (-1 for `(B, T, C)` series): maps cover the other axes.
        alpha: significance level of the test ranking: per metric, every pair of explainers is compared
            on the same images (Wilcoxon signed-rank, Holm over the pairs) and methods not separable at
            `alpha` share a rank (`lit_xai.ranking`); written to `<log_dir>/xai_ranking.{csv,md}`, printed
            after the results table, sent to the loggers with a rank figure, kept in `self.ranking`.

    Models with dense outputs `(B, K, *spatial)` (segmentation) are explained for the region of each
    batch's masks (`regions`): `RegionTarget(category, masks)`, the category being the label
    (`targets="label"`) or the class with the highest mean output over the mask.
    """

    def __init__(
        self,
        explainers: Optional[dict[str, Explainer]] = None,
        metrics: Union[list[Metric], dict[str, Metric], None] = None,
        probe_size: int = 64,
        probe_seed: int = 0,
        every_n_epochs: int = 1,
        targets: Literal["predicted", "label"] = "predicted",
        max_seconds: Optional[float] = None,
        log_images: int = 4,
        limit_test_samples: Optional[int] = None,
        baseline_bank_size: int = 64,
        print_table: bool = True,
        batch_transform: Optional[BatchTransform] = None,
        batch_keys: Optional[BatchKeys] = None,
        score: Score = None,
        output: Optional[Output] = None,
        channel_dim: int = 1,
        alpha: float = 0.05,
    ) -> None:
        if probe_size < 1 or every_n_epochs < 1 or log_images < 0:
            raise ValueError(f"probe_size and every_n_epochs must be >= 1 and log_images >= 0, got {probe_size}, {every_n_epochs}, {log_images}")
        if targets not in ("predicted", "label"):
            raise ValueError(f"targets must be 'predicted' or 'label', got {targets!r}")
        if max_seconds is not None and max_seconds <= 0:
            raise ValueError(f"max_seconds must be > 0 or None, got {max_seconds}")
        self.explainers: dict[str, Explainer] | None = dict(explainers) if explainers is not None else None
        if metrics is None:
            metrics = [Insertion(), Deletion()]
        named = dict(metrics) if isinstance(metrics, dict) else {metric_name(m): m for m in metrics}
        self.metric_templates = {name: check_metric(name, metric) for name, metric in named.items()}
        if len(self.metric_templates) != len(metrics):
            raise ValueError("two metrics share a name: pass metrics as a dict name -> metric")
        self.probe_size, self.probe_seed = probe_size, probe_seed
        self.every_n_epochs = every_n_epochs
        self.targets = targets
        self.max_seconds = max_seconds
        self.log_images = log_images
        self.limit_test_samples = limit_test_samples
        self.baseline_bank_size = baseline_bank_size
        self.print_table = print_table
        if batch_transform is not None and not callable(batch_transform):
            raise ValueError(f"batch_transform must be a callable batch -> XaiBatch, got {batch_transform!r}")
        self.batch_transform, self.batch_keys = batch_transform, check_batch_keys(batch_keys)
        self.score, self.output, self.channel_dim = check_score(score), output, channel_dim
        self.alpha = check_level(alpha)
        self.ranking: RankingReport | None = None
        self.probe_indices: Tensor | None = None
        self.metrics: dict[str, dict[str, Metric]] = {}
        self.results: dict[str, Results] = {}
        self.scores: dict[str, dict[str, dict[str, Tensor]]] = {}  # stage -> explainer -> metric -> values
        self._values: dict[str, dict[str, list[Tensor]]] = {}
        self.errors: dict[str, str] = {}
        self.skipped: list[str] = []
        self._seconds: dict[str, float] = {}
        self._samples: dict[str, int] = {}
        self._speed: dict[str, float] = {}
        self._shown: dict[str, Tensor] = {}
        self._shown_scores: dict[str, Tensor] = {}  # the first metric's values of the shown samples
        self._curves: dict[str, dict[str, Tensor]] = {}
        self._test_seen = 0
        self._first_test_inputs: XaiBatch | None = None
        self._progress: ExplainProgress | None = None
        self._diverged = False  # the model's outputs held NaN or inf this round (lit_xai.callbacks.faults)
        self._resumed: dict[str, Any] | None = None  # a checkpoint's state until the first probe (lit_xai.callbacks.resume)
        self._dataset_size: int | None = None
        self._group_existed = process_group_exists()  # a process group made later is Lightning's: destroyed at exit

    # ---- Lightning hooks -------------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        destroy_gloo_group_at_exit(self._group_existed)
        if self.explainers is None:
            self.explainers = default_explainers(pl_module)
        for name, explainer in self.explainers.items():
            if getattr(explainer, "return_diagnostics", False):
                raise ValueError(f"explainer {name!r} has return_diagnostics=True; in the callback read its .diagnostics instead")
            self.metrics.setdefault(
                name, {m: self._with_model_options(with_explainer(copy.deepcopy(t), explainer)) for m, t in self.metric_templates.items()}
            )
        self._fill_baselines(trainer)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if trainer.state.fn == "fit" and (trainer.current_epoch + 1) % self.every_n_epochs != 0:
            return
        self._start_round(pl_module)
        batch = self._probe_batch(trainer, pl_module)
        with trainer.precision_plugin.forward_context():  # every rank decides alike (lit_xai.callbacks.faults)
            self._diverged = anywhere(trainer, self._outputs_diverged(pl_module, batch), pl_module.device)
        if not self._diverged:
            share = -(-len(self.probe_indices) // trainer.world_size) if self.probe_indices is not None else len(batch.inputs)
            self._plan_budget(share)
            self._progress = ExplainProgress(trainer, len(batch.inputs) * len(set(self.explainers or {}) - set(self.skipped)))
            if len(batch.inputs):
                with trainer.precision_plugin.forward_context():  # autocast under bf16-mixed / 16-mixed
                    self._explain(pl_module, batch, keep=self.log_images)
            self._progress.close()
        self._finish_round(trainer, pl_module, "validate")
        if trainer.is_global_zero and self.log_images and len(batch.inputs) and not self._diverged:
            self._draw(trainer, batch.head(self.log_images), "validate")

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start_round(pl_module)
        self._test_seen, self._first_test_inputs = 0, None
        samples = samples_in_test(trainer, self.limit_test_samples)
        self._progress = ExplainProgress(trainer, None if samples is None else samples * len(self.explainers or {}))

    def on_test_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        parts = self._read(batch)
        if self.limit_test_samples is not None:
            parts = parts.head(max(self.limit_test_samples - self._test_seen, 0))
        if len(parts.inputs) and not self._diverged:
            with trainer.precision_plugin.forward_context():
                self._diverged = self._outputs_diverged(pl_module, parts)  # reduced across ranks in _finish_round
        if len(parts.inputs) and not self._diverged:
            keep = self.log_images if self._test_seen == 0 else 0
            self._test_seen += len(parts.inputs)
            with trainer.precision_plugin.forward_context():
                self._explain(pl_module, parts, keep=keep)
            if keep and trainer.is_global_zero:
                shown = parts.head(keep)
                self._first_test_inputs = XaiBatch(*(None if part is None else (tuple(a.clone() for a in part) if isinstance(part, tuple) else part.detach().clone()) for part in shown))

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._progress is not None:
            self._progress.close()
        self._finish_round(trainer, pl_module, "test")
        log_dir = trainer.log_dir if trainer.loggers else None  # a broadcast: every rank must ask
        if not trainer.is_global_zero:
            return
        if log_dir is not None:
            write_results(self.results["test"], log_dir, failed=self.errors)
            write_scores({k: v for k, v in self.scores["test"].items() if k not in self.errors}, log_dir)
        header, rows = table_rows(self.results["test"])
        log_table(trainer, "xai/results", header, rows, markdown_table(self.results["test"], failed=self.errors))
        ranked = {k: v for k, v in self.scores["test"].items() if k not in self.errors}
        self.ranking = report_ranking(trainer, ranked, self.metric_templates, self.alpha, log_dir, draw=self.log_images > 0)
        if self.log_images and self._first_test_inputs is not None:
            self._draw(trainer, self._first_test_inputs, "test")

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.print_table and trainer.is_global_zero and "validate" in self.results:
            print_results(self.results["validate"], "explainer faithfulness (last validation epoch)", self.errors)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.print_table and trainer.is_global_zero and "test" in self.results:
            print_results(self.results["test"], "explainer faithfulness (test)", self.errors)
            if self.ranking is not None:
                print_ranking(self.ranking)

    def state_dict(self) -> dict[str, Any]:
        """The probe, what it was drawn with, the explainers and their speeds (`lit_xai.callbacks.resume`)."""
        names = list(self.explainers) if self.explainers is not None else list(self._speed)
        return callback_state(self.probe_indices, self.probe_size, self.probe_seed, self._dataset_size, names, self._speed)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Check the saved state (a ValueError names a corrupt key); it is reconciled with this run's settings
        when the first probe is read, with one warning saying what was kept and what was re-drawn."""
        self._resumed = checked_state(state_dict, f"checkpoint['callbacks'][{self.state_key!r}]")
        indices = self._resumed["probe_indices"]
        self.probe_indices = None if indices is None else torch.tensor(indices, dtype=torch.long)

    # ---- the work ---------------------------------------------------------------------------------
    def _with_model_options(self, metric: Metric) -> Metric:
        """The callback's `score`, `output` and `channel_dim` on a metric copy that reads the model."""
        if hasattr(metric, "scoring"):
            metric.scoring = self.score if self.score is not None else metric.scoring
            metric.output = self.output if self.output is not None else metric.output
            metric.channel_dim = self.channel_dim if self.channel_dim != 1 else metric.channel_dim
        return metric

    def _outputs_diverged(self, pl_module: pl.LightningModule, batch: XaiBatch) -> bool:
        """This process's verdict on the batch: the model's outputs (read through the shared mechanism) hold NaN
        or inf. A pass that fails is not a divergence: the target pass reports it, as explainer failures are."""
        if not len(batch.inputs):
            return False
        try:
            return outputs_diverged(self._batch_outputs(pl_module, batch))
        except Exception:
            return False

    def _batch_outputs(self, pl_module: pl.LightningModule, batch: XaiBatch) -> Tensor:
        """The module's outputs on the batch through `lit_xai.targets` (extra inputs, layout, output rule)."""
        channel_dim = check_channel_dim(self.channel_dim, batch.inputs.ndim)
        with model_call(len(batch.inputs), batch.forward_args, self.output, self.score, channel_dim, batch.inputs.device), torch.no_grad():
            return model_outputs(unwrap_module(pl_module), to_channels_first(batch.inputs, channel_dim))

    def _read(self, batch: Any) -> XaiBatch:
        return read_batch(batch, self.batch_transform, self.batch_keys)

    def _call_arguments(self, batch: XaiBatch) -> tuple[tuple, dict[str, Any]]:
        """The extra inputs and the model options an explainer is called with, only where they are set (so a
        user's explainer with the plain `explainer(model, inputs, targets)` signature still works)."""
        options = {"channel_dim": self.channel_dim, "output": self.output, "score": self.score}
        defaults = {"channel_dim": 1, "output": None, "score": None}
        args = () if batch.forward_args is None else (batch.forward_args,)
        return args, {k: v for k, v in options.items() if v != defaults[k]}

    def _fill_baselines(self, trainer: pl.Trainer) -> None:
        waiting = [e for e in (self.explainers or {}).values() if hasattr(e, "baselines") and e.baselines is None]
        if not waiting:
            return
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is None or not hasattr(datamodule, "baseline_bank"):
            rank_zero_warn(
                "ExplainerCallback: explainers with baselines=None use zero baselines, because the datamodule has no "
                "baseline_bank(n); pass baselines explicitly (e.g. DataBaselines(train_dataset)) to draw from the data"
            )
            return
        bank = BankBaselines(datamodule.baseline_bank(self.baseline_bank_size))
        for explainer in waiting:
            explainer.baselines = bank  # type: ignore[attr-defined]

    def _probe_batch(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> XaiBatch:
        """This rank's share of the probe, collated by the validation dataloader and on the module's device."""
        loader = trainer.val_dataloaders
        loader = loader[0] if isinstance(loader, (list, tuple)) else loader
        dataset = getattr(loader, "dataset", None)
        if dataset is None or not hasattr(dataset, "__len__"):
            raise TypeError("ExplainerCallback needs a validation DataLoader over a map-style dataset (with __len__) to draw its probe")
        if self._resumed is not None:  # the checkpoint's state, reconciled with this run's settings
            self.probe_indices, self._speed, message = reconcile(self._resumed, self.probe_size, self.probe_seed, len(dataset), list(self.explainers or {}))
            self._resumed = None
            if message is not None:
                rank_zero_warn(message)
        if self.probe_indices is None:
            self.probe_indices = choose_probe(len(dataset), self.probe_size, self.probe_seed, dataset_labels(dataset))
        self._dataset_size = len(dataset)
        share = self.probe_indices[trainer.global_rank :: trainer.world_size].tolist()
        if not share:
            return XaiBatch(torch.empty(0))
        batch = move_data_to_device(loader.collate_fn([dataset[i] for i in share]), pl_module.device)
        return self._read(batch)

    def _targets(self, pl_module: pl.LightningModule, batch: XaiBatch) -> Tensor | Target | None:
        """The targets every explainer and metric gets, through the shared model pass (`lit_xai.targets`):
        the labels (`targets="label"`) or the model's prediction; a `RegionTarget` over the batch's masks for
        dense (segmentation) outputs."""
        inputs = batch.inputs
        channel_dim = check_channel_dim(self.channel_dim, inputs.ndim)
        outputs = self._batch_outputs(pl_module, batch)
        with model_call(len(inputs), batch.forward_args, self.output, self.score, channel_dim, inputs.device), torch.no_grad():
            if outputs.ndim > 2:
                return self._region_targets(outputs, batch)
            if self.targets == "label":
                if batch.labels is None:
                    raise ValueError("targets='label' needs batches with labels: (inputs, labels, ...), batch_keys['labels'] or batch_transform")
                return batch.labels
            return resolve_targets(outputs, None)

    def _region_targets(self, outputs: Tensor, batch: XaiBatch) -> RegionTarget:
        if batch.regions is None or batch.regions.shape[0] != len(outputs) or batch.regions.shape[1:] != outputs.shape[2:]:
            raise ValueError(
                f"the model's outputs have shape {tuple(outputs.shape)} (dense, e.g. segmentation): the callback explains the region "
                "of each sample's mask, so batches need masks (B, *spatial) at the output's resolution as their regions "
                "((inputs, labels, masks), batch_keys['regions'] or batch_transform)"
            )
        masks = batch.regions.to(outputs.dtype)
        if self.targets == "label" and batch.labels is not None:
            return RegionTarget(batch.labels, masks)
        mean = (outputs * masks.unsqueeze(1)).flatten(2).sum(2) / masks.flatten(1).sum(1).clamp_min(1).unsqueeze(1)
        return RegionTarget(mean.argmax(dim=1), masks)

    def _start_round(self, pl_module: pl.LightningModule) -> None:
        self.errors, self.skipped, self._shown, self._curves, self._shown_scores = {}, [], {}, {}, {}
        self._diverged = False
        self._values = {name: {} for name in self.metrics}
        self._seconds = dict.fromkeys(self.metrics, 0.0)
        self._samples = dict.fromkeys(self.metrics, 0)
        for metrics in self.metrics.values():
            for metric in metrics.values():
                metric.reset()
                metric.to(pl_module.device)

    def _plan_budget(self, share: int) -> None:
        """Skip, fastest first, the explainers whose expected time would overrun `max_seconds`.

        The plan uses only the speeds synchronised across ranks at the end of the last round and the
        largest share of the probe, so every rank makes the same choice."""
        if self.max_seconds is None:
            return
        planned = 0.0
        for name in sorted(self.explainers or {}, key=lambda name: self._speed.get(name, 0.0)):
            planned += self._speed.get(name, 0.0) * share
            if planned > self.max_seconds:
                self.skipped.append(name)
        if self.skipped:
            rank_zero_warn(f"ExplainerCallback: over the {self.max_seconds} s budget, skipped {self.skipped} this round")

    def _explain(self, pl_module: pl.LightningModule, batch: XaiBatch, keep: int) -> None:
        """Explain the batch's inputs with every explainer not skipped and update the metrics."""
        inputs = batch.inputs
        try:
            targets = self._targets(pl_module, batch)
        except Exception as error:  # the target pass fails like an explainer: a warning, the round skipped
            message = f"{type(error).__name__}: {error}"
            warnings.warn(f"ExplainerCallback: the target pass failed, every explainer is skipped this round: {message}")
            self.errors.update(dict.fromkeys(self.explainers or {}, f"target pass failed: {message}"))
            return
        for name in self.explainers or {}:
            if name in self.errors or name in self.skipped:
                continue
            try:
                start = time.perf_counter()
                args, options = self._call_arguments(batch)
                saliency = self.explainers[name](pl_module, inputs, targets, *args, **options)  # type: ignore[index]
                if saliency.is_cuda:
                    torch.cuda.synchronize(saliency.device)
                self._seconds[name] += time.perf_counter() - start
                self._samples[name] += len(inputs)
                if keep:
                    self._shown[name] = saliency[:keep].detach()
                for key, metric in self.metrics[name].items():
                    if not isinstance(metric, LocalisationMetric):
                        extra = {"forward_args": batch.forward_args} if batch.forward_args is not None else {}
                        metric.update(pl_module, inputs, saliency, targets, **extra)
                    elif batch.regions is None:
                        raise ValueError(f"metric {key!r} needs batches (inputs, labels, masks_or_boxes, ...)")
                    else:
                        metric.update(saliency, batch.regions)
                for key, metric in self.metrics[name].items():
                    values = getattr(metric, "last_values", None)  # lit-xai's per-image metrics
                    if isinstance(values, Tensor):
                        self._values[name].setdefault(key, []).append(values.detach().double().cpu())
                first = self._values[name].get(next(iter(self.metrics[name]), ""))
                if keep and first:  # the first metric's values of the shown samples (overlay captions)
                    self._shown_scores[name] = first[-1][:keep]
                if self._progress is not None:
                    self._progress.advance(name, len(inputs))
            except Exception as error:  # an explainer that fails must not stop training
                self.errors[name] = f"{type(error).__name__}: {error}"
                warnings.warn(f"ExplainerCallback: explainer {name!r} failed and is skipped this round: {self.errors[name]}")

    def _finish_round(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Every rank computes every metric and curve and joins the same reductions (the collectives must
        match); failures, divergence and speeds are synchronised so that every rank logs and plans alike.
        An explainer that failed anywhere (on any rank, on any batch) logs its flag only and its row is NaN;
        a round where the model diverged logs `xai/diverged` only (`lit_xai.callbacks.faults`)."""
        names = list(self.metrics)
        local = torch.tensor(
            [[float(name in self.errors), self._seconds.get(name, 0.0) / max(self._samples.get(name, 0), 1), float(self._diverged)] for name in names],
            dtype=torch.float64, device=pl_module.device,
        ).view(len(names), 3)
        reduced = trainer.strategy.reduce(local, reduce_op="max") if trainer.world_size > 1 else local
        failed_anywhere, speed, diverged = reduced.unbind(dim=1)
        self._diverged = bool(diverged.max() > 0) if names else self._diverged
        if self._diverged:
            rank_zero_warn(diverged_message(stage, trainer.current_epoch))
            log_synchronised(pl_module, DIVERGED_KEY, 1.0)
        results: Results = {}
        self._curves = {}
        for index, name in enumerate(names):
            row: dict[str, float] = {}
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*compute.*before.*update.*")
                for metric_key, metric in self.metrics[name].items():
                    row[metric_key] = float(metric.compute())
                    skipped = float(metric.skipped_samples()) if hasattr(metric, "skipped_samples") else 0.0  # synchronised
                    if skipped:  # the same on every rank: reported beside the value only when samples were left out
                        row[f"{metric_key}_skipped"] = skipped
                    if stage == "test" and hasattr(metric, "standard_error"):
                        row[f"{metric_key}_se"] = float(metric.standard_error())
                self._curves[name] = {key: metric.curve() for key, metric in self.metrics[name].items() if hasattr(metric, "curve")}
            samples = self._samples.get(name, 0)
            row["seconds_per_sample"] = self._seconds.get(name, 0.0) / samples if samples else math.nan
            if speed[index] > 0:
                self._speed[name] = float(speed[index])
            if failed_anywhere[index] > 0:  # partial numbers (the batches or ranks where it ran) are not results
                row = unreported(row)
                log_synchronised(pl_module, f"xai/{name}/failed", 1.0)
                if name not in self.errors:
                    self.errors[name] = "failed on another process (see its warning)"
            elif self._diverged:
                row = unreported(row)
            results[name] = row
            for column, value in row.items():
                if not math.isnan(value) and not column.endswith("_se"):
                    log_synchronised(pl_module, f"xai/{name}/{column}", value)
        self.results[stage] = results
        if stage == "test":  # every rank joins the same gathers: explainer and metric names are the same everywhere
            self.scores[stage] = {} if self._diverged else {
                name: {key: gather_values(self._values.get(name, {}).get(key, []), pl_module.device, trainer.world_size) for key in self.metrics[name]}
                for name in names
            }

    def _draw(self, trainer: pl.Trainer, shown: XaiBatch, stage: str) -> None:
        """Overlays of the kept samples and the mean perturbation curves, sent to the loggers."""
        maps = {name: shown for name, shown in self._shown.items() if name not in self.errors}
        if not maps or not trainer.loggers:
            return
        names = getattr(getattr(trainer, "datamodule", None), "class_names", None)
        channel_dim = check_channel_dim(self.channel_dim, shown.inputs.ndim)
        inputs, labels = to_channels_first(shown.inputs, channel_dim), shown.labels
        with model_call(len(inputs), shown.forward_args, self.output, self.score, channel_dim, inputs.device):
            captions = sample_captions(unwrap_module(trainer.lightning_module), inputs, None if labels is None else labels[: len(inputs)], names)
        scores = {k: v for k, v in self._shown_scores.items() if k in maps}
        figure = overlay_figure(inputs.cpu(), {k: v.cpu() for k, v in maps.items()}, captions, scores, next(iter(self.metric_templates), ""))
        step = trainer.global_step
        log_figure(trainer, figure, f"xai/{stage}_overlays", step)
        curves = {name: curves for name, curves in self._curves.items() if name not in self.errors and self._samples.get(name)}
        if any(curves.values()):
            log_figure(trainer, curves_figure(curves), f"xai/{stage}_curves", step)
