"""Throughput of sharded batch generation with 1 vs 2 worker processes (svdd.runs + executors).

The workload is dominated by an expensive CPU-bound oracle (default: the RNA ensemble free
energy from ViennaRNA's partition function, scored on every candidate at every step; pass
`--domain molecules --reward docking` for AutoDock Vina), the case where spreading shards over
cores pays. The job is a `svdd.runs.jobs.DomainJob` (a plug-in domain and a reward by its command-line
name, built in each worker). Each worker count writes its own run; the samples must be identical.

    python -m benchmarks generate_scaling [--domain rna --reward mfe=ensemble --samples 64]

Writes benchmarks/results/generate_scaling.{json,md}.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from svdd.runs import DomainJob, RunSettings, environment, generate, process_pool

from .report import RESULTS, command_line, md_table, write_json, write_md


def main(argv: list[str] | None = None) -> None:
    argv = list(argv or [])
    ap = argparse.ArgumentParser(prog="python -m benchmarks generate_scaling", description=__doc__.splitlines()[0])
    ap.add_argument("--domain", default="rna")
    ap.add_argument("--reward", default="mfe=ensemble")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--shard-size", type=int, default=8)
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per worker

    job = DomainJob(domain=args.domain, reward=args.reward, steps=args.steps)
    settings = RunSettings(num_samples=args.samples, method="svdd", num_candidates=args.candidates,
                           shard_size=args.shard_size, seed=0)
    rows, outputs = [], {}
    for workers in args.workers:
        run_dir = Path(tempfile.mkdtemp(prefix=f"svdd-scaling-{workers}-"))
        pool = process_pool(workers)
        try:
            start = time.perf_counter()
            run = generate(job, settings, run_dir, executor=pool, progress=False, log=lambda m: None)
            wall = time.perf_counter() - start
            assert run is not None, "generate returned no run"
        finally:
            pool.shutdown()
        outputs[workers] = (run_dir / "samples.csv").read_text()
        rows.append({"workers": workers, "wall_s": round(wall, 2), "samples_per_s": round(args.samples / wall, 3),
                     "reward_time_s": round(run.record["stats"].get("reward_time_s", 0.0), 2),
                     "model_time_s": round(run.record["stats"].get("model_time_s", 0.0), 2),
                     "reward_median": run.record["reward_median"]})
        shutil.rmtree(run_dir)
    for row in rows:
        row["speedup"] = round(row["samples_per_s"] / rows[0]["samples_per_s"], 2)
    identical = len(set(outputs.values())) == 1
    result = {"command": command_line("generate_scaling", argv), "job": {k: str(v) for k, v in vars(args).items()},
              "identical_samples": identical, "rows": rows, "environment": environment(),
              "note": "wall time includes starting the spawn workers and loading the model in each"}
    write_json(args.out / "generate_scaling.json", result)
    lines = ["# Batch generation throughput: 1 vs 2 worker processes\n", f"Command: `{result['command']}`  ",
             f"Job: {args.domain} / {args.reward}, svdd, N={args.samples}, M={args.candidates}, K={args.steps}, "
             f"shards of {args.shard_size}, seed 0; machine: {os.cpu_count()} cores. Samples identical across "
             f"worker counts: {identical}.\n"]
    lines += md_table(["workers", "wall (s)", "samples/s", "speed-up", "reward time (s, summed)",
                       "model time (s, summed)"],
                      [[r["workers"], r["wall_s"], r["samples_per_s"], r["speedup"], r["reward_time_s"],
                        r["model_time_s"]] for r in rows])
    write_md(args.out / "generate_scaling.md", "\n".join(lines))
