"""NASA C-MAPSS turbofan run-to-failure data (Saxena et al., "Damage propagation modeling for aircraft engine
run-to-failure simulation", PHM 2008) as windows for remaining-useful-life (RUL) regression."""

from __future__ import annotations

import io
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from lit_xai.datamodules.base import SplitDataModule
from lit_xai.datamodules.vision import DatasetNotFoundError, MalformedDatasetError, dataset_message, seeded_split

CMAPSSSubset = Literal["FD001", "FD002", "FD003", "FD004"]
SUBSETS: tuple[str, ...] = ("FD001", "FD002", "FD003", "FD004")
DEFAULT_WINDOW_SIZES = {"FD001": 30, "FD002": 20, "FD003": 30, "FD004": 15}
"""The shortest test series of each subset (the usual window sizes in the literature and in rul-datasets)."""
MULTI_REGIME_SUBSETS = ("FD002", "FD004")
INFORMATIVE_SENSORS = (2, 3, 4, 7, 8, 9, 11, 12, 13, 14, 15, 17, 20, 21)
"""The 14 sensors that are not constant in FD001 / FD003 (Li, Ding & Sun 2018, and most later work)."""
SENSOR_SYMBOLS = (
    "T2", "T24", "T30", "T50", "P2", "P15", "P30", "Nf", "Nc", "epr", "Ps30", "phi", "NRf", "NRc", "BPR", "farB",
    "htBleed", "Nf_dmd", "PCNfR_dmd", "W31", "W32",
)
"""Symbols of sensors 1..21 (Saxena et al. 2008, table 2)."""
NUM_COLUMNS = 26
NASA_ARCHIVE_URL = "https://phm-datasets.s3.amazonaws.com/NASA/6.+Turbofan+Engine+Degradation+Simulation+Data+Set.zip"
CMAPSS_SOURCE = (
    "NASA's Prognostics Center of Excellence data repository, '6. Turbofan Engine Degradation Simulation' "
    f"({NASA_ARCHIVE_URL}; the archive holds CMAPSSData.zip): extract the text files into data_dir, "
    "or pass download=True when online"
)
CMAPSS_LAYOUT = """    <data_dir>/train_FD00x.txt  one row per cycle: unit cycle setting1 setting2 setting3 sensor1 .. sensor21
                                (26 whitespace-separated numbers; engines run to failure)
    <data_dir>/test_FD00x.txt   the same columns; each engine's series stops before failure
    <data_dir>/RUL_FD00x.txt    one number per line: the true RUL after the last cycle of each test engine"""


def cmapss_error(problem: str, data_dir: Path | str) -> DatasetNotFoundError:
    return DatasetNotFoundError(dataset_message(problem, data_dir, CMAPSS_LAYOUT, CMAPSS_SOURCE))


def read_table(path: Path, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """The numbers of a whitespace-separated text file, `(rows, columns)` float64, and each row's line number.

    Any whitespace separates (trailing spaces and CRLF line ends are fine), blank lines are skipped; a row
    with another number of columns or a token that is not a number raises a MalformedDatasetError naming
    the file and the line.
    """
    if not path.is_file():
        raise cmapss_error(f"C-MAPSS file {path.name} not found", path.parent)
    rows: list[list[float]] = []
    numbers: list[int] = []
    with path.open("r", encoding="ascii", errors="replace", newline=None) as handle:
        for number, line in enumerate(handle, start=1):
            tokens = line.split()
            if not tokens:
                continue
            if len(tokens) != columns:
                raise MalformedDatasetError(
                    f"{path}, line {number}: expected {columns} whitespace-separated numbers, found {len(tokens)}: {line.strip()[:120]!r}"
                )
            try:
                rows.append([float(token) for token in tokens])
                numbers.append(number)
            except ValueError:
                raise MalformedDatasetError(f"{path}, line {number}: not a number in {line.strip()[:120]!r}") from None
    if not rows:
        raise MalformedDatasetError(f"{path} holds no rows")
    return np.asarray(rows, dtype=np.float64), np.asarray(numbers, dtype=np.int64)


def split_units(table: np.ndarray, lines: np.ndarray, path: Path) -> list[np.ndarray]:
    """The rows of each engine, in file order: a unit's rows must be consecutive, with increasing cycles
    (`lines`: each row's line in the file, for the error messages)."""
    units, cycles = table[:, 0], table[:, 1]
    if not np.array_equal(units, np.round(units)) or not np.array_equal(cycles, np.round(cycles)):
        bad = int(np.flatnonzero((units != np.round(units)) | (cycles != np.round(cycles)))[0])
        raise MalformedDatasetError(f"{path}, line {lines[bad]}: unit and cycle must be whole numbers")
    starts = np.flatnonzero(np.diff(units) != 0) + 1
    blocks = np.split(np.arange(len(table)), starts)
    seen: set[int] = set()
    for block in blocks:
        unit = int(units[block[0]])
        if unit in seen:
            raise MalformedDatasetError(f"{path}, line {lines[block[0]]}: unit {unit} appears again after other units")
        seen.add(unit)
        steps = np.diff(cycles[block])
        if (steps <= 0).any():
            bad = int(block[1 + int(np.flatnonzero(steps <= 0)[0])])
            raise MalformedDatasetError(f"{path}, line {lines[bad]}: cycles of unit {unit} must increase")
    return [table[block] for block in blocks]


def piecewise_linear_rul(cycles: np.ndarray, rul_at_end: float, max_rul: Optional[float]) -> np.ndarray:
    """Cycles to failure of each row, `rul_at_end + last cycle - cycle`, capped at `max_rul` (None: uncapped)."""
    rul = rul_at_end + cycles[-1] - cycles
    return rul if max_rul is None else np.minimum(rul, max_rul)


class MinMaxScaler:
    """Per-channel min-max scaling to [-1, 1], optionally one scaler per operating regime.

    x' = -1 + 2 (x - min) / (max - min), min and max over the fitted rows; a channel constant in the fitted
    rows has range 1 (scikit-learn's convention: its fitted value maps to -1). Values outside the fitted
    range go beyond [-1, 1].
    """

    def __init__(self) -> None:
        self.low: dict[int, np.ndarray] = {}
        self.span: dict[int, np.ndarray] = {}

    def fit(self, features: np.ndarray, regimes: np.ndarray) -> MinMaxScaler:
        for regime in np.unique(regimes):
            rows = features[regimes == regime]
            low, high = rows.min(axis=0), rows.max(axis=0)
            span = high - low
            self.low[int(regime)], self.span[int(regime)] = low, np.where(span > 0, span, 1.0)
        return self

    def transform(self, features: np.ndarray, regimes: np.ndarray) -> np.ndarray:
        scaled = np.empty_like(features)
        for regime in np.unique(regimes):
            rows = regimes == regime
            scaled[rows] = -1.0 + 2.0 * (features[rows] - self.low[int(regime)]) / self.span[int(regime)]
        return scaled


class RegimeClusters:
    """Operating regimes: k-means (scikit-learn, `n_init=10`, seeded) on the 3 operational settings, each
    standardised with the fitted rows' mean and standard deviation; FD002 / FD004 have 6 (altitude, Mach,
    throttle) conditions, which k = 6 separates exactly."""

    def __init__(self, num_regimes: int, seed: int) -> None:
        self.num_regimes, self.seed = num_regimes, seed

    def fit(self, settings: np.ndarray) -> RegimeClusters:
        from sklearn.cluster import KMeans

        self.mean, std = settings.mean(axis=0), settings.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)
        self.kmeans = KMeans(n_clusters=self.num_regimes, n_init=10, random_state=self.seed).fit((settings - self.mean) / self.std)
        return self

    def predict(self, settings: np.ndarray) -> np.ndarray:
        return self.kmeans.predict((settings - self.mean) / self.std)


class RULWindows(Dataset):
    """Windows of `window_size` consecutive cycles over sensor channels: samples `(window (C, T) float32, rul float32)`.

    `rows` is every engine's scaled series (front-padded with zeros to at least `window_size` cycles)
    stacked `(cycles, C)`; sample i is `rows[starts[i] : starts[i] + window_size].T`. `targets` are the
    (capped) RUL of each window's last cycle, `rul_uncapped` the same before capping, `units` the engine ids.
    """

    def __init__(self, rows: Tensor, starts: Tensor, window_size: int, targets: Tensor, rul_uncapped: Tensor, units: Tensor) -> None:
        self.rows, self.starts, self.window_size = rows, starts, window_size
        self.targets, self.rul_uncapped, self.units = targets, rul_uncapped, units

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        start = int(self.starts[index])
        return self.rows[start : start + self.window_size].T.contiguous(), self.targets[index]

    def inputs(self) -> Tensor:
        """All windows `(N, C, T)` at once."""
        positions = self.starts[:, None] + torch.arange(self.window_size)
        return self.rows[positions].transpose(1, 2).contiguous()


def make_windows(
    series: Sequence[np.ndarray], rul: Sequence[np.ndarray], units: Sequence[int], window_size: int, last_only: bool, max_rul: Optional[float]
) -> RULWindows:
    """Windows over each engine's scaled `series` (cycles, C) with per-cycle uncapped `rul`: every window
    (sliding by one cycle) or only the last one per engine. Series shorter than the window are front-padded
    with zeros (the middle of the scaled range), as rul-datasets does."""
    rows, starts, targets, unit_ids = [], [], [], []
    offset = 0
    for values, remaining, unit in zip(series, rul, units):
        missing = max(window_size - len(values), 0)
        if missing:
            values = np.concatenate([np.zeros((missing, values.shape[1])), values])
        count = len(values) - window_size + 1
        first = count - 1 if last_only else 0
        starts.extend(range(offset + first, offset + count))
        ends = np.arange(first, count) + window_size - 1 - missing  # the window's last cycle in the unpadded series
        targets.append(remaining[ends])
        unit_ids.extend([unit] * (count - first))
        rows.append(values)
        offset += len(values)
    uncapped = torch.as_tensor(np.concatenate(targets), dtype=torch.float32)
    capped = uncapped if max_rul is None else uncapped.clamp(max=float(max_rul))
    return RULWindows(
        torch.as_tensor(np.concatenate(rows), dtype=torch.float32), torch.tensor(starts, dtype=torch.long), window_size,
        capped, uncapped, torch.tensor(unit_ids, dtype=torch.long),
    )


def download_cmapss(data_dir: Path, url: str = NASA_ARCHIVE_URL, timeout: float = 60.0) -> None:
    """Fetch NASA's archive and extract every train_/test_/RUL_FD00x.txt in it (also from a zip inside it)
    into `data_dir`. Any failure (offline, HTTP error, broken archive) raises a DatasetNotFoundError
    with the expected layout and the source, without the network traceback."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (a fixed https URL)
            payload = response.read()
        data_dir.mkdir(parents=True, exist_ok=True)
        extract_cmapss_files(zipfile.ZipFile(io.BytesIO(payload)), data_dir)
    except (OSError, zipfile.BadZipFile, ValueError) as error:
        raise cmapss_error(f"downloading C-MAPSS from {url} failed ({type(error).__name__}: {error})", data_dir) from None


def extract_cmapss_files(archive: zipfile.ZipFile, data_dir: Path) -> None:
    """Copy the C-MAPSS text files of `archive` (and of zips nested in it) flat into `data_dir`."""
    for member in archive.namelist():
        name = Path(member).name
        if name.lower().endswith(".zip"):
            extract_cmapss_files(zipfile.ZipFile(io.BytesIO(archive.read(member))), data_dir)
        elif name.endswith(".txt") and name.split("_")[0] in ("train", "test", "RUL"):
            with archive.open(member) as source, tempfile.NamedTemporaryFile(dir=data_dir, delete=False) as target:
                shutil.copyfileobj(source, target)
            Path(target.name).replace(data_dir / name)


class CMAPSSDataModule(SplitDataModule):
    """One C-MAPSS subset (FD001..FD004) as sliding windows for RUL regression.

    Preprocessing (each step a parameter):

    - target: piecewise-linear RUL, min(`max_rul`, cycles to failure), cycles to failure = last cycle - cycle
      in training (0 at the failure cycle) and RUL_FD00x + last cycle - cycle in the test set;
    - features: the `sensors` (1-based sensor numbers) min-max scaled to [-1, 1] with minima and maxima of
      the training engines only (not the validation engines), separately per operating regime when
      `per_regime` (default: True for FD002 / FD004, whose 6 regimes are clustered from the 3 settings by
      k-means fitted on the training engines);
    - train / val: all windows (stride 1) of a seeded `val_fraction` of the engines (by unit, never by window);
    - test: the last window of each test engine, front-padded with zeros (the scaled mid-range) when the
      engine has fewer cycles than the window, with the RUL of RUL_FD00x.txt capped at `max_rul`;
      `dataset("test").rul_uncapped` keeps the uncapped values for reporting.

    Batches are `(inputs (B, C, T), rul (B,))`, C = len(sensors), T = window_size. `baseline_bank(n)` draws
    training windows (baselines for Expected Grad-CAM).

    Args:
        data_dir: the folder holding train_FD00x.txt, test_FD00x.txt and RUL_FD00x.txt.
        subset: "FD001", "FD002", "FD003" or "FD004".
        window_size: cycles per window; default 30 / 20 / 30 / 15 for FD001..FD004.
        max_rul: cap of the piecewise-linear target (None: linear, uncapped).
        sensors: sensor numbers 1..21; default the 14 informative ones (2, 3, 4, 7, 8, 9, 11, 12, 13, 14, 15,
            17, 20, 21).
        val_fraction: share of the training engines held out for validation.
        seed: seed of the validation split and of the regime clustering.
        batch_size, num_workers: DataLoader settings.
        download: fetch NASA's archive into `data_dir` when the files are missing.
        per_regime: scale per operating regime (None: True for FD002 / FD004 only).
        num_regimes: regimes clustered from the settings when `per_regime`.
    """

    def __init__(
        self,
        data_dir: str | Path,
        subset: CMAPSSSubset = "FD001",
        window_size: Optional[int] = None,
        max_rul: Optional[int] = 125,
        sensors: Optional[list[int]] = None,
        val_fraction: float = 0.2,
        seed: int = 0,
        batch_size: int = 256,
        num_workers: int = 0,
        download: bool = False,
        per_regime: Optional[bool] = None,
        num_regimes: int = 6,
    ) -> None:
        super().__init__()
        if subset not in SUBSETS:
            raise ValueError(f"subset must be one of {', '.join(SUBSETS)}, got {subset!r}")
        window_size = DEFAULT_WINDOW_SIZES[subset] if window_size is None else window_size
        if window_size < 1 or batch_size < 1 or num_workers < 0 or num_regimes < 1:
            raise ValueError(
                f"window_size, batch_size and num_regimes must be >= 1 and num_workers >= 0, got {window_size}, {batch_size}, {num_regimes}, {num_workers}"
            )
        if max_rul is not None and max_rul <= 0:
            raise ValueError(f"max_rul must be > 0 or None, got {max_rul}")
        sensors = list(INFORMATIVE_SENSORS if sensors is None else sensors)
        if not sensors or any(not 1 <= s <= 21 for s in sensors) or len(set(sensors)) != len(sensors):
            raise ValueError(f"sensors must be distinct sensor numbers in 1..21, got {sensors}")
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        self.save_hyperparameters()
        self.data_dir = Path(data_dir).expanduser()
        self.subset, self.window_size, self.max_rul, self.sensors = subset, window_size, max_rul, sensors
        self.val_fraction, self.seed = val_fraction, seed
        self.batch_size, self.num_workers, self.download = batch_size, num_workers, download
        self.per_regime = subset in MULTI_REGIME_SUBSETS if per_regime is None else per_regime
        self.num_regimes = num_regimes
        self.splits: dict[str, RULWindows] = {}
        self.train_units: list[int] = []
        self.val_units: list[int] = []

    # ---- metadata ----------------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, int]:
        """`(len(sensors), window_size)`: what the model receives."""
        return (len(self.sensors), self.window_size)

    @property
    def sensor_names(self) -> list[str]:
        """Names of the input channels, e.g. "s2 T24" (sensor number and symbol)."""
        return [f"s{s} {SENSOR_SYMBOLS[s - 1]}" for s in self.sensors]

    def file(self, kind: Literal["train", "test", "RUL"]) -> Path:
        return self.data_dir / f"{kind}_{self.subset}.txt"

    # ---- reading -----------------------------------------------------------------------------------
    def _missing(self) -> list[Path]:
        return [self.file(kind) for kind in ("train", "test", "RUL") if not self.file(kind).is_file()]  # type: ignore[arg-type]

    def prepare_data(self) -> None:
        """Download NASA's archive into `data_dir` when `download=True` and a file of the subset is missing."""
        if self.download and self._missing():
            download_cmapss(self.data_dir)

    def _load(self) -> None:
        if self.splits:
            return
        missing = self._missing()
        if missing and self.download:
            self.prepare_data()
            missing = self._missing()
        if missing:
            raise cmapss_error(f"C-MAPSS {self.subset}: missing {', '.join(p.name for p in missing)}", self.data_dir)
        train_engines = split_units(*read_table(self.file("train"), NUM_COLUMNS), self.file("train"))
        test_engines = split_units(*read_table(self.file("test"), NUM_COLUMNS), self.file("test"))
        test_rul = read_table(self.file("RUL"), 1)[0][:, 0]
        if len(test_rul) != len(test_engines):
            raise MalformedDatasetError(
                f"{self.file('RUL')} holds {len(test_rul)} values but {self.file('test')} has {len(test_engines)} engines (one value per engine)"
            )
        if len(train_engines) < 2:
            raise MalformedDatasetError(f"{self.file('train')} has {len(train_engines)} engine; a validation split by engine needs at least 2")
        train_index, val_index = seeded_split(len(train_engines), self.val_fraction, self.seed)
        self.train_units = [int(train_engines[i][0, 0]) for i in train_index]
        self.val_units = [int(train_engines[i][0, 0]) for i in val_index]
        columns = [4 + s for s in self.sensors]  # unit, cycle, 3 settings, then sensor 1 at column 5 (index 5)
        fitted = np.concatenate([train_engines[i] for i in train_index])
        regimes = RegimeClusters(self.num_regimes, self.seed).fit(fitted[:, 2:5]) if self.per_regime else None
        self.regimes = regimes

        def regime_of(engine: np.ndarray) -> np.ndarray:
            return np.zeros(len(engine), dtype=np.int64) if regimes is None else regimes.predict(engine[:, 2:5])

        scaler = MinMaxScaler().fit(fitted[:, columns], regime_of(fitted))
        self.scaler = scaler

        def scaled(engines: list[np.ndarray]) -> list[np.ndarray]:
            return [scaler.transform(engine[:, columns], regime_of(engine)) for engine in engines]

        def windows(engines: list[np.ndarray], rul_at_end: Sequence[float], last_only: bool) -> RULWindows:
            rul = [piecewise_linear_rul(e[:, 1], end, None) for e, end in zip(engines, rul_at_end)]
            units = [int(e[0, 0]) for e in engines]
            return make_windows(scaled(engines), rul, units, self.window_size, last_only, self.max_rul)

        train = [train_engines[i] for i in train_index]
        val = [train_engines[i] for i in val_index]
        self.splits = {
            "train": windows(train, [0.0] * len(train), last_only=False),
            "val": windows(val, [0.0] * len(val), last_only=False),
            "test": windows(test_engines, test_rul.tolist(), last_only=True),
        }

    def setup(self, stage: Optional[str] = None) -> None:
        self._load()

    def dataset(self, split: str) -> RULWindows:
        """The windows of `split` ("train", "val" or "test"), read on first use."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        self._load()
        return self.splits[split]

    def baseline_bank(self, n: int, seed: int = 0) -> Tensor:
        """`(min(n, N), C, T)` training windows drawn with `seed` (the baselines of Expected Grad-CAM)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        train = self.dataset("train")
        picks = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n].tolist()
        return torch.stack([train[i][0] for i in picks])
