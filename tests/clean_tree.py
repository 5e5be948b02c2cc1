"""The test session must leave the git working tree as it found it (tests write under tmp_path only)."""

from __future__ import annotations

import subprocess
from pathlib import Path

BUILD_ARTEFACTS = ("__pycache__", ".pytest_cache", ".egg-info")
"""Ignored paths that running Python and pytest create by themselves: not a test's output."""


def working_tree_status(root: Path) -> set[str] | None:
    """`git status --porcelain --ignored` lines of the tree at `root` (untracked, modified and ignored
    paths, without Python's and pytest's own caches); None when `root` is not in a git checkout."""
    try:
        result = subprocess.run(
            ["git", "status", "--porcelain", "--ignored", "--untracked-files=normal"],
            cwd=root, capture_output=True, text=True, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return {line for line in result.stdout.splitlines() if line and not any(part in line for part in BUILD_ARTEFACTS)}


def new_changes(before: set[str], after: set[str]) -> list[str]:
    """Status lines present after the session and not before it."""
    return sorted(after - before)
