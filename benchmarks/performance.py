"""Sampler performance: call overhead, batched vs per-candidate loop, peak memory, throughput.

    python -m benchmarks performance PART [--quick] [--seed 0] [--out DIR] [--profile] [--threads T]

PART is one of overhead (benchmarks/overhead.py), loop (loop.py), memory (memory.py), scaling
(scaling.py), or all: the four in turn. Every part writes benchmarks/results/performance_<part>.
{json,md} (and .png for memory and scaling) recording the exact command, seed, versions, machine,
the load average at the start and the end, and the state of the library checkout; then
benchmarks/results/performance.md is rewritten from whichever part JSONs exist. `--quick` runs
tiny settings (a smoke test of well under a minute for all parts) and writes to a temporary
directory unless --out is given, so it never overwrites the committed results.

All timings are on one CPU thread (`torch.set_num_threads(1)`, OMP_NUM_THREADS=1). The machine
may be shared with other jobs, so every timing also records the process's CPU time and its core
share (CPU / wall), and the load averages are recorded; CPU-time ratios are the steadier measure
when the cores are oversubscribed. Full settings: about 12-15 min on an idle core.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from . import loop, memory, overhead, scaling
from .report import RESULTS, finish, machine_line, provenance, provenance_note, write_json, write_md

PARTS = {"overhead": overhead, "loop": loop, "memory": memory, "scaling": scaling}
PACKAGES = ("diffusers", "rdkit", "selfies", "ViennaRNA", "psutil")


def run_part(part: str, args: argparse.Namespace, argv: list[str]) -> None:
    """Run one part and write performance_<part>.{json,md} with its provenance."""
    meta = provenance("performance", argv, seed=args.seed, packages=PACKAGES, quick=args.quick)
    module = PARTS[part]
    payload, md = module.run(module.SETTINGS["quick" if args.quick else "full"], args)
    meta = finish(meta, wall_key="part_wall_s")
    write_json(args.out / f"performance_{part}.json", {"part": part, **meta, **payload})
    header = (f"Command: `{meta['command']}`  \n"
              f"Seed {meta['seed']}; {machine_line(meta)}; part took {meta['part_wall_s']:.0f} s.\n\n")
    write_md(args.out / f"performance_{part}.md", module.TITLE + "\n\n" + header + md)


def write_summary(out: Path) -> None:
    """performance.md: a short table per part from whichever performance_<part>.json exist."""
    data = {p: json.loads((out / f"performance_{p}.json").read_text())
            for p in PARTS if (out / f"performance_{p}.json").exists()}
    if not data:
        return
    total = sum(d["part_wall_s"] for d in data.values())
    lines = ["# Sampler performance (summary)", "",
             "Regenerate: `OMP_NUM_THREADS=1 python -m benchmarks performance all` (one part: `... performance "
             "overhead|loop|memory|scaling`; smoke test, written to a temporary directory: `... all --quick`). "
             f"These parts took {total / 60:.0f} min of wall time in all on a shared 2-core machine where this job got "
             "0.3-0.6 of a core; on an idle core the full settings take about 12-15 min. Details, provenance "
             "and load averages in performance_<part>.md / .json.", "",
             "Wall time against model and reward time (SVDD-PM and Best-of-N before and after the reward cache and "
             "`overlap=True`): [performance_wall.md](performance_wall.md) (`python -m benchmarks wall_time`). "
             "Methods compared at equal model calls, reward calls and wall seconds: [table1.md](table1.md) and "
             "[curves.md](curves.md).", "", "## Key points", ""]
    lines += [point for part, d in data.items() for point in PARTS[part].key_points(d)] + [""]
    for part, d in data.items():
        lines += [*PARTS[part].summary(d), "", provenance_note(_with_wall(d)), ""]
    (out / "performance.md").write_text("\n".join(lines))


def _with_wall(d: dict[str, Any]) -> dict[str, Any]:
    return {**d, "wall_s": d["part_wall_s"]}


def main(argv: list[str] | None = None) -> None:
    argv = list(argv or [])
    ap = argparse.ArgumentParser(prog="python -m benchmarks performance", description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=[*PARTS, "all"])
    ap.add_argument("--quick", action="store_true", help="tiny settings (smoke test, < 1 min for all parts)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--profile", action="store_true", help="overhead: profile every domain, not only misses")
    ap.add_argument("--out", type=Path, default=None,
                    help="results directory (default benchmarks/results; with --quick a temporary directory)")
    args = ap.parse_args(argv)
    if args.out is None:
        args.out = Path(tempfile.gettempdir()) / "svdd-performance-quick" if args.quick else RESULTS
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    for part in PARTS if args.part == "all" else (args.part,):
        run_part(part, args, argv)
        write_summary(args.out)
    print(f"results in {args.out}", flush=True)
