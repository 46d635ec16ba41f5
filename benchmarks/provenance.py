"""What ran a benchmark: the machine, the Python/torch settings and the versions of the libraries."""
from __future__ import annotations

import importlib.metadata
import os
import platform
from collections.abc import Iterable
from typing import Any

import torch


def machine_and_versions(packages: Iterable[str]) -> dict[str, Any]:
    """Python version, platform, machine, core count, torch threads, OMP_NUM_THREADS and the
    installed version of each distribution in `packages` (None when it is not installed)."""
    out: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                           "machine": platform.machine(), "cpu_count": os.cpu_count(),
                           "torch_threads": torch.get_num_threads(),
                           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
    for pkg in packages:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out
