"""CMAPSSDataModule on fixtures in NASA's exact format: parsing, errors, preprocessing, and parity with
rul-datasets' CmapssReader on the same files."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from lit_xai.datamodules import CMAPSSDataModule, DatasetNotFoundError, MalformedDatasetError
from tests.cmapss_fixtures import write_cmapss
from tests.dataset_fixtures import one_torch_thread  # noqa: F401  (autouse)


def rul_datasets_reader(root: Path, monkeypatch: pytest.MonkeyPatch, fd: int, module: CMAPSSDataModule, source: Path, **kwargs: object):
    """rul-datasets' CmapssReader over the same files, with its dev / val split made equal to the module's
    engine split (its prepare_data keeps an existing dev_/val_ split and fits its scaler on dev)."""
    from rul_datasets.reader import CmapssReader

    root.mkdir()
    name = module.subset
    rows = np.loadtxt(source / f"train_{name}.txt")
    for split, units in (("dev", module.train_units), ("val", module.val_units)):
        np.savetxt(root / f"{split}_{name}.txt", rows[np.isin(rows[:, 0], units)], fmt="%.4f")
    for kind in ("test", "RUL"):
        (root / f"{kind}_{name}.txt").write_text((source / f"{kind}_{name}.txt").read_text())
    monkeypatch.setattr(CmapssReader, "_CMAPSS_ROOT", str(root))
    reader = CmapssReader(fd, window_size=module.window_size, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rul-datasets warns when it pads the short test engine
        reader.prepare_data()
    return reader


def load(reader, split: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return reader.load_split(split)


@pytest.mark.parametrize(("subset", "fd"), [("FD001", 1), ("FD002", 2)])
def test_parity_with_rul_datasets(subset: str, fd: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_cmapss(tmp_path / "data", subset, train_units=8, test_units=4, crlf=subset == "FD001")
    module = CMAPSSDataModule(data, subset, val_fraction=0.25, seed=3)
    module.setup("fit")
    assert module.per_regime == (subset == "FD002") and module.window_size == {"FD001": 30, "FD002": 20}[subset]
    capped = rul_datasets_reader(tmp_path / "rd", monkeypatch, fd, module, data, operation_condition_aware_scaling=module.per_regime)
    for ours_split, their_split in (("train", "dev"), ("val", "val"), ("test", "test")):
        ours = module.dataset(ours_split)
        features, targets = load(capped, their_split)
        # window counts, engine by engine
        counts = [int((ours.units == unit).sum()) for unit in ours.units.unique_consecutive()]
        assert counts == [len(f) for f in features], ours_split
        # features: rul-datasets' windows are (N, T, C); ours (N, C, T)
        theirs = torch.as_tensor(np.concatenate(features), dtype=torch.float32).transpose(1, 2)
        assert (ours.inputs() - theirs).abs().max() < 1e-5, ours_split
        if ours_split == "test":
            assert torch.equal(ours.targets, torch.as_tensor(np.concatenate(targets), dtype=torch.float32))
    # training targets: rul-datasets counts the failure cycle as RUL 1, we as 0 (cycles to failure)
    uncapped = capped.get_compatible()
    uncapped.max_rul = None
    for ours_split, their_split in (("train", "dev"), ("test", "test")):
        their = torch.as_tensor(np.concatenate(load(uncapped, their_split)[1]), dtype=torch.float32)
        shift = 1.0 if ours_split == "train" else 0.0
        assert torch.equal(module.dataset(ours_split).rul_uncapped, their - shift)
        assert torch.equal(module.dataset(ours_split).targets, (their - shift).clamp(max=125))
    assert (module.dataset("test").rul_uncapped > 0).all()


def test_preprocessing_by_hand(tmp_path: Path) -> None:
    data = write_cmapss(tmp_path, train_units=6, test_units=3, short_test_cycles=12)
    module = CMAPSSDataModule(data, "FD001", window_size=30, max_rul=50, sensors=[2, 5, 11], val_fraction=0.34, seed=1)
    rows = np.loadtxt(data / "train_FD001.txt")
    train, val, test = (module.dataset(s) for s in ("train", "val", "test"))
    assert module.input_shape == (3, 30) and module.sensor_names == ["s2 T24", "s5 P2", "s11 Ps30"]
    # engines split by unit, seeded: disjoint, complete, reproducible, and different for another seed
    assert sorted(module.train_units + module.val_units) == list(range(1, 7)) and len(module.val_units) == 2
    assert set(train.units.tolist()) == set(module.train_units) and set(val.units.tolist()) == set(module.val_units)
    again = CMAPSSDataModule(data, "FD001", val_fraction=0.34, seed=1)
    again.setup()
    other = CMAPSSDataModule(data, "FD001", val_fraction=0.34, seed=2)
    other.setup()
    assert again.val_units == module.val_units and other.val_units != module.val_units
    # min-max to [-1, 1] over the training engines only; sensor 5 is constant -> -1 (range taken as 1)
    fitted = rows[np.isin(rows[:, 0], module.train_units)][:, [6, 9, 15]]
    low, high = fitted.min(0), fitted.max(0)
    span = np.where(high > low, high - low, 1.0)
    unit = module.train_units[0]
    engine = rows[rows[:, 0] == unit]
    expected = torch.as_tensor(-1 + 2 * (engine[:, [6, 9, 15]] - low) / span, dtype=torch.float32)
    windows = train.inputs()[train.units == unit]
    assert len(windows) == len(engine) - 29
    assert torch.allclose(windows[0], expected[:30].T, atol=1e-6) and torch.allclose(windows[-1], expected[-30:].T, atol=1e-6)
    assert torch.all(train.inputs()[:, 1] == -1)
    everything = train.inputs()
    assert torch.allclose(everything.amin((0, 2)), torch.tensor([-1.0, -1.0, -1.0])) and torch.allclose(everything.amax((0, 2))[[0, 2]], torch.ones(2))
    # piecewise-linear target: min(50, last cycle - cycle of the window's last row)
    ends = np.arange(29, len(engine))
    assert torch.equal(train.targets[train.units == unit], torch.as_tensor(np.minimum(50, len(engine) - 1 - ends), dtype=torch.float32))
    # test: one window per engine, the short one front-padded with zeros; targets from RUL_FD001 capped at 50
    truth = np.loadtxt(data / "RUL_FD001.txt")
    assert len(test) == 3 and torch.equal(test.rul_uncapped, torch.as_tensor(truth, dtype=torch.float32))
    assert torch.equal(test.targets, torch.as_tensor(np.minimum(truth, 50), dtype=torch.float32))
    test_rows = np.loadtxt(data / "test_FD001.txt")
    short = test_rows[test_rows[:, 0] == 3][:, [6, 9, 15]]
    window = test.inputs()[2]
    assert torch.all(window[:, :18] == 0)
    assert torch.allclose(window[:, 18:], torch.as_tensor(-1 + 2 * (short - low) / span, dtype=torch.float32).T, atol=1e-6)
    # batches (inputs (B, C, T), rul (B,)) and a seeded bank of training windows
    inputs, rul = next(iter(module.train_dataloader()))
    assert inputs.shape == (min(256, len(train)), 3, 30) and rul.shape == (inputs.shape[0],) and rul.dtype == torch.float32
    bank = module.baseline_bank(5, seed=4)
    assert bank.shape == (5, 3, 30) and torch.equal(bank, module.baseline_bank(5, seed=4))
    assert all(any(torch.equal(b, w) for w in everything) for b in bank)


def test_uncapped_target_and_regime_option(tmp_path: Path) -> None:
    data = write_cmapss(tmp_path, "FD003", train_units=4, test_units=2)
    module = CMAPSSDataModule(data, "FD003", max_rul=None, val_fraction=0.25)
    train = module.dataset("train")
    for unit in module.train_units:
        cycles = int((np.loadtxt(data / "train_FD003.txt")[:, 0] == unit).sum())
        assert train.targets[train.units == unit].tolist() == list(range(cycles - 30, -1, -1))
    assert not module.per_regime


def test_malformed_rows_name_file_and_line(tmp_path: Path) -> None:
    data = write_cmapss(tmp_path, train_units=3, test_units=2)
    path = data / "train_FD001.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:6] + [" ".join(lines[6].split()[:25])] + lines[7:]) + "\n")
    with pytest.raises(MalformedDatasetError, match=r"train_FD001\.txt, line 7: expected 26 whitespace-separated numbers, found 25"):
        CMAPSSDataModule(data).setup()
    path.write_text("\n".join(lines[:3] + [lines[3].replace(lines[3].split()[8], "n/a", 1)] + lines[4:]) + "\n")
    with pytest.raises(MalformedDatasetError, match=r"train_FD001\.txt, line 4: not a number"):
        CMAPSSDataModule(data).setup()
    path.write_text("\n".join(lines) + "\n")
    (data / "RUL_FD001.txt").write_text("12\n")
    with pytest.raises(MalformedDatasetError, match="holds 1 values but .* has 2 engines"):
        CMAPSSDataModule(data).setup()


def test_missing_files_say_where_what_and_from_where(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as error:
        CMAPSSDataModule(tmp_path / "nowhere", "FD004").setup()
    message = str(error.value)
    assert "missing train_FD004.txt, test_FD004.txt, RUL_FD004.txt" in message and str(tmp_path / "nowhere") in message
    assert "26 whitespace-separated numbers" in message and "phm-datasets.s3.amazonaws.com" in message and "download=True" in message


def test_download_offline_and_online(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    module = CMAPSSDataModule(tmp_path / "cmapss", download=True)
    with pytest.raises(DatasetNotFoundError) as error:
        module.prepare_data()
    assert "downloading C-MAPSS from https://phm-datasets" in str(error.value) and "name resolution" in str(error.value)
    assert "expected layout" in str(error.value) and error.value.__cause__ is None and error.value.__suppress_context__

    # online: NASA's archive holds CMAPSSData.zip, which holds the text files
    source = write_cmapss(tmp_path / "source", train_units=3, test_units=2)
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        for file in sorted(source.iterdir()):
            archive.write(file, file.name)
        archive.writestr("readme.txt", "C-MAPSS")
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as archive:
        archive.writestr("6. Turbofan Engine Degradation Simulation Data Set/CMAPSSData.zip", inner.getvalue())

    class Response(io.BytesIO):
        def __enter__(self) -> Response:
            return self

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Response(outer.getvalue()))
    module = CMAPSSDataModule(tmp_path / "cmapss", download=True, val_fraction=0.34)
    module.setup()  # without a Trainer, setup downloads what prepare_data would have
    assert sorted(p.name for p in (tmp_path / "cmapss").iterdir()) == ["RUL_FD001.txt", "test_FD001.txt", "train_FD001.txt"]
    assert len(module.dataset("test")) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"subset": "FD005"}, "subset must be one of"),
        ({"sensors": [0, 2]}, "sensor numbers in 1..21"),
        ({"sensors": [2, 2]}, "distinct"),
        ({"window_size": 0}, "window_size"),
        ({"val_fraction": 0.0}, "val_fraction"),
        ({"max_rul": 0}, "max_rul"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=message):
        CMAPSSDataModule(tmp_path, **kwargs)


def test_unit_rows_must_be_consecutive_with_increasing_cycles(tmp_path: Path) -> None:
    data = write_cmapss(tmp_path, train_units=3, test_units=2)
    path = data / "test_FD001.txt"
    lines = path.read_text().splitlines()
    first_of_2 = next(i for i, line in enumerate(lines) if line.split()[0] == "2")
    moved = lines[:first_of_2] + [""] + lines[first_of_2:] + [lines[0]]  # a blank line, then unit 1 again at the end
    path.write_text("\n".join(moved) + "\n")
    with pytest.raises(MalformedDatasetError, match=rf"test_FD001\.txt, line {len(moved)}: unit 1 appears again after other units"):
        CMAPSSDataModule(data).setup()
    repeated = lines[:3] + [lines[1]] + lines[3:]  # cycle 2 after cycle 3
    path.write_text("\n".join(repeated) + "\n")
    with pytest.raises(MalformedDatasetError, match=r"test_FD001\.txt, line 4: cycles of unit 1 must increase"):
        CMAPSSDataModule(data).setup()
    half = lines[:2] + [lines[2].replace(lines[2].split()[1], "3.5", 1)] + lines[3:]
    path.write_text("\n".join(half) + "\n")
    with pytest.raises(MalformedDatasetError, match=r"test_FD001\.txt, line 3: unit and cycle must be whole numbers"):
        CMAPSSDataModule(data).setup()
