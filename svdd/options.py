"""Checking a method's options before any sampling: names, types and ranges, one clear error each.

`check_options(method, options, alpha, num_steps)` returns the options with their values
normalised (a float for a numeric option given as an int or a numpy scalar), or raises a
ValueError/TypeError naming the option, the value given and what is accepted. `svdd.sample`
and `svdd generate` call it before anything is sampled or written.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any

from .selection import RESAMPLING_METHODS


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number; got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value!r}")
    return value


def _fraction(low_open: bool) -> Callable[[str, Any, int], float]:
    def check(name: str, value: Any, num_steps: int) -> float:
        v = _number(name, value)
        ok = (0.0 < v < 1.0) if low_open else (0.0 <= v < 1.0)
        if not ok:
            interval = "(0, 1)" if low_open else "[0, 1)"
            raise ValueError(f"{name} must be in {interval} (the fraction of the batch replaced per step); got {value!r}")
        return v
    return check


def _ess_threshold(name: str, value: Any, num_steps: int) -> float | None:
    if value is None:
        return None
    v = _number(name, value)
    if not 0.0 < v <= 1.0:
        raise ValueError(f"{name} must be in (0, 1] or None (resample at every step); got {value!r}")
    return v


def _resampling(name: str, value: Any, num_steps: int) -> str:
    if value not in RESAMPLING_METHODS:
        raise ValueError(f"{name} must be one of {', '.join(RESAMPLING_METHODS)}; got {value!r}")
    return value


def _guidance_scale(name: str, value: Any, num_steps: int) -> float:
    return _number(name, value)


def _select_steps(name: str, value: Any, num_steps: int) -> Any:
    """None, a period e >= 1 (an int), or a collection of step indices 0..K-1 (ints)."""
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"{name} as an int is a period and must be >= 1; got {value!r}")
        return int(value)
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be None, a period (int >= 1) or a collection of step indices; got {value!r}")
    steps = list(value)
    bad = [k for k in steps if isinstance(k, bool) or not isinstance(k, numbers.Integral)]
    if bad:
        raise TypeError(f"{name} must hold integer step indices; got {bad[0]!r} in {value!r}")
    outside = sorted(int(k) for k in steps if not 0 <= int(k) < num_steps)
    if outside:
        raise ValueError(f"{name} {outside} are outside the {num_steps} steps (indices 0..{num_steps - 1})")
    return [int(k) for k in steps]


CHECKS: dict[str, Callable[[str, Any, int], Any]] = {
    "resample_fraction": _fraction(low_open=False),
    "ess_threshold": _ess_threshold,
    "resampling": _resampling,
    "guidance_scale": _guidance_scale,
    "select_steps": _select_steps,
}

# Checks that differ by method: svdd_r needs a fraction above 0.
METHOD_CHECKS: dict[tuple[str, str], Callable[[str, Any, int], Any]] = {
    ("svdd_r", "resample_fraction"): _fraction(low_open=True),
}


def accepted_options(method_fn: Callable) -> list[str]:
    """The keyword options a sampling method takes beyond the common signature."""
    common = {"calls", "num_samples", "num_candidates", "alpha", "generator"}
    params = inspect.signature(method_fn).parameters.values()
    return [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in common]


def check_options(method: str, method_fn: Callable, options: dict[str, Any], num_steps: int) -> dict[str, Any]:
    """`options` checked for `method` (see the module docstring); returns them normalised."""
    accepted = accepted_options(method_fn)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        takes = ", ".join(accepted) if accepted else "no options"
        raise TypeError(f"unknown option(s) for method {method!r}: {', '.join(unknown)}; it takes {takes}")
    checked = {}
    for name, value in options.items():
        check = METHOD_CHECKS.get((method, name)) or CHECKS.get(name)
        checked[name] = check(name, value, num_steps) if check is not None else value
    return checked
