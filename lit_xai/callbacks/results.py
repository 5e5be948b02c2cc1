"""The explainer x metric results table: printed with rich, written as CSV and Markdown."""

from __future__ import annotations

import csv
import math
from collections.abc import Collection
from pathlib import Path

import torch
from rich.console import Console
from torch import Tensor
from torchmetrics.utilities.distributed import gather_all_tensors
from rich.table import Table

Results = dict[str, dict[str, float]]
"""explainer name -> column (a metric, `<metric>_se` its standard error, or `seconds_per_sample`) -> value.
A failed explainer's row holds NaN in every column (its partial numbers are not results)."""

FAILED = "failed"
"""What the printed and Markdown tables show in a failed explainer's cells (the CSV holds `nan`)."""


def columns(results: Results) -> list[str]:
    names: list[str] = []
    for row in results.values():
        names += [name for name in row if name not in names]
    return names


def format_value(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4g}"


def table_rows(results: Results) -> tuple[list[str], list[list[object]]]:
    names = columns(results)
    return ["explainer", *names], [[explainer, *(row.get(name, math.nan) for name in names)] for explainer, row in results.items()]


def cells(row: list[object], failed: Collection[str]) -> list[str]:
    """A table row's cells as text: the explainer, then its values, or "failed" in each cell of a failed explainer."""
    explainer = str(row[0])
    return [explainer, *(FAILED if explainer in failed else format_value(v) for v in row[1:])]  # type: ignore[arg-type]


def markdown_table(results: Results, failed: Collection[str] = ()) -> str:
    header, rows = table_rows(results)
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    lines += ["| " + " | ".join(cells(row, failed)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def print_results(results: Results, title: str, errors: dict[str, str] | None = None) -> None:
    """Print the table; explainers in `errors` (name -> message) show "failed" and their message below it."""
    header, rows = table_rows(results)
    table = Table(title=title)
    table.add_column(header[0])
    for name in header[1:]:
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(*cells(row, errors or {}))
    console = Console()
    console.print(table)
    for explainer, message in (errors or {}).items():
        console.print(f"[red]explainer {explainer!r} failed:[/red] {message}")


def write_results(results: Results, directory: str | Path, stem: str = "xai_results", failed: Collection[str] = ()) -> tuple[Path, Path]:
    """Write `<directory>/<stem>.csv` and `.md`; returns both paths. Explainers in `failed` hold `nan` in the
    CSV and "failed" in the Markdown table."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = directory / f"{stem}.csv", directory / f"{stem}.md"
    header, rows = table_rows(results)
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    md_path.write_text(markdown_table(results, failed))
    return csv_path, md_path


def gather_values(values: list[Tensor], device: torch.device, world_size: int) -> Tensor:
    """This process's per-image values, concatenated, then those of every process in rank order (float64, CPU).
    Under DDP every rank must call it for the same (explainer, metric) pairs in the same order."""
    local = torch.cat(values) if values else torch.zeros(0, dtype=torch.float64)
    if world_size <= 1:
        return local
    return torch.cat([part.cpu() for part in gather_all_tensors(local.to(device))])


def write_scores(scores: dict[str, dict[str, Tensor]], directory: str | Path, stem: str = "xai_scores") -> Path:
    """Write `<directory>/<stem>.csv`: one row per (explainer, metric, sample) with the per-image value;
    explainers and metrics without per-image values are left out."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["explainer", "metric", "sample", "value"])
        for explainer, metrics in scores.items():
            for metric, values in metrics.items():
                writer.writerows([explainer, metric, index, repr(float(value))] for index, value in enumerate(values.tolist()))
    return path
