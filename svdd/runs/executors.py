"""Executors for shards and expensive rewards: a local process pool, or Ray when installed.

Both are `concurrent.futures.Executor`s, so `svdd.runs.generate(executor=...)` and
`svdd.rewards.Reward(executor=...)` take either, or any other Executor.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None = None, poll_s: float = 1.0) -> None:
    """Make this process end when its parent does, even if the parent is SIGKILLed.

    On Linux the kernel sends SIGKILL at the parent's death (prctl PR_SET_PDEATHSIG); a daemon
    thread also checks the parent pid every `poll_s` seconds (other systems, or a parent thread
    that exited). Used as the initializer of svdd's process pools.
    """
    parent_pid = os.getppid() if parent_pid is None else parent_pid
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the line above ran
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="svdd-parent-watch", daemon=True).start()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` processes started with 'spawn' (fork is unsafe once torch has
    threads); each worker dies with this process (`die_with_parent`), so a killed run leaves no
    orphan writing shards."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int; got {workers!r}")
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    )


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
        if self._started and address not in (None, "auto", "local"):
            check_reachable(address)
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


def check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """ValueError for a Ray address that is not `[ray://]host:port`, ConnectionError when nothing
    answers there within `timeout_s` (Ray itself retries for minutes before giving up)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--ray-address must be host:port or ray://host:port (or auto); got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConnectionError(
            f"cannot reach the Ray cluster at {address!r} ({exc.strerror or exc}); check --ray-address"
        ) from None


def make_executor(kind: str, workers: int = 2, address: str | None = None) -> Executor | None:
    """None ("none"), a spawn process pool ("processes") or a `RayExecutor` ("ray")."""
    if kind == "none":
        return None
    if kind == "processes":
        return process_pool(workers)
    if kind == "ray":
        return RayExecutor(address=address, num_cpus=workers if address is None else None)
    raise ValueError(f"executor must be one of none, processes, ray; got {kind!r}")
