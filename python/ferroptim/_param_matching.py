"""Which saved parameter's state goes to which parameter in ``load_state_dict``: by
``param_names`` when the optimizer and the state dict both carry them (a reordered
model loads correctly), else by position, as torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Dict, List, Sequence


@dataclass
class LoadReport:
    """What ``load_state_dict(..., strict=False)`` did not load: parameter names (or
    labels) with no saved state, saved names with no parameter, and parameters whose
    saved state did not fit them (left without state). Empty after a strict load."""

    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.mismatched)


def by_name(groups: Sequence[Dict[str, Any]], saved_groups: Sequence[Dict[str, Any]]) -> bool:
    """Whether every group on both sides names its parameters."""
    return all("param_names" in g for g in chain(groups, saved_groups))


def match(
    groups: Sequence[Dict[str, Any]], saved_groups: Sequence[Dict[str, Any]], strict: bool, report: LoadReport
) -> Dict[Any, Any]:
    """Saved parameter id → parameter. By name if both sides name their parameters,
    else by position (then the group sizes must match, as in torch). ``strict``:
    missing or unexpected names are a ``ValueError``; else they go to ``report``."""
    if len(groups) != len(saved_groups):
        raise ValueError("loaded state dict has a different number of parameter groups")
    if not by_name(groups, saved_groups):
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError(
                "loaded state dict contains a parameter group that doesn't match the size of optimizer's group"
            )
        return dict(
            zip(
                chain.from_iterable(g["params"] for g in saved_groups),
                chain.from_iterable(g["params"] for g in groups),
            )
        )
    ours: Dict[str, Any] = {}
    for g in groups:
        ours.update(zip(g["param_names"], g["params"]))
    saved: Dict[str, Any] = {}
    for s in saved_groups:
        if len(s["param_names"]) != len(s["params"]):
            raise ValueError("loaded state dict has a group whose param_names and params differ in length")
        saved.update(zip(s["param_names"], s["params"]))
    missing = [n for n in ours if n not in saved]
    unexpected = [n for n in saved if n not in ours]
    if strict and (missing or unexpected):
        raise ValueError(
            "loaded state dict does not name the same parameters as the optimizer"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; unexpected: {', '.join(unexpected)}" if unexpected else "")
            + " (load_state_dict(..., strict=False) loads the ones that match)"
        )
    report.missing += missing
    report.unexpected += unexpected
    return {saved[n]: p for n, p in ours.items() if n in saved}
