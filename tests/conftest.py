"""Shared tiny models for the tests, and the session check that the tests leave the working tree clean."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn


def pytest_configure(config: pytest.Config) -> None:
    """In a pytest-xdist worker (`make test`), torch runs `LIT_XAI_TEST_THREADS` intra-op threads (default 1):
    the workers already fill the cores, and more threads per worker made the suite slower (docs/benchmarks.md)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(int(os.environ.get("LIT_XAI_TEST_THREADS", "1")))


class HandModel(nn.Module):
    """conv1 (1x1, 1 -> 2 channels: A0 = x, A1 = 0.5 - x) -> ReLU -> conv2 (1x1, 2 -> 2 classes) -> mean.

    Built for the hand computation of Grad-CAM in test_gradcam.py; `spatial_dims` 2 (images) or 1 (series).
    """

    def __init__(self, spatial_dims: int = 2) -> None:
        super().__init__()
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv1d
        self.conv1 = conv(1, 2, 1)
        self.relu = nn.ReLU()
        self.conv2 = conv(2, 2, 1, bias=False)
        with torch.no_grad():
            self.conv1.weight.copy_(torch.tensor([1.0, -1.0]).view(self.conv1.weight.shape))
            self.conv1.bias.copy_(torch.tensor([0.0, 0.5]))
            self.conv2.weight.copy_(torch.tensor([[1.0, 2.0], [-1.0, 1.0]]).view(self.conv2.weight.shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.relu(self.conv1(x))).flatten(2).mean(dim=2)


@pytest.fixture
def hand_model() -> HandModel:
    return HandModel().eval()


class SmallNet(nn.Module):
    """A small CNN with BatchNorm and Dropout (state that an explainer must not disturb)."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(8, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@pytest.fixture
def small_net() -> SmallNet:
    torch.manual_seed(0)
    return SmallNet()


@pytest.fixture(scope="session", autouse=True)
def shared_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One temporary folder per pytest run, shared by its xdist workers (the parent of each worker's own
    base folder): models trained for several test files are trained once and saved there
    (`tests.shapes_helpers.trained_once`)."""
    from tests.shapes_helpers import SHARED_FOLDER

    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared"
    previous = os.environ.get(SHARED_FOLDER)
    os.environ[SHARED_FOLDER] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop(SHARED_FOLDER, None)
    else:
        os.environ[SHARED_FOLDER] = previous


DDP_GROUP = "ddp"
# The DDP tests run Lightning's `ddp_fork` (gloo, CPU): forked ranks inherit the imported modules, where each
# `ddp_spawn` rank re-imports torch, Lightning and the test module (about 6 s of CPU per rank; a two-process
# callback test took 13 s spawned and 0.5 s forked). Two tests keep `ddp_spawn`, the path whose pickling and
# shared-memory states they check: test_metric_state_spawn.py and test_ddp.py's CLI run.


@pytest.fixture(autouse=True)
def spawning_tests_are_grouped(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that starts processes (Lightning's ddp_fork / ddp_spawn call `torch.multiprocessing.start_processes`)
    must carry `@pytest.mark.xdist_group("ddp")`, so that `make test` (-n auto --dist loadgroup) runs such
    tests one at a time on one worker; without the mark it fails here, saying so."""
    marks = [mark.args[0] if mark.args else mark.kwargs.get("name") for mark in request.node.iter_markers("xdist_group")]
    if DDP_GROUP in marks:
        return
    import torch.multiprocessing as mp

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError(
            f"{request.node.nodeid} spawns processes (DDP) but has no @pytest.mark.xdist_group({DDP_GROUP!r}); add the mark so "
            "that the parallel suite (make test) runs it on the worker that runs the other DDP tests, one at a time"
        )

    monkeypatch.setattr(mp, "start_processes", refuse)


@pytest.fixture(scope="session", autouse=True)
def working_tree_stays_clean(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the session if the tests wrote into the repository (a saved config.yaml, lightning_logs/, ...):
    `git status` must read the same after the tests as before. Skipped outside a git checkout."""
    from tests.clean_tree import new_changes, working_tree_status

    root = Path(request.config.rootpath)
    before = working_tree_status(root)
    yield
    if before is None:
        return
    after = working_tree_status(root)
    changes = new_changes(before, after or set())
    if changes:
        pytest.fail("the tests wrote into the working tree (write under tmp_path instead):\n" + "\n".join(changes), pytrace=False)
