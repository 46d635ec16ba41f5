"""The sampling methods the benchmark tables compare, by the names the tables use.

    res = run_method(task, "svdd_mc", num_samples=64, num_candidates=10, seed=0)

Each method is one `Method`: its label and how it calls `svdd.sample` on a `benchmarks.tasks.Task`
(which value, which extra options). A new method is one more entry of `METHODS`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import svdd

from .tasks import Task, TaskSpec


@dataclass(frozen=True)
class Method:
    """label: the name in tables; sampler: `svdd.sample(method=...)`; extra: `task -> keyword
    arguments` the method adds (a value network, ...); unavailable: `TaskSpec -> why the method
    cannot run on such a task, or None`."""

    label: str
    sampler: str
    extra: Callable[[Task], dict[str, Any]] = field(default=lambda task: {})
    unavailable: Callable[[TaskSpec], str | None] = field(default=lambda spec: None)


def _smc_value(task: Task) -> dict[str, Any]:
    return {"value": task.value if task.spec.smc_mc_value else None}


METHODS: dict[str, Method] = {
    "pretrained": Method("Pretrained", "pretrained"),
    "best_of_n": Method("Best-of-N", "best_of_n"),
    "dps": Method("DPS", "dps", unavailable=lambda spec: spec.dps_unavailable),
    "smc": Method("SMC", "smc", _smc_value),
    "svdd_mc": Method("SVDD-MC", "svdd", lambda task: {"value": task.value}),
    "svdd_pm": Method("SVDD-PM", "svdd"),
    "svdd_r": Method("SVDD-R", "svdd_r"),
}


def run_method(task: Task, method: str, *, num_samples: int, num_candidates: int, seed: int,
               max_batch: int | str | None = 2048, alpha: float | None = None, progress: bool = False,
               **options: Any) -> svdd.Result:
    """Sample with `method` on `task` from `torch.Generator().manual_seed(seed)`.

    alpha: the selection temperature; None leaves the sampler's default (0), except SMC, which
    then uses the task's `smc_alpha`. options: passed on to `svdd.sample` (resample_fraction,
    select_steps, guidance_scale, ...; `value=` replaces the method's own). DPS samples with the
    task's differentiable surrogate and reports the true reward of its samples.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    spec = METHODS[method]
    reason = spec.unavailable(task.spec)
    if reason:
        raise ValueError(f"{method} cannot run on {task.name}: {reason}")
    if alpha is None and method == "smc":
        alpha = task.spec.smc_alpha
    kw: dict[str, Any] = dict(num_samples=num_samples, num_candidates=num_candidates, max_batch=max_batch,
                              generator=torch.Generator().manual_seed(seed), progress=progress)
    kw.update(spec.extra(task), **options)
    if alpha is not None:
        kw["alpha"] = alpha
    reward = task.dps_reward if method == "dps" else task.reward
    res = svdd.sample(task.process, reward, method=spec.sampler, **kw)
    if method == "dps":
        res.rewards = np.asarray(svdd.rewards.evaluate(task.reward, res.samples), dtype=np.float64)
    return res
