"""Tiny C-MAPSS subsets in the exact on-disk format (26 whitespace-separated columns, RUL file), with a
learnable degradation trend: informative sensors drift as exp(-RUL / 40) towards failure, the others are
constant (per operating regime). Nothing here is downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CONSTANT_SENSORS = (1, 5, 6, 10, 16, 18, 19)
# (altitude, Mach, throttle) of the 6 operating conditions of FD002 / FD004
REGIMES = ((0.0, 0.0, 100.0), (10.0, 0.25, 100.0), (20.0, 0.7, 100.0), (25.0, 0.62, 60.0), (35.0, 0.84, 100.0), (42.0, 0.84, 100.0))


def sensor_values(rul: np.ndarray, regime: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`(cycles, 21)` sensor readings: a level per sensor and regime, plus for informative sensors a trend
    exp(-rul / 40) with a sensor-specific sign and size, plus a little noise."""
    sensors = np.arange(1, 22)
    level = 100.0 + 10.0 * sensors[None, :] + 7.0 * regime[:, None] * (1 + sensors[None, :] % 3)
    informative = ~np.isin(sensors, CONSTANT_SENSORS)
    amplitude = np.where(sensors % 2 == 0, 1.0, -1.0) * (2.0 + sensors % 4)
    trend = amplitude[None, :] * np.exp(-rul[:, None] / 40.0)
    noise = 0.05 * rng.standard_normal((len(rul), 21))
    return level + informative[None, :] * (trend + noise)


def engine_rows(unit: int, cycles: int, rul_at_end: int, regimes: bool, rng: np.random.Generator) -> np.ndarray:
    """`(cycles, 26)`: unit, cycle 1..cycles, 3 settings, 21 sensors; RUL after the last cycle `rul_at_end`."""
    rul = rul_at_end + cycles - np.arange(1, cycles + 1)
    regime = rng.integers(0, 6, cycles) if regimes else np.zeros(cycles, dtype=np.int64)
    settings = np.asarray(REGIMES)[regime] + rng.uniform(-0.002, 0.002, (cycles, 3)) * np.array([1.0, 1.0, 0.0])
    return np.column_stack([np.full(cycles, unit), np.arange(1, cycles + 1), settings, sensor_values(rul.astype(float), regime, rng)])


def format_row(row: np.ndarray) -> str:
    """One line as in NASA's files: integers for unit and cycle, then the numbers, then two trailing spaces."""
    return f"{int(row[0])} {int(row[1])} " + " ".join(f"{value:.4f}" for value in row[2:]) + "  "


def write_table(path: Path, rows: np.ndarray, crlf: bool = False) -> None:
    newline = "\r\n" if crlf else "\n"
    path.write_bytes((newline.join(format_row(row) for row in rows) + newline).encode("ascii"))


def write_cmapss(
    root: Path,
    subset: str = "FD001",
    train_units: int = 10,
    test_units: int = 5,
    seed: int = 0,
    short_test_cycles: int = 12,
    crlf: bool = False,
) -> Path:
    """train_/test_/RUL_<subset>.txt under `root`; FD002 / FD004 get the 6 operating regimes.

    Training engines run 60-159 cycles to failure; test engines stop 5-60 cycles before failure, and the
    last test engine has only `short_test_cycles` cycles (shorter than the default windows)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    regimes = subset in ("FD002", "FD004")
    train = np.concatenate([engine_rows(u, int(rng.integers(60, 160)), 0, regimes, rng) for u in range(1, train_units + 1)])
    test_rows, test_rul = [], []
    for unit in range(1, test_units + 1):
        remaining = int(rng.integers(5, 61))
        cycles = short_test_cycles if unit == test_units else int(rng.integers(35, 120))
        test_rows.append(engine_rows(unit, cycles, remaining, regimes, rng))
        test_rul.append(remaining)
    write_table(root / f"train_{subset}.txt", train, crlf)
    write_table(root / f"test_{subset}.txt", np.concatenate(test_rows), crlf)
    newline = "\r\n" if crlf else "\n"
    (root / f"RUL_{subset}.txt").write_bytes("".join(f"{value} {newline}" for value in test_rul).encode("ascii"))
    return root


def read_rows(path: Path) -> np.ndarray:
    return np.loadtxt(path)
