"""The gloo process group that Lightning creates for a CPU DDP run is destroyed at exit by lit-xai, and a
group the user created is left alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch.distributed as dist

import lit_xai.callbacks.process_group as process_group
from lit_xai.callbacks import ExplainerCallback, ProcessGroupTeardown


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    calls: list[object] = []
    monkeypatch.setattr(process_group, "_registered", False)
    monkeypatch.setattr(process_group.atexit, "register", calls.append)
    return calls


def gloo_group(tmp_path: Path) -> None:
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)


def test_group_created_after_the_callback_is_destroyed_at_exit_once(tmp_path: Path, registered: list[object]) -> None:
    callback, teardown = ExplainerCallback(), ProcessGroupTeardown()  # built before the group, as Lightning runs go
    assert not process_group.destroy_gloo_group_at_exit(existed_before=False)  # no group yet: nothing to register
    gloo_group(tmp_path)
    try:
        assert process_group.destroy_gloo_group_at_exit(callback._group_existed)
        teardown.setup(None, None, "validate")  # type: ignore[arg-type]
        assert registered == [process_group._destroy_dist_connection]  # once per process
        registered[0]()  # what runs at exit
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_group_the_user_created_is_left_alone(tmp_path: Path, registered: list[object]) -> None:
    gloo_group(tmp_path)
    try:
        callback, teardown = ExplainerCallback(), ProcessGroupTeardown()
        assert callback._group_existed and teardown.group_existed
        assert not process_group.destroy_gloo_group_at_exit(callback._group_existed)
        teardown.setup(None, None, "validate")  # type: ignore[arg-type]
        assert registered == []
    finally:
        dist.destroy_process_group()
