"""Throughput of sharded batch generation with 1 vs 2 worker processes (svdd.runs + executors).

The workload is dominated by an expensive CPU-bound oracle (default: the RNA ensemble free
energy from ViennaRNA's partition function, scored on every candidate at every step; pass
`--domain molecules --reward docking` for AutoDock Vina), the case where spreading shards over
cores pays. Each worker count writes its own run; the samples must be identical.

    python benchmarks/generate_scaling.py [--domain rna --reward mfe=ensemble --samples 64]

Writes benchmarks/results/generate_scaling.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from svdd.jobs import DomainJob  # noqa: E402
from svdd.executors import process_pool  # noqa: E402
from svdd.runs import RunSettings, environment, generate  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domain", default="rna")
    ap.add_argument("--reward", default="mfe=ensemble")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--shard-size", type=int, default=8)
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per worker

    job = DomainJob(domain=args.domain, reward=args.reward, steps=args.steps)
    settings = RunSettings(num_samples=args.samples, method="svdd", num_candidates=args.candidates,
                           shard_size=args.shard_size, seed=0)
    rows, outputs = [], {}
    for workers in args.workers:
        out = Path(tempfile.mkdtemp(prefix=f"svdd-scaling-{workers}-"))
        pool = process_pool(workers)
        try:
            start = time.perf_counter()
            run = generate(job, settings, out, executor=pool, progress=False, log=lambda m: None)
            wall = time.perf_counter() - start
        finally:
            pool.shutdown()
        outputs[workers] = (out / "samples.csv").read_text()
        rows.append({"workers": workers, "wall_s": round(wall, 2), "samples_per_s": round(args.samples / wall, 3),
                     "reward_time_s": round(run.record["stats"].get("reward_time_s", 0.0), 2),
                     "model_time_s": round(run.record["stats"].get("model_time_s", 0.0), 2),
                     "reward_median": run.record["reward_median"]})
        shutil.rmtree(out)
    base = rows[0]["samples_per_s"]
    for row in rows:
        row["speedup"] = round(row["samples_per_s"] / base, 2)
    identical = len(set(outputs.values())) == 1
    command = "python benchmarks/generate_scaling.py " + " ".join(sys.argv[1:])
    result = {"command": command.strip(), "job": vars(args), "identical_samples": identical, "rows": rows,
              "environment": environment(),
              "note": "wall time includes starting the spawn workers and loading the model in each"}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "generate_scaling.json").write_text(json.dumps(result, indent=1))
    lines = [f"# Batch generation throughput: 1 vs 2 worker processes\n",
             f"Command: `{result['command']}`  ",
             f"Job: {args.domain} / {args.reward}, svdd, N={args.samples}, M={args.candidates}, "
             f"K={args.steps}, shards of {args.shard_size}, seed 0; machine: {os.cpu_count()} cores. "
             f"Samples identical across worker counts: {identical}.\n",
             "| workers | wall (s) | samples/s | speed-up | reward time (s, summed) | model time (s, summed) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['workers']} | {r['wall_s']} | {r['samples_per_s']} | {r['speedup']} | {r['reward_time_s']} | "
              f"{r['model_time_s']} |" for r in rows]
    (RESULTS / "generate_scaling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
