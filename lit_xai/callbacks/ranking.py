"""The paired ranking report of a test round: `xai_ranking.{csv,md}`, the printed table, the loggers' table
and the rank figure (statistics in `lit_xai.ranking`).

`xai_ranking.csv` has one row per (metric, explainer): its rank with ties at the chosen level, mean,
mean per-image rank, images, and the metric's Krippendorff alpha; `xai_ranking_pairs.csv` one row per
(metric, pair): paired mean difference, its standard error, Wilcoxon's statistic, p, Holm's p and
whether the pair is separable; `xai_ranking.md` holds both and the rank correlations between metrics.
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Mapping

import lightning.pytorch as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table
from torch import Tensor
from torchmetrics import Metric

from lit_xai.callbacks.visuals import log_figure, log_table
from lit_xai.ranking import RankingReport, rank_explainers

RANKING_COLUMNS = ["metric", "explainer", "rank", "mean", "mean_rank", "images", "higher_is_better", "krippendorff_alpha"]
PAIR_COLUMNS = ["metric", "first", "second", "images", "mean_difference", "standard_error", "wilcoxon", "p", "p_holm", "separable", "better"]


def metric_direction(metric: Metric) -> bool | None:
    """A metric's `higher_is_better`; ROAD's depends on its order (MoRF lower, LeRF higher)."""
    declared = getattr(metric, "higher_is_better", None)
    if declared is None and getattr(metric, "order", None) in ("morf", "lerf"):
        return metric.order == "lerf"  # type: ignore[attr-defined]
    return declared


def number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}g}"


def ranking_rows(report: RankingReport) -> list[list[object]]:
    rows: list[list[object]] = []
    for metric, ranking in report.metrics.items():
        for explainer in ranking.explainers:
            rows.append([
                metric, explainer, ranking.ranks[explainer], ranking.means[explainer], ranking.mean_ranks[explainer], ranking.images,
                ranking.higher_is_better, math.nan if ranking.reliability is None else ranking.reliability,
            ])
    return rows


def pair_rows(report: RankingReport) -> list[list[object]]:
    return [
        [p.metric, p.first, p.second, p.count, p.mean_difference, p.standard_error, p.statistic, p.p_value, p.p_holm, p.separable, p.better or ""]
        for ranking in report.metrics.values() for p in ranking.comparisons
    ]


def reliability_text(report: RankingReport, metric: str) -> str:
    ranking = report.metrics[metric]
    if ranking.reliability is None:
        return f"undefined ({ranking.reliability_note})"
    return f"{ranking.reliability:.3f}" + (" LOW: images disagree on the order" if ranking.unreliable else "")


def ranking_markdown(report: RankingReport) -> str:
    lines = [f"Explainers ranked per metric at level {report.alpha:g} (Wilcoxon signed-rank, Holm over pairs; ties share a rank).", ""]
    lines += ["| " + " | ".join(RANKING_COLUMNS) + " |", "| --- | --- |" + " ---: |" * (len(RANKING_COLUMNS) - 2)]
    for row in ranking_rows(report):
        lines.append("| " + " | ".join(str(v) if not isinstance(v, float) else number(v) for v in row) + " |")
    lines += ["", "Pairs (mean difference = first - second):", ""]
    lines += ["| " + " | ".join(PAIR_COLUMNS) + " |", "| --- | --- | --- |" + " ---: |" * (len(PAIR_COLUMNS) - 3)]
    for row in pair_rows(report):
        lines.append("| " + " | ".join(str(v) if not isinstance(v, float) else number(v) for v in row) + " |")
    lines += ["", "Reliability (Krippendorff's ordinal alpha of the per-image rankings; below 0.667 is flagged):", ""]
    lines += [f"- {metric}: {reliability_text(report, metric)}" for metric in report.metrics]
    if report.agreement:
        lines += ["", "Agreement between metrics (Spearman's rho of their method rankings):", ""]
        lines += [f"- {a} vs {b}: {number(rho, 3)}" for (a, b), rho in report.agreement.items()]
    return "\n".join(lines) + "\n"


def write_ranking(report: RankingReport, directory: str | Path, stem: str = "xai_ranking") -> tuple[Path, Path, Path]:
    """Write `<stem>.csv`, `<stem>_pairs.csv` and `<stem>.md` under `directory`; returns the three paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / f"{stem}.csv", directory / f"{stem}_pairs.csv", directory / f"{stem}.md"
    for path, header, rows in ((paths[0], RANKING_COLUMNS, ranking_rows(report)), (paths[1], PAIR_COLUMNS, pair_rows(report))):
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows([repr(v) if isinstance(v, float) else v for v in row] for row in rows)
    paths[2].write_text(ranking_markdown(report))
    return paths


def print_ranking(report: RankingReport, title: str = "explainer ranking (test)") -> None:
    """Rows: explainers; columns: metrics, each cell `rank (mean)`; a metric with low alpha is flagged."""
    explainers: list[str] = []
    for ranking in report.metrics.values():
        explainers += [e for e in ranking.explainers if e not in explainers]
    table = Table(title=f"{title}: rank at level {report.alpha:g} (mean); ties share a rank")
    table.add_column("explainer")
    for metric, ranking in report.metrics.items():
        flag = "\nLOW alpha" if ranking.unreliable else ""
        alpha = "-" if ranking.reliability is None else f"{ranking.reliability:.2f}"
        table.add_column(f"{metric}{' (lower better)' if ranking.higher_is_better is False else ''}\nalpha {alpha}{flag}", justify="right")
    for explainer in explainers:
        cells = []
        for ranking in report.metrics.values():
            cells.append(f"{ranking.ranks[explainer]} ({number(ranking.means[explainer], 3)})" if explainer in ranking.ranks else "-")
        table.add_row(explainer, *cells)
    console = Console()
    console.print(table)
    for metric, ranking in report.metrics.items():
        if ranking.unreliable:
            console.print(f"[red]metric {metric!r} is unreliable:[/red] Krippendorff's alpha {ranking.reliability:.3f} < 0.667, images rank the explainers differently")


def rank_figure(report: RankingReport) -> Figure:
    """One panel per metric, critical-difference style (Demšar 2006): each explainer at its mean per-image
    rank (1 = best, at the left), labelled with its rank with ties; a bar joins explainers that no test
    separates (maximal runs of the mean-rank order whose every pair is not separable)."""
    metrics = list(report.metrics)
    figure = Figure(figsize=(6, 1.2 + 0.35 * sum(len(r.explainers) for r in report.metrics.values()) / max(len(metrics), 1) * len(metrics) ** 0.5))
    FigureCanvasAgg(figure)
    axes = figure.subplots(max(len(metrics), 1), 1, squeeze=False)[:, 0]
    for ax, metric in zip(axes, metrics):
        ranking = report.metrics[metric]
        order = sorted(ranking.explainers, key=lambda e: ranking.mean_ranks[e])
        count = len(order)
        ax.set_xlim(0.5, count + 0.5)
        ax.set_ylim(-0.6 - 0.25 * count, 0.6)
        ax.axhline(0, color="black", linewidth=0.8)
        for height, explainer in enumerate(order):
            x = ranking.mean_ranks[explainer]
            ax.plot([x], [0], "o", color="black", markersize=4)
            ax.annotate(f"{explainer} [{ranking.ranks[explainer]}]", (x, 0), (x, -0.35 - 0.25 * height), fontsize=7, ha="center",
                        arrowprops={"arrowstyle": "-", "linewidth": 0.5})
        level = 0.2
        start = 0
        while start < count:  # maximal runs of mutually inseparable explainers
            end = start
            while end + 1 < count and all(not ranking.comparison(order[k], order[end + 1]).separable for k in range(start, end + 1)):
                end += 1
            if end > start:
                ax.plot([ranking.mean_ranks[order[start]], ranking.mean_ranks[order[end]]], [level, level], color="tab:red", linewidth=3)
                level += 0.12
            start = end + 1 if end > start else start + 1
        alpha = "-" if ranking.reliability is None else f"{ranking.reliability:.2f}"
        ax.set_title(f"{metric}: mean rank per image (alpha {alpha}{', low' if ranking.unreliable else ''})", fontsize=8)
        ax.set_yticks([])
        ax.tick_params(labelsize=7)
    figure.tight_layout()
    return figure


def report_ranking(
    trainer: pl.Trainer,
    scores: Mapping[str, Mapping[str, Tensor]],
    templates: Mapping[str, Metric],
    alpha: float,
    log_dir: str | None,
    draw: bool,
) -> RankingReport | None:
    """Rank the explainers from a test round's per-image values (rank 0 only): files in `log_dir`, the
    table to the loggers, the rank figure when `draw`. Returns None, with a warning, when nothing can
    be ranked (no per-image metric, or explainers scored on different images)."""
    per_image = {e: {m: v.double().numpy() for m, v in per.items() if v.numel()} for e, per in scores.items()}
    per_image = {e: per for e, per in per_image.items() if per}
    if not per_image:
        return None
    try:
        report = rank_explainers(per_image, {m: metric_direction(t) for m, t in templates.items()}, alpha)
    except ValueError as error:
        warnings.warn(f"ExplainerCallback: no explainer ranking this test round: {error}")
        return None
    if not report.metrics:
        return None
    if log_dir is not None:
        write_ranking(report, log_dir)
    log_table(trainer, "xai/ranking", RANKING_COLUMNS, ranking_rows(report), ranking_markdown(report))
    if draw and trainer.loggers:
        log_figure(trainer, rank_figure(report), "xai/test_ranking", trainer.global_step)
    return report
