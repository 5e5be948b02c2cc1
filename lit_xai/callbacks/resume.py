"""ExplainerCallback's state in a checkpoint, checked on load and reconciled with the resumed run.

Saved: the probe (`probe_indices`), what it was drawn with (`probe_size`, `probe_seed`, `dataset_size`),
the explainers (`explainers`) and their measured seconds per sample (`speeds`, which plan `max_seconds`).
A resumed run keeps what still applies and re-draws or re-measures the rest, and says which in one
warning, never mixing silently:

* the probe is kept when the validation set has the saved size and `probe_size` is the saved one (a new
  `probe_seed` does not re-draw a saved probe: a resumed run explains the same samples); otherwise it is
  re-drawn from the current `probe_size` and `probe_seed`;
* speeds are kept for the explainers in both runs; new explainers are measured in their first round,
  and the checkpoint's explainers that are no longer configured are dropped.

A state that is not a mapping of those keys, or whose values have the wrong type (a corrupt checkpoint,
or another callback's state under this callback's key), raises a ValueError naming the key.
Checkpoints saved before these keys existed hold `probe_indices` only: the probe is kept when it fits
the validation set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

KEYS = ("probe_indices", "probe_size", "probe_seed", "dataset_size", "explainers", "speeds")


def callback_state(
    probe_indices: Tensor | None, probe_size: int, probe_seed: int, dataset_size: int | None, explainers: Sequence[str], speeds: Mapping[str, float]
) -> dict[str, Any]:
    """What `ExplainerCallback.state_dict` saves (plain Python values)."""
    return {
        "probe_indices": None if probe_indices is None else probe_indices.tolist(),
        "probe_size": probe_size,
        "probe_seed": probe_seed,
        "dataset_size": dataset_size,
        "explainers": list(explainers),
        "speeds": {name: float(value) for name, value in speeds.items()},
    }


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bad_state(key: str, expected: str, value: object, where: str) -> ValueError:
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return ValueError(
        f"the checkpoint's ExplainerCallback state is corrupt or not this callback's: key {key!r} must be {expected}, got {shown}. "
        f"Resume without it (delete {where} from the checkpoint, torch.load / torch.save): the probe is then drawn afresh"
    )


def checked_state(state: object, where: str = "checkpoint['callbacks']['ExplainerCallback']") -> dict[str, Any]:
    """The saved state, checked key by key (see the module docstring); missing keys (older checkpoints) are None.
    `where` names the state's place in the checkpoint, for the error message."""

    def _bad(key: str, expected: str, value: object) -> ValueError:
        return _bad_state(key, expected, value, where)

    if not isinstance(state, Mapping):
        raise _bad("<state>", f"a mapping of {list(KEYS)}", state)
    unknown = [key for key in state if key not in KEYS]
    if unknown:
        raise _bad(str(unknown[0]), f"one of {list(KEYS)} (an ExplainerCallback saves only those)", state[unknown[0]])
    checked = {key: state.get(key) for key in KEYS}
    indices = checked["probe_indices"]
    if indices is not None:
        if not isinstance(indices, (list, tuple)) or not indices or not all(_is_int(i) and i >= 0 for i in indices):
            raise _bad("probe_indices", "None or a non-empty list of sample indices >= 0", indices)
        if len(set(indices)) != len(indices):
            raise _bad("probe_indices", "distinct sample indices", indices)
    for key in ("probe_size", "dataset_size"):
        if checked[key] is not None and not (_is_int(checked[key]) and checked[key] >= 1):
            raise _bad(key, "a positive int", checked[key])
    if checked["probe_seed"] is not None and not _is_int(checked["probe_seed"]):
        raise _bad("probe_seed", "an int", checked["probe_seed"])
    names = checked["explainers"]
    if names is not None and (not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names)):
        raise _bad("explainers", "a list of explainer names", names)
    speeds = checked["speeds"]
    if speeds is not None and (
        not isinstance(speeds, Mapping)
        or not all(isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for k, v in speeds.items())
    ):
        raise _bad("speeds", "a mapping explainer name -> seconds per sample >= 0", speeds)
    return checked


def reconcile(
    saved: Mapping[str, Any], probe_size: int, probe_seed: int, dataset_size: int, explainers: Sequence[str]
) -> tuple[Tensor | None, dict[str, float], str | None]:
    """`(probe indices to keep or None to re-draw, speeds to keep, message or None when all was kept)`."""
    kept: list[str] = []
    redrawn: list[str] = []
    dropped: list[str] = []
    indices = saved["probe_indices"]
    probe: Tensor | None = None
    if indices is not None:
        reasons = []
        if saved["dataset_size"] is not None and saved["dataset_size"] != dataset_size:
            reasons.append(f"the validation set has {dataset_size} samples, the checkpoint's probe was drawn from {saved['dataset_size']}")
        elif max(indices) >= dataset_size:
            reasons.append(f"the checkpoint's probe holds index {max(indices)}, beyond the validation set's {dataset_size} samples")
        if saved["probe_size"] is not None and saved["probe_size"] != probe_size:
            reasons.append(f"probe_size is {probe_size}, the checkpoint's was {saved['probe_size']}")
        if reasons:
            redrawn.append(f"the whole probe, with probe_size={probe_size} and probe_seed={probe_seed}, because {' and '.join(reasons)}")
        else:
            probe = torch.tensor(sorted(indices), dtype=torch.long)
            if saved["probe_seed"] is not None and saved["probe_seed"] != probe_seed:
                kept.append(
                    f"the probe of {len(indices)} samples drawn with probe_seed={saved['probe_seed']} "
                    f"(probe_seed={probe_seed} is not used: a resumed run explains the same samples)"
                )
    speeds = {name: float(value) for name, value in (saved["speeds"] or {}).items() if name in explainers}
    if saved["explainers"] is not None:
        new = [name for name in explainers if name not in saved["explainers"]]
        gone = [name for name in saved["explainers"] if name not in explainers]
        if new or gone:
            if speeds:
                kept.append(f"the measured speeds of {sorted(speeds)}")
            if new:
                redrawn.append(f"the speeds of the new explainers {new}, measured in their first round")
            if gone:
                dropped.append(f"the state of the checkpoint's explainers {gone}, no longer configured")
    if not (kept or redrawn or dropped):
        return probe, speeds, None
    parts = [f"{verb}: {'; '.join(items)}" for verb, items in (("kept", kept), ("re-drawn", redrawn), ("dropped", dropped)) if items]
    return probe, speeds, "ExplainerCallback resumed from a checkpoint saved with other settings. " + ". ".join(parts)
