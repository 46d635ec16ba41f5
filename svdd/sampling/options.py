"""Checking a method's options before any sampling: names, types and ranges, one clear error each.

`check_options(method, method_fn, options, num_steps, num_samples=..., num_candidates=...)` returns
the options with their values normalised (a float for a numeric option given as an int or a numpy
scalar, a tuple for a window given as a list), or raises a ValueError/TypeError naming the option,
the value given and what is accepted. Checks that involve N or M (`groups` divides N, a beam wide
enough for N samples, `initial` with N rows) run when those are given. `svdd.sample` and
`svdd generate` call it before anything is sampled or written.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any

import torch

from .fk import POTENTIALS
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
            raise ValueError(
                f"{name} must be in {interval} (the fraction of the batch replaced per step); got {value!r}"
            )
        return v

    return check


def _ess_threshold(name: str, value: Any, num_steps: int) -> float | None:
    if value is None:
        return None
    v = _number(name, value)
    if not 0.0 < v <= 1.0:
        raise ValueError(f"{name} must be in (0, 1] or None (resample at every step); got {value!r}")
    return v


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


def _whole(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {low}; got {value!r} ({type(value).__name__})")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
    return int(value)


def _at_least(low: int, optional: bool = False) -> Callable[[str, Any, int], int | None]:
    def check(name: str, value: Any, num_steps: int) -> int | None:
        if optional and value is None:
            return None
        return _whole(name, value, low)

    return check


def _flag(name: str, value: Any, num_steps: int) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False; got {value!r} ({type(value).__name__})")
    return value


def _one_of(choices: tuple[str, ...]) -> Callable[[str, Any, int], str]:
    def check(name: str, value: Any, num_steps: int) -> str:
        if value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
        return value

    return check


def _window(name: str, value: Any, num_steps: int) -> tuple[int, int] | None:
    """None, or (first, last) step indices with 0 <= first <= last <= K-1 (a list is accepted)."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise TypeError(f"{name} must be None or a pair (first, last) of step indices; got {value!r}")
    first, last = (_whole(f"{name}[{i}]", v, 0) for i, v in enumerate(value))
    if not first <= last <= num_steps - 1:
        raise ValueError(
            f"{name} must satisfy 0 <= first <= last <= {num_steps - 1} (the {num_steps} steps); got {value!r}"
        )
    return first, last


def _renoise(name: str, value: Any, num_steps: int) -> float:
    v = _number(name, value)
    if not 0.0 < v <= 1.0:
        raise ValueError(
            f"{name} must be in (0, 1] (the noise level to go back to: the fraction of the chain); got {value!r}"
        )
    return v


def _states(name: str, value: Any, num_steps: int) -> torch.Tensor | None:
    if value is not None and not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be None or a tensor of clean states [N, ...]; got {type(value).__name__}")
    return value


def _radius(name: str, value: Any, num_steps: int) -> float:
    v = _number(name, value)
    if v <= 0:
        raise ValueError(f"{name} must be > 0 (how far a neighbour's noise moves from the pivot); got {value!r}")
    return v


CHECKS: dict[str, Callable[[str, Any, int], Any]] = {
    "groups": _at_least(1),
    "select_start": _flag,
    "potential": _one_of(POTENTIALS),
    "resample_every": _at_least(1),
    "resample_window": _window,
    "num_x0_samples": _at_least(1, optional=True),
    "return_all": _flag,
    "beam_width": _at_least(1, optional=True),
    "iterations": _at_least(0),
    "renoise": _renoise,
    "initial": _states,
    "resample_fraction": _fraction(low_open=False),
    "ess_threshold": _ess_threshold,
    "resampling": _one_of(RESAMPLING_METHODS),
    "guidance_scale": _guidance_scale,
    "select_steps": _select_steps,
    "radius": _radius,
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


def check_options(
    method: str,
    method_fn: Callable,
    options: dict[str, Any],
    num_steps: int,
    *,
    num_samples: int | None = None,
    num_candidates: int | None = None,
) -> dict[str, Any]:
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
    if num_samples is not None and num_candidates is not None:
        _check_with_sizes(checked, num_samples, num_candidates)
    return checked


def _check_with_sizes(options: dict[str, Any], n: int, m: int) -> None:
    """The checks that need N = num_samples and M = num_candidates."""
    groups = options.get("groups")
    if groups is not None and n % groups:
        raise ValueError(
            f"groups must divide num_samples (each group returns num_samples/groups samples); "
            f"got groups={groups} for num_samples={n}"
        )
    width = options.get("beam_width")
    if width is not None and width * m < n:
        raise ValueError(
            f"beam_width·num_candidates must be >= num_samples (the last step returns num_samples of "
            f"its beam_width·num_candidates children); got {width}·{m} < {n}"
        )
    initial = options.get("initial")
    if initial is not None and (initial.dim() == 0 or initial.shape[0] != n):
        raise ValueError(f"initial must hold num_samples = {n} clean states on dim 0; got shape {tuple(initial.shape)}")
