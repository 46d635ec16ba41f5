"""Executors for shards and expensive rewards: a local process pool, or Ray when installed.

Both are `concurrent.futures.Executor`s, so `svdd.runs.generate(executor=...)` and
`svdd.rewards.Reward(executor=...)` take either, or any other Executor.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any, Callable


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` processes started with 'spawn' (fork is unsafe once torch has threads)."""
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int; got {workers!r}")
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def _call(fn: Callable, args: tuple, kwargs: dict) -> Any:
    return fn(*args, **kwargs)


class RayExecutor(Executor):
    """Runs each submitted call as a Ray task: a local cluster by default, or `address` (e.g.
    "ray://head:10001" or "auto") for a real one. Needs the `distributed` extra (ray)."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        try:
            import ray
        except ImportError as exc:
            raise ImportError("the ray executor needs Ray: pip install 'svdd[distributed]'") from exc
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            kwargs: dict[str, Any] = {"address": address, "include_dashboard": False, "log_to_driver": False}
            if address is None and num_cpus is not None:
                kwargs["num_cpus"] = num_cpus
            ray.init(**kwargs)
        self._remote = ray.remote(_call)

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        return self._remote.remote(fn, args, kwargs).future()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()


def make_executor(kind: str, workers: int = 2, address: str | None = None) -> Executor | None:
    """None ("none"), a spawn process pool ("processes") or a `RayExecutor` ("ray")."""
    if kind == "none":
        return None
    if kind == "processes":
        return process_pool(workers)
    if kind == "ray":
        return RayExecutor(address=address, num_cpus=workers if address is None else None)
    raise ValueError(f"executor must be one of none, processes, ray; got {kind!r}")
