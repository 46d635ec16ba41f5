"""Comparing methods at three budgets: model calls, reward calls and wall seconds.

Shared by Table 1 and the curves. A "point" is one run summarised as a dict with at least
`method`, `median`, `unique` (share of distinct valid samples) and the budget keys of `BUDGETS`.

    alpha = choose_alpha(sweep_points, min_unique=0.95)
    front = pareto(points, "reward_calls", min_unique=0.95)       # cheapest-to-best, no point dominated
    best = best_within(points, "wall_time_s", limit=12.0, min_unique=0.95)

The α rule: the highest median among the swept α whose uniqueness reaches `min_unique` (the
diversity floor of issue #14's targets); where none does, the most unique one (ties: higher median).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

# budget key -> its name in tables (CPU seconds: the steadier measure of time on a shared machine; with one
# thread and no overlap they are the wall time the run would take on an idle core)
BUDGETS = {"model_calls": "model calls", "reward_calls": "reward calls", "wall_time_s": "wall s",
           "cpu_time_s": "CPU s"}


def min_unique(domain: str) -> float:
    """The uniqueness floor of the targets: 0.99 for molecules, 0.95 otherwise."""
    return 0.99 if domain == "molecules" else 0.95


def _median(p: dict[str, Any]) -> float:
    m = p.get("median")
    return m if m is not None and math.isfinite(m) else -math.inf


def diverse(p: dict[str, Any], floor: float) -> bool:
    """The point's uniqueness reaches `floor` (a point without a uniqueness counts as diverse)."""
    u = p.get("unique")
    return u is None or u >= floor - 1e-12


def choose_alpha(points: Sequence[dict[str, Any]], floor: float) -> tuple[float, str]:
    """(the chosen α, why) among sweep points that each carry `alpha`, `median` and `unique`."""
    if not points:
        raise ValueError("choose_alpha needs at least one sweep point")
    ok = [p for p in points if diverse(p, floor)]
    if ok:
        best = max(ok, key=_median)
        return best["alpha"], f"best median with uniqueness >= {floor:g}"
    best = max(points, key=lambda p: (p.get("unique") or 0.0, _median(p)))
    return best["alpha"], f"no α reached uniqueness {floor:g}: the most unique"


def pareto(points: Iterable[dict[str, Any]], budget: str, floor: float = 0.0) -> list[dict[str, Any]]:
    """The points (uniqueness >= floor) that no other such point beats on median at a budget no larger,
    cheapest first."""
    pts = sorted((p for p in points if diverse(p, floor) and p.get(budget) is not None),
                 key=lambda p: (p[budget], -_median(p)))
    front: list[dict[str, Any]] = []
    for p in pts:
        if not front or _median(p) > _median(front[-1]):
            front.append(p)
    return front


def best_within(points: Iterable[dict[str, Any]], budget: str, limit: float, floor: float = 0.0,
                slack: float = 1.0) -> dict[str, Any] | None:
    """The highest-median point (uniqueness >= floor) whose budget is at most `slack`·limit."""
    pts = [p for p in points if diverse(p, floor) and p.get(budget) is not None and p[budget] <= slack * limit]
    return max(pts, key=_median) if pts else None


def front_text(front: Sequence[dict[str, Any]], budget: str, label: Any) -> str:
    """'A (x) -> B (y) -> ...' with each point's median and budget; `label(point)` names it."""
    def amount(v: float) -> str:
        return f"{v:.3g} s" if budget.endswith("_s") else f"{int(v):,}"

    return " → ".join(f"{label(p)} {p['median']:.3g} at {amount(p[budget])}" for p in front)


def front_notes(points: Sequence[dict[str, Any]], floor: float, label: Any) -> list[str]:
    """One sentence per budget: its Pareto front among the points with uniqueness >= floor."""
    notes = []
    for budget, name in BUDGETS.items():
        front = pareto(points, budget, floor)
        if front:
            notes.append(f"Best median for its {name} (uniqueness ≥ {floor:g}; no cheaper point does better): "
                         + front_text(front, budget, label) + ".")
    return notes
