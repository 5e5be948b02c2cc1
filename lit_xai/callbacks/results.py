"""The explainer x metric results table: printed with rich, written as CSV and Markdown."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

Results = dict[str, dict[str, float]]
"""explainer name -> column name (a metric, or `seconds_per_sample`) -> value."""


def columns(results: Results) -> list[str]:
    names: list[str] = []
    for row in results.values():
        names += [name for name in row if name not in names]
    return names


def format_value(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4g}"


def print_results(results: Results, title: str, errors: dict[str, str] | None = None) -> None:
    table = Table(title=title)
    table.add_column("explainer")
    for name in columns(results):
        table.add_column(name, justify="right")
    for explainer, row in results.items():
        table.add_row(explainer, *(format_value(row.get(name)) for name in columns(results)))
    console = Console()
    console.print(table)
    for explainer, message in (errors or {}).items():
        console.print(f"[red]explainer {explainer!r} failed:[/red] {message}")


def write_results(results: Results, directory: str | Path, stem: str = "xai_results") -> tuple[Path, Path]:
    """Write `<directory>/<stem>.csv` and `.md`; returns both paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names = columns(results)
    csv_path, md_path = directory / f"{stem}.csv", directory / f"{stem}.md"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["explainer", *names])
        for explainer, row in results.items():
            writer.writerow([explainer, *(row.get(name, math.nan) for name in names)])
    lines = ["| explainer | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    lines += [f"| {explainer} | " + " | ".join(format_value(row.get(name)) for name in names) + " |" for explainer, row in results.items()]
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path
