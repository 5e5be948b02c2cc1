"""The session check of tests/conftest.py: what a test writes into a git working tree is reported."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lit_xai.cli import build_cli
from tests.clean_tree import new_changes, working_tree_status

ROOT = Path(__file__).resolve().parents[1]


def test_status_sees_new_untracked_and_ignored_files_but_not_caches(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("lightning_logs/\n__pycache__/\n")
    before = working_tree_status(tmp_path)
    assert before == {"?? .gitignore"}
    (tmp_path / "config.yaml").write_text("seed_everything: 0\n")
    (tmp_path / "lightning_logs" / "version_0").mkdir(parents=True)
    (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").write_text("a\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.pyc").write_bytes(b"")
    assert new_changes(before, working_tree_status(tmp_path)) == ["!! lightning_logs/", "?? config.yaml"]


def test_status_outside_a_git_checkout_is_none(tmp_path: Path) -> None:
    assert working_tree_status(tmp_path / "nowhere") is None


def test_run_without_logger_saves_no_config_in_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What wrote the committed config.yaml: a CLI run with `trainer.logger: false` saved its config into
    the current directory (Lightning's default root). Without a logger nothing is saved now, unless
    `trainer.default_root_dir` says where."""
    monkeypatch.chdir(tmp_path)
    args = [
        "validate", "-c", str(ROOT / "configs" / "quickstart.yaml"), "--trainer.logger=false", "--trainer.callbacks=[]",
        "--trainer.limit_val_batches=1", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
    ]
    build_cli(args)
    assert list(tmp_path.iterdir()) == []
    build_cli([*args, f"--trainer.default_root_dir={tmp_path / 'root'}"])
    assert (tmp_path / "root" / "config.yaml").read_text().startswith("# lightning.pytorch==")
