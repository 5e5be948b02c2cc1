"""Which LRP rule each Conv/Linear layer gets: composites by layer type and position, overrides by name.

The composites are zennit's (0.5), by the same matching: layers are visited in registration order
(`model.named_modules()`), "first" is the first layer of the named kind in that order.

| composite | first layer | other Conv1d/Conv2d | Linear |
| --- | --- | --- | --- |
| `epsilon_plus` | - | `z_plus` | `epsilon` |
| `epsilon_plus_flat` | first Conv or Linear: `flat` | `z_plus` | `epsilon` |
| `epsilon_gamma_box` | first Conv: `z_box` | `gamma` | `epsilon` |
| `epsilon_alpha2_beta1` | - | `alpha_beta` | `epsilon` |
| `epsilon_alpha2_beta1_flat` | first Conv or Linear: `flat` | `alpha_beta` | `epsilon` |

A rule name used as the composite (`"zero"`, `"epsilon"`, ...) gives that rule to every layer.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from torch import nn

from lit_xai.explainers.lrp.rules import RULES

CONVS = (nn.Conv1d, nn.Conv2d)
AFFINE = (nn.Conv1d, nn.Conv2d, nn.Linear)
COMPOSITES = ("epsilon_plus", "epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1", "epsilon_alpha2_beta1_flat")

_CONV_RULE = {
    "epsilon_plus": "z_plus",
    "epsilon_plus_flat": "z_plus",
    "epsilon_gamma_box": "gamma",
    "epsilon_alpha2_beta1": "alpha_beta",
    "epsilon_alpha2_beta1_flat": "alpha_beta",
}
_FIRST = {
    "epsilon_plus_flat": (AFFINE, "flat"),
    "epsilon_gamma_box": (CONVS, "z_box"),
    "epsilon_alpha2_beta1_flat": (AFFINE, "flat"),
}


def check_composite(composite: str) -> str:
    if composite not in COMPOSITES and composite not in RULES:
        raise ValueError(f"composite must be one of {COMPOSITES} or a rule name {RULES} (that rule everywhere), got {composite!r}")
    return composite


def check_rule_overrides(rules: Mapping[str, str] | None) -> dict[str, str]:
    if rules is None:
        return {}
    if not isinstance(rules, Mapping):
        raise ValueError(f"rules must be a mapping from layer name to rule name, e.g. {{'features.0': 'z_box'}}, got {rules!r}")
    for name, rule in rules.items():
        if not isinstance(name, str) or rule not in RULES:
            raise ValueError(f"rules maps layer names to one of {RULES}; got {name!r}: {rule!r}")
    return dict(rules)


def assign_rules(model: nn.Module, composite: str, overrides: Mapping[str, str]) -> dict[str, str]:
    """Rule name for every Conv1d/Conv2d/Linear module of `model`, keyed by its dotted name."""
    assigned: dict[str, str] = {}
    first = _FIRST.get(composite)
    for name, module in model.named_modules():
        if not isinstance(module, AFFINE):
            continue
        if composite in RULES:
            rule = composite
        elif first is not None and isinstance(module, first[0]):
            rule, first = first[1], None
        else:
            rule = _CONV_RULE[composite] if isinstance(module, CONVS) else "epsilon"
        assigned[name] = rule
    for name, rule in overrides.items():
        if name not in assigned:
            close = difflib.get_close_matches(name, list(assigned), n=5, cutoff=0.4)
            hint = f"close matches: {', '.join(close)}" if close else f"its Conv/Linear layers are {', '.join(list(assigned)[:8])}"
            raise ValueError(f"rules names {name!r}, which is not a Conv1d/Conv2d/Linear layer of {type(model).__name__}; {hint}")
        assigned[name] = rule
    return assigned
