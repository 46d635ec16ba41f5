"""The sampling methods the benchmark tables compare, by the names the tables use.

    res = run_method(task, "svdd_mc", num_samples=64, num_candidates=10, seed=0)

Each method is one `Method`: its label, how it calls `svdd.sample` on a `benchmarks.tasks.Task`
(which value, which extra options), which α grid its sweep tries, and how many candidates it runs
with for a budget of M (so that every method makes about N·M·K model calls). A new method is one
more entry of `METHODS`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import svdd

from .tasks import Task, TaskSpec

# refine: an SVDD pass at M/2, then ITERATIONS re-noisings of RENOISE of the chain, each denoised again at
# M/2: N·(M/2)·K·(1 + ITERATIONS·RENOISE) = N·M·K model calls, the budget of SVDD-PM at M
REFINE_ITERATIONS, REFINE_RENOISE = 2, 0.5
# zero-order noise search: ZERO_ORDER_ITERATIONS rounds of (M-1)//ZERO_ORDER_ITERATIONS neighbours after the pivot's
# generation: (1 + I·M')·N·K <= N·M·K model calls
ZERO_ORDER_ITERATIONS = 3


@dataclass(frozen=True)
class Method:
    """label: the name in tables; sampler: `svdd.sample(method=...)`; extra: `task -> keyword
    arguments` the method adds (a value network, ...); unavailable: `TaskSpec -> why the method
    cannot run on such a task, or None`; alphas: which α grid its sweep tries ("none": α unused,
    "select": α ≥ 0, 0 = argmax; "tilt": α > 0, the target's temperature); candidates: the M it
    runs with for a budget of M candidates (equal model calls); budget: how it spends that budget,
    for the tables."""

    label: str
    sampler: str
    extra: Callable[[Task], dict[str, Any]] = field(default=lambda task: {})
    unavailable: Callable[[TaskSpec], str | None] = field(default=lambda spec: None)
    alphas: str = "none"
    candidates: Callable[[int], int] = field(default=lambda m: m)
    budget: str = ""


def _continuous_only(spec: TaskSpec) -> str | None:
    return None if spec.domain == "images" else "noise search perturbs the initial noise of a continuous process"


def _smc_value(task: Task) -> dict[str, Any]:
    return {"value": task.value if task.spec.smc_mc_value else None}


METHODS: dict[str, Method] = {
    "pretrained": Method("Pretrained", "pretrained", budget="N samples (N·K model calls)"),
    "best_of_n": Method("Best-of-N", "best_of_n", budget="N·M samples, top N by reward"),
    "dps": Method("DPS", "dps", unavailable=lambda spec: spec.dps_unavailable, budget="N·K model calls with gradients"),
    "smc": Method("SMC", "smc", _smc_value, alphas="tilt", budget="N·M particles, one population"),
    "fk": Method("FK", "fk", alphas="tilt", budget="N groups of M particles, potential diff, every step"),
    "svdd_mc": Method("SVDD-MC", "svdd", lambda task: {"value": task.value}, alphas="select",
                      budget="N·K model calls + N·M·K value-network calls"),
    "svdd_pm": Method("SVDD-PM", "svdd", alphas="select", budget="M children per sample and step"),
    "svdd_r": Method("SVDD-R", "svdd_r", alphas="select", budget="as SVDD-PM, + resampling of the worst fraction"),
    "beam": Method("Beam", "beam", alphas="select", budget="global active set of N, M children each"),
    "refine": Method("Refine", "refine", lambda task: {"iterations": REFINE_ITERATIONS, "renoise": REFINE_RENOISE},
                     alphas="select", candidates=lambda m: max(1, m // 2),
                     budget=f"SVDD-PM at M/2, then {REFINE_ITERATIONS} re-noisings to {REFINE_RENOISE:g} of the chain"),
    "random_search": Method("Random search", "random_search", unavailable=_continuous_only,
                            budget="best of M initial noises per sample (Ma et al. 2025)"),
    "zero_order": Method("Zero-order search", "zero_order", lambda task: {"iterations": ZERO_ORDER_ITERATIONS},
                         unavailable=_continuous_only,
                         candidates=lambda m: max(1, (m - 1) // ZERO_ORDER_ITERATIONS),
                         budget=f"pivot + {ZERO_ORDER_ITERATIONS} rounds of (M-1)/{ZERO_ORDER_ITERATIONS} neighbours"),
    # sparse variants for the reward-call budget (curves only)
    "svdd_pm_every4": Method("SVDD-PM every 4th step", "svdd", lambda task: {"select_steps": 4}, alphas="select",
                             budget="SVDD-PM selecting at every 4th step, pretrained steps between"),
    "fk_every4": Method("FK every 4th step", "fk", lambda task: {"resample_every": 4}, alphas="tilt",
                        budget="FK scoring and resampling at every 4th step"),
}


def alpha_grid(method: str, spec: TaskSpec) -> list[float]:
    """The α values the sweep tries for `method` on a task: three values each, scaled by the task's
    reward scale a = `spec.smc_alpha` ("select": 0, a/10, a; "tilt": a/10, a, 10a; "none": no sweep)."""
    a = spec.smc_alpha
    return {"none": [], "select": [0.0, a / 10, a], "tilt": [a / 10, a, 10 * a]}[METHODS[method].alphas]


def default_alpha(method: str, spec: TaskSpec) -> float | None:
    """The α a method runs with when none is chosen: the task's SMC α for "tilt" methods, else the
    sampler's default (0)."""
    return spec.smc_alpha if METHODS[method].alphas == "tilt" else None


def run_method(task: Task, method: str, *, num_samples: int, num_candidates: int, seed: int,
               max_batch: int | str | None = "auto", alpha: float | None = None, progress: bool = False,
               **options: Any) -> svdd.Result:
    """Sample with `method` on `task` from `torch.Generator().manual_seed(seed)`, with the budget of
    M = num_candidates candidates (the method runs with `Method.candidates(M)` of them).

    alpha: the selection temperature; None leaves the sampler's default (0), except the "tilt"
    methods (SMC, FK), which then use the task's `smc_alpha`. options: passed on to `svdd.sample`
    (resample_fraction, select_steps, guidance_scale, ...; `value=` replaces the method's own). DPS
    samples with the task's differentiable surrogate and reports the true reward of its samples.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    spec = METHODS[method]
    reason = spec.unavailable(task.spec)
    if reason:
        raise ValueError(f"{method} cannot run on {task.name}: {reason}")
    if alpha is None:
        alpha = default_alpha(method, task.spec)
    kw: dict[str, Any] = dict(num_samples=num_samples, num_candidates=spec.candidates(num_candidates),
                              max_batch=max_batch, generator=torch.Generator().manual_seed(seed), progress=progress)
    kw.update(spec.extra(task), **options)
    if alpha is not None:
        kw["alpha"] = alpha
    reward = task.dps_reward if method == "dps" else task.reward
    res = svdd.sample(task.process, reward, method=spec.sampler, **kw)
    if method == "dps":
        res.rewards = np.asarray(svdd.rewards.evaluate(task.reward, res.samples), dtype=np.float64)
    return res
