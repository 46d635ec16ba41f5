"""The one writer of benchmark results: provenance, markdown tables, JSON/CSV files and plots.

Every table records what made it: the command (`python -m benchmarks TABLE ...`), the seed, the
machine and library versions, the git state of the library, and the load average at the start
and the end (the machines are shared, so timings carry the load).

    meta = provenance("curves", argv, seed=0, packages=("rdkit",))
    ... run ...
    finish(meta)                                   # adds loadavg_end and wall_s
    write_json(out / "curves_alpha.json", {"meta": meta, "rows": rows})
    write_csv(out / "curves_alpha.csv", rows, fields)
    lines = md_table(["method", "median"], [[r["method"], fmt(r["median"])] for r in rows])
"""
from __future__ import annotations

import csv
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BASE_PACKAGES = ("torch", "numpy")


# -------------------------------------------------------------------------------- provenance

def machine_and_versions(packages: Iterable[str]) -> dict[str, Any]:
    """Python version, platform, machine, core count, torch threads, OMP_NUM_THREADS and the
    installed version of each distribution in `packages` (None when it is not installed)."""
    out: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                           "machine": platform.machine(), "processor": cpu_model(), "cpu_count": os.cpu_count(),
                           "torch_threads": torch.get_num_threads(),
                           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
    for pkg in dict.fromkeys((*BASE_PACKAGES, *packages)):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def cpu_model() -> str | None:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def checkout() -> dict[str, Any]:
    """The git commit of the checkout and the uncommitted edits to the library (svdd/, domains/)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return ""
    dirty = git("status", "--porcelain", "--", "svdd", "domains")
    return {"commit": git("rev-parse", "HEAD").strip(), "commit_title": git("log", "-1", "--format=%s").strip(),
            "svdd_uncommitted_changes": [line[3:] for line in dirty.splitlines() if line.strip()]}


def loadavg() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the platform has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def command_line(table: str, argv: Sequence[str]) -> str:
    """The command that re-runs `table` with the arguments `argv`."""
    return " ".join(["OMP_NUM_THREADS=1 python -m benchmarks", table, *argv])


def provenance(table: str, argv: Sequence[str], *, seed: int | None, packages: Iterable[str] = (),
               **extra: Any) -> dict[str, Any]:
    """What is known before a run: command, seed, versions, checkout, load average; `extra` is kept."""
    return {"command": command_line(table, argv), "seed": seed, **extra, "versions": machine_and_versions(packages),
            "checkout": checkout(), "loadavg_start": loadavg(), "_started": time.perf_counter()}


def finish(meta: dict[str, Any], wall_key: str = "wall_s") -> dict[str, Any]:
    """Add what is known after the run: the load average at the end and the wall seconds since
    `provenance` (under `wall_key`); returns `meta`."""
    meta["loadavg_end"] = loadavg()
    meta[wall_key] = round(time.perf_counter() - meta.pop("_started", time.perf_counter()), 1)
    return meta


def machine_line(meta: dict[str, Any]) -> str:
    """One sentence on where and with what a run was made, for the markdown."""
    v = meta["versions"]
    c = meta.get("checkout") or {}
    dirty = c.get("svdd_uncommitted_changes")
    text = (f"{v['platform']}, {v.get('processor')}, {v['cpu_count']} cores, {v['torch_threads']} torch thread(s); "
            f"python {v['python']}, torch {v['torch']}; load average (1/5/15 min) {meta.get('loadavg_start')} at the "
            f"start, {meta.get('loadavg_end')} at the end")
    if c.get("commit"):
        text += f"; library at {c['commit'][:10]} (\"{c.get('commit_title', '')}\")"
    if dirty:
        text += f" with uncommitted edits to {', '.join(dirty)}"
    return text


def provenance_note(meta: dict[str, Any]) -> str:
    """A small-print line: command, load averages, library commit, wall seconds."""
    c = meta.get("checkout") or {}
    dirty = " + uncommitted library edits" if c.get("svdd_uncommitted_changes") else ""
    return (f"<sub>`{meta['command']}`; load average {meta.get('loadavg_start')} -> {meta.get('loadavg_end')}; "
            f"library at {str(c.get('commit'))[:10]}{dirty}; {meta.get('wall_s', float('nan')):.0f} s.</sub>")


# -------------------------------------------------------------------------------- text

def fmt(value: Any, digits: int = 3, missing: str = "n/a") -> str:
    """A number with `digits` decimals; `missing` for None and NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return f"{value:.{digits}f}"


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """Markdown table lines: the header, the rule, one line per row (cells formatted with str;
    an empty cell is written `| |`)."""
    def line(cells: Sequence[Any]) -> str:
        return "|" + "".join(f" {c} |" if str(c) else " |" for c in cells)

    return [line(header), "|" + "---|" * len(header), *(line(row) for row in rows)]


# -------------------------------------------------------------------------------- files

def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_json(path: Path, payload: Any) -> Path:
    """`payload` as indented JSON (numpy scalars as numbers), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=_json_default) + "\n")
    tmp.replace(path)
    return path


def write_csv(path: Path, rows: Sequence[dict[str, Any]], fields: Sequence[str] | None = None) -> Path | None:
    """`rows` as CSV with `fields` (default: every key, in order of appearance); nothing for no rows."""
    if not rows:
        return None
    keys = list(fields) if fields is not None else list(dict.fromkeys(k for r in rows for k in r))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_md(path: Path, text: str, *, echo: bool = True) -> Path:
    """The markdown file (and the same text on stdout)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n")
    if echo:
        print(text, flush=True)
    return path


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, or None when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save_figure(fig: Any, path: Path, dpi: int = 120) -> Path:
    """Write and close `fig`."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path
