"""What the performance benchmarks share: the domains they time, a wall/CPU clock, the time spent
inside the instrumented calls, a warm-up run, per-sample generators, and the cost per row of a
model call against its size."""
from __future__ import annotations

import time
from typing import Any

import torch

import svdd

from .tasks import TASKS, Task

# The performance benchmarks time SVDD-PM on one task per domain.
DOMAIN_TASKS = {"dna": "dna_ars1", "rna": "rna_mfe", "molecules": "molecules_qed", "images": "images_jpeg"}


def load(domain: str, steps: int) -> tuple[Any, Any]:
    """(process, reward) of `domain`'s task with K = `steps`, through the domain plug-in."""
    if domain not in DOMAIN_TASKS:
        raise ValueError(f"unknown domain {domain!r}; choose one of {', '.join(DOMAIN_TASKS)}")
    task = Task(DOMAIN_TASKS[domain], steps=steps)
    return task.process, task.reward


def label(domain: str) -> str:
    """The short name of `domain`'s task in tables ("DNA ARS1")."""
    return TASKS[DOMAIN_TASKS[domain]].short


def per_sample_generators(n: int, seed: int) -> list[torch.Generator]:
    """One generator per sample: sample i draws from `manual_seed(1000 + seed + i)` alone."""
    return [torch.Generator().manual_seed(1000 + seed + i) for i in range(n)]


class Clock:
    """Wall time (perf_counter) and this process's CPU time (process_time) of a block.

    On a shared machine the wall time includes waiting for a core; `share` = cpu / wall is the
    fraction of a core the process actually got (about 1 when the machine is idle).
    """

    def __enter__(self) -> Clock:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu
        self.share = self.cpu / self.wall if self.wall > 0 else float("nan")


def inside_time(stats: dict[str, Any]) -> tuple[float, dict[str, float]]:
    """Seconds spent inside process/model/reward calls: every `*_time_s` stat but `wall_time_s`."""
    parts = {k: float(v) for k, v in stats.items() if k.endswith("_time_s") and k != "wall_time_s"}
    return sum(parts.values()), parts


def warm_up(process: Any, reward: Any) -> None:
    """One tiny SVDD-PM run (N=2, M=2), so one-off costs (lazy imports, first-call allocations
    of the model and the reward's libraries) do not land in the measured run."""
    svdd.sample(process, reward, method="svdd", num_samples=2, num_candidates=2,
                generator=torch.Generator().manual_seed(0), progress=False)


def model_cost_per_row(process: Any, sizes: list[int], repeats: int) -> dict[int, list[tuple[float, float]]]:
    """Wall and CPU seconds per row of one `process.model` call on B rows, for B in `sizes`.

    Calls on the prior states (all-mask sequences; noise for images) at the middle timestep after
    one warm-up call; the sizes are interleaved within each repeat, so that a change in machine
    load affects every size alike. Returns {B: [(wall_s_per_row, cpu_s_per_row) per repeat]}.
    """
    t = process.timesteps[len(process.timesteps) // 2]
    x = process.prior(max(sizes), torch.Generator().manual_seed(0))
    times: dict[int, list[tuple[float, float]]] = {b: [] for b in sizes}
    with torch.no_grad():
        process.model(x[: min(sizes)], t)
        for _ in range(repeats):
            for b in sizes:
                with Clock() as clock:
                    process.model(x[:b], t)
                times[b].append((clock.wall / b, clock.cpu / b))
    return times
