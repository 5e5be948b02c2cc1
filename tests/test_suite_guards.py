"""The suite's own rules (tests/conftest.py): process-spawning tests are grouped for the parallel run, and
models trained for several files are trained once per run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from tests.shapes_helpers import SHARED_FOLDER, trained_once

REAL_START_PROCESSES = mp.start_processes


def test_an_unmarked_test_cannot_spawn_processes() -> None:
    with pytest.raises(RuntimeError, match=r"spawns processes \(DDP\) but has no @pytest.mark.xdist_group\('ddp'\)"):
        mp.start_processes(print, nprocs=2)


@pytest.mark.xdist_group("ddp")
def test_a_marked_test_gets_the_real_launcher() -> None:
    assert mp.start_processes is REAL_START_PROCESSES


def test_a_model_is_trained_once_per_run_and_loaded_bit_for_bit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert os.environ[SHARED_FOLDER]  # set for the whole run by the session fixture
    monkeypatch.setenv(SHARED_FOLDER, str(tmp_path / "shared"))
    trained = []

    def build() -> nn.Module:
        torch.manual_seed(0)
        return nn.Linear(3, 2)

    def train(model: nn.Module) -> float:
        trained.append(1)
        with torch.no_grad():
            model.weight.add_(0.25)
        return 0.75

    first, accuracy = trained_once("linear", build, train)
    second, again = trained_once("linear", build, train)
    assert trained == [1] and accuracy == again == 0.75
    assert torch.equal(first.weight, second.weight) and torch.equal(first.bias, second.bias)
    assert (tmp_path / "shared" / "linear.pt").exists()
    monkeypatch.delenv(SHARED_FOLDER)
    _, alone = trained_once("linear", build, train)  # outside a pytest run: trained, nothing saved
    assert trained == [1, 1] and alone == 0.75
