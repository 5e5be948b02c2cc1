"""Figures of an ExplainerCallback round, and sending figures and tables to whatever loggers are attached.

Figures are drawn with matplotlib's object API on an Agg canvas (no pyplot, the user's backend is left
alone). Weights & Biases gets `log_image` / `log_table`, TensorBoard `add_figure` / `add_text`; every
other logger (CSV) gets PNG / CSV / Markdown files in its log directory, as does TensorBoard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from lit_xai.metrics.confidence import normalised_saliency
from lit_xai.model_state import preserved_model_state
from lit_xai.targets import is_regression, model_outputs


def display_image(sample: Tensor) -> np.ndarray:
    """`(C, H, W)` -> an (H, W) or (H, W, 3) array in [0, 1] for display (min-max over the sample)."""
    image = sample.detach().float().cpu()
    image = (image - image.min()) / (image.max() - image.min()).clamp_min(1e-12)
    return image[0].numpy() if image.shape[0] != 3 else image.permute(1, 2, 0).numpy()


def sample_captions(model: torch.nn.Module, inputs: Tensor, labels: Tensor | None, class_names: list[str] | None = None) -> list[str]:
    """`label <class>` and `pred <class>` of each sample (the model's argmax, in eval mode; a regressor's
    output with 3 significant digits); `sample <i>` instead of the label when there are no labels."""

    def name(value: Tensor) -> str:
        if value.is_floating_point():
            return f"{float(value):.3g}"
        return str(class_names[int(value)]) if class_names is not None else str(int(value))

    with torch.no_grad(), preserved_model_state(model):
        outputs = model_outputs(model, inputs)
    if outputs.ndim > 2:  # dense (segmentation) outputs: no single prediction per sample
        return [f"sample {i}" if labels is None or labels.ndim != 1 else f"label {name(labels[i])}" for i in range(len(inputs))]
    predictions = outputs.reshape(-1) if is_regression(outputs) else outputs.argmax(dim=1)
    return [
        f"{'sample ' + str(i) if labels is None else 'label ' + name(labels[i])}\npred {name(predictions[i])}"
        for i in range(len(inputs))
    ]


def overlay_figure(
    inputs: Tensor, maps: dict[str, Tensor], captions: list[str], scores: dict[str, Tensor] | None = None, score_name: str = ""
) -> Figure:
    """Rows: samples; columns: the input, then one overlay per explainer (images), or for series `(B, C, T)`
    the sensor traces with the map as a heatmap under them (`draw_series`: maps `(B, T)` or `(B, C, T)`).
    `captions` label the rows; `scores` (explainer -> per-sample values of the metric `score_name`) are
    written under each overlay."""
    rows, cols = inputs.shape[0], 1 + len(maps)
    figure = Figure(figsize=(2.2 * cols, 2.2 * rows))
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, cols, squeeze=False)
    for row in range(rows):
        for col, (title, saliency) in enumerate([("input", None), *maps.items()]):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=8)
            if col == 0:
                ax.set_ylabel(captions[row], fontsize=8)
            elif scores is not None and title in scores and row < len(scores[title]):
                ax.set_xlabel(f"{score_name} {float(scores[title][row]):.3f}", fontsize=7)
            if inputs.ndim == 4:
                ax.imshow(display_image(inputs[row]), cmap="gray")
                if saliency is not None:
                    ax.imshow(normalised(saliency[row]), cmap="jet", alpha=0.5, vmin=0, vmax=1)
            else:
                draw_series(ax, inputs[row], None if saliency is None else saliency[row])
    figure.tight_layout()
    return figure


SERIES_MAP_HEIGHT = 0.3
"""Share of a series panel's height taken by the saliency heatmap under the traces."""


def draw_series(ax: Any, series: Tensor, saliency: Tensor | None) -> None:
    """A sample `(C, T)` as C traces (each min-max scaled on its own) above its saliency as a heatmap over
    the same cycles: one row for a map over time `(T,)`, C rows (sensors x cycles) for a map `(C, T)`."""
    values = series.detach().float().cpu()
    low, high = values.amin(dim=1, keepdim=True), values.amax(dim=1, keepdim=True)
    traces = ((values - low) / (high - low).clamp_min(1e-12)).numpy()
    steps = values.shape[1]
    bottom = SERIES_MAP_HEIGHT + 0.05 if saliency is not None else 0.0
    if saliency is not None:
        heat = normalised(saliency)
        heat = heat[None, :] if heat.ndim == 1 else heat
        ax.imshow(heat, cmap="jet", aspect="auto", vmin=0, vmax=1, interpolation="nearest",
                  extent=(-0.5, steps - 0.5, 0.0, SERIES_MAP_HEIGHT), origin="upper")
    for trace in traces:
        ax.plot(np.arange(steps), bottom + (1.0 - bottom) * trace, linewidth=0.8)
    ax.set_xlim(-0.5, steps - 0.5)
    ax.set_ylim(0.0, 1.02)


def normalised(saliency: Tensor) -> np.ndarray:
    """One map min-max scaled to [0, 1] for display (the metrics' scaling: a constant map is 0)."""
    return normalised_saliency(saliency.detach().float().cpu().unsqueeze(0))[0].numpy()


def curves_figure(curves: dict[str, dict[str, Tensor]]) -> Figure:
    """One panel per curve metric (insertion, deletion, ...), one line per explainer: mean curves over
    the fraction of units changed."""
    metrics = sorted({metric for per_explainer in curves.values() for metric in per_explainer})
    figure = Figure(figsize=(4 * max(len(metrics), 1), 3.2))
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, max(len(metrics), 1), squeeze=False)[0]
    for ax, metric in zip(axes, metrics):
        for explainer, per_explainer in curves.items():
            if metric in per_explainer:
                curve = per_explainer[metric].detach().float().cpu()
                ax.plot(torch.linspace(0, 1, len(curve)).numpy(), curve.numpy(), label=explainer)
        ax.set_title(metric)
        ax.set_xlabel("fraction of the input changed")
        ax.set_ylabel("target score")
        ax.legend(fontsize=7)
    figure.tight_layout()
    return figure


def figure_array(figure: Figure) -> np.ndarray:
    canvas = figure.canvas
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def log_figure(trainer: pl.Trainer, figure: Figure, key: str, step: int) -> list[Path]:
    """Send a figure to every logger; returns the PNG files written."""
    written = []
    for logger in trainer.loggers:
        kind = type(logger).__name__
        if kind == "WandbLogger":
            logger.log_image(key=key, images=[figure_array(figure)], step=step)  # type: ignore[attr-defined]
            continue
        if kind == "TensorBoardLogger":
            logger.experiment.add_figure(key, figure, global_step=step, close=False)  # type: ignore[attr-defined]
        if logger.log_dir is not None:
            path = Path(logger.log_dir) / f"{key.replace('/', '_')}_step{step:06d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            figure.savefig(path, dpi=80)
            written.append(path)
    return written


def log_table(trainer: pl.Trainer, key: str, columns: list[str], rows: list[list[object]], markdown: str) -> None:
    """A results table to W&B (`log_table`) and TensorBoard (`add_text`); files are written by the caller."""
    for logger in trainer.loggers:
        kind = type(logger).__name__
        if kind == "WandbLogger":
            logger.log_table(key=key, columns=columns, data=rows)  # type: ignore[attr-defined]
        elif kind == "TensorBoardLogger":
            logger.experiment.add_text(key, markdown, global_step=trainer.global_step)  # type: ignore[attr-defined]
