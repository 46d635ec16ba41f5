"""Re-run any benchmark table: `python -m benchmarks TABLE [options]` from the repository root.

Tables (each writes its numbers, plots and the command that made them to benchmarks/results/):
  table1       the paper's Table 1 on our models (every domain x every method)
  curves       reward against model calls / wall time for M in {1..16}; alpha sweeps
  performance  sampler overhead, batched vs per-candidate loop, peak memory vs M, throughput vs N
  images | sequences | molecules | generate_scaling   the per-domain benchmarks
  seed_editing reward against distance to a seed (DNA, molecules) when editing natural seeds
  wall_time    SVDD-PM and Best-of-N wall time vs model and reward time, before/after the reward cache and overlap

`--quick` (table1, curves, performance) runs tiny settings that finish in minutes on a laptop
and writes under benchmarks/results/quick/ (table1) or marks the results as quick.
"""
from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

TABLES = ("table1", "curves", "performance", "chunk_size", "images", "sequences", "molecules", "generate_scaling",
          "seed_editing", "wall_time")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0 if argv else 2)
    table, rest = argv[0], argv[1:]
    if table not in TABLES:
        raise SystemExit(f"unknown benchmark {table!r}; choose one of {', '.join(TABLES)}")
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    module = importlib.import_module(f"benchmarks.{table}")
    sys.argv = [f"benchmarks/{table}.py", *rest]
    entry = module.main
    if inspect.signature(entry).parameters:
        entry(rest)
    else:  # scripts whose main() reads sys.argv itself
        entry()


if __name__ == "__main__":
    main()
