"""Re-run any benchmark table: `python -m benchmarks TABLE [options]` from the repository root.

Tables (each writes its numbers, plots and the command that made them to benchmarks/results/):
  table1       the paper's Table 1 on our models (every task x every method)
  curves       median reward against model calls, reward calls and wall time for M in {2..16}; alpha sweeps
  performance  PART: overhead | loop | memory | scaling | all (sampler overhead, batched vs
               per-candidate loop, peak memory vs M, throughput vs N) and their summary
  chunk_size   denoiser cost per row against the call size; max_batch="auto" vs None
  images | sequences | molecules | generate_scaling   the per-domain benchmarks
  seed_editing reward against distance to a seed (DNA, molecules, proteins) when editing natural seeds
  proteins     ProteinMPNN native sequence recovery through svdd vs its own sampler
  molecules_docking_noise   Vina's spread over seeds at exhaustiveness 1, 4 and 8
  molecules_docking_rows    docking rows (PARP1, JAK2, ESR1) with every method at equal docking calls
  wall_time    SVDD-PM and Best-of-N wall time vs model and reward time, before/after the reward cache and overlap

Shared by all: tasks.py (every task built through the domain plug-ins), methods.py (the sampling
methods by table name), metrics.py (summary statistics), report.py (provenance, tables, files,
plots), timing.py (the performance parts' clocks and domains).

`--quick` (table1, curves, performance, chunk_size) runs tiny settings that finish in minutes on a
laptop and writes under benchmarks/results/quick/ (table1) or a temporary directory.
`python -m benchmarks TABLE --help` lists a table's options.
"""
from __future__ import annotations

import importlib
import sys

TABLES = ("table1", "curves", "performance", "chunk_size", "images", "sequences", "molecules", "generate_scaling",
          "seed_editing", "molecules_docking_noise", "molecules_docking_rows", "wall_time", "proteins")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0 if argv else 2)
    table, rest = argv[0], argv[1:]
    if table not in TABLES:
        raise SystemExit(f"unknown benchmark {table!r}; choose one of {', '.join(TABLES)}")
    importlib.import_module(f"benchmarks.{table}").main(rest)


if __name__ == "__main__":
    main()
