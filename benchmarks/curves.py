"""Median reward against three budgets (model calls, reward calls, wall seconds), and the reward /
diversity trade-off in α.

Parts:
  compute  every method of `COMPUTE_METHODS` at M in {2, 4, 8, 16} (the budget of M candidates, as in
           Table 1), with the α Table 1's sweep chose for the task (the sparse variants take their dense
           method's α; without a Table 1 cell, the method's default). Points with Table 1's N, M and K
           are Table 1's own cells. Writes curves_compute.{json,csv,md} and curves_compute_<task>.png
           (three panels: model calls, reward calls, wall seconds).
  alpha    SVDD-PM at M = 8 for α = a·{0, 0.01, 0.03, 0.1, 0.3, 1, 3, 10} (a: the task's reference
           temperature), with pretrained and Best-of-N (M = 8) for reference: median reward against
           diversity, and the diversity target (diversity >= 0.9x pretrained while beating Best-of-N's
           median). Writes curves_alpha.{json,csv,md} and curves_alpha.png.
  all      both.

Tasks (`benchmarks.tasks`, Table 1's N and K, seed 0): dna (dna_ars1), qed (molecules_qed), rna
(rna_mfe), jpeg (images_jpeg, N = 32 in the alpha part), flow_jpeg (images_flow_jpeg: the DiT flow
model) and proteins (proteins_instability). The noise searches (random_search, zero_order) run on the
image tasks only (they need continuous states).

Every run is a stored cell (benchmarks/results/curves/<task>/..., or Table 1's), reused when its
settings match. Wall times are taken on a shared machine (one torch thread); each point records
its CPU seconds and the load average.

    python -m benchmarks curves compute --tasks dna qed rna
    python -m benchmarks curves alpha --tasks dna jpeg
    python -m benchmarks curves all --quick    # smoke test (~1 min), writes to a temp dir
    python -m benchmarks curves --render-only  # rewrite the md/png from the JSON files
"""
from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from .budgets import min_unique
from .curves_report import render
from .methods import METHODS
from .report import RESULTS, ROOT, command_line, finish, provenance, write_csv, write_json
from .table1 import ROWS, Cells, Row, cell_path

COMPUTE_METHODS = ("pretrained", "best_of_n", "smc", "fk", "svdd_mc", "svdd_pm", "beam", "refine", "svdd_pm_every4",
                   "fk_every4", "random_search", "zero_order")  # the noise searches run on continuous tasks only
SEARCHES = ("random_search", "zero_order")
DENSE = {"svdd_pm_every4": "svdd_pm", "fk_every4": "fk"}  # a sparse variant takes its dense method's α
FULL: dict[str, Any] = {"candidates": [2, 4, 8, 16], "alpha_m": 8,
                        "alpha_scale": [0, 0.01, 0.03, 0.1, 0.3, 1, 2, 3, 10]}
QUICK: dict[str, Any] = {"candidates": [2, 4], "alpha_m": 2, "alpha_scale": [0, 0.1, 1]}
# the curves' task names -> (Table 1 row, the diversity measure, N in the alpha part or None for the row's)
TASKS = {"dna": ("dna_ars1", "mean pairwise normalised Hamming distance", None),
         "qed": ("molecules_qed", "mean pairwise Tanimoto distance (Morgan r=2)", None),
         "rna": ("rna_mfe", "mean pairwise normalised Hamming distance (padded)", None),
         "jpeg": ("images_jpeg", "1 - cosine of classifier embeddings", 32),
         "flow_jpeg": ("images_flow_jpeg", "1 - cosine of classifier embeddings", 32),
         "proteins": ("proteins_instability", "mean pairwise normalised Hamming distance", None)}
CSV_FIELDS = ["part", "task", "method", "M", "alpha", "median", "p90", "mean", "diversity", "unique", "valid",
              "model_calls", "reward_calls", "reward_cache_hits", "value_calls", "wall_time_s", "cpu_time_s",
              "model_time_s", "reward_time_s", "loadavg_1min", "num_samples", "num_steps", "seed"]


def chosen_alpha(out: Path, row: Row, method: str) -> float | None:
    """The α Table 1 reported `method` (or its dense counterpart) with on this task, or None."""
    path = cell_path(out, row.name, DENSE.get(method, method))
    return json.loads(path.read_text())["settings"].get("alpha") if path.exists() else None


def point(cells: Cells, name: str, part: str, method: str, m: int, alpha: float | None, seed: int,
          path: Path) -> dict:
    """One curve point: `method` with the budget of M = m at α, as a CSV row (a stored cell or a new run)."""
    cell = cells.get(method, seed, alpha, cells.row.num_samples, path)
    s = cell["summary"]
    row = {"part": part, "task": name, "method": method, "M": m, "alpha": alpha, **{k: s.get(k) for k in CSV_FIELDS
           if k in s}, "loadavg_1min": (s.get("loadavg_start") or [None])[0], "num_samples": cells.row.num_samples,
           "num_steps": cells.row.num_steps, "seed": seed}
    return row


def row_for(name: str, quick: bool, num_samples: int | None = None, m: int | None = None) -> Row:
    row = ROWS[TASKS[name][0]]
    row = row.quick() if quick else row
    return replace(row, num_samples=num_samples or row.num_samples, num_candidates=m or row.num_candidates)


def part_compute(name: str, cfg: dict, out: Path, seed: int, quick: bool, command: str) -> list[dict]:
    base = row_for(name, quick)
    rows = []
    for m in cfg["candidates"]:
        cells = Cells(row_for(name, quick, m=m), out, command, force=False)
        try:
            for method in COMPUTE_METHODS:
                first = m == cfg["candidates"][0]
                if (method == "pretrained" and not first) or (method in SEARCHES and base.unavailable(method)):
                    continue
                table1 = cell_path(out, base.name, method)  # Table 1's own cell at its M
                path = (table1 if m == base.num_candidates and table1.exists()
                        else out / "curves" / base.name / f"{method}_M{m}.json")
                rows.append(point(cells, name, "compute", method, m, chosen_alpha(out, base, method), seed, path))
        finally:
            cells.close()
    return rows


def part_alpha(name: str, cfg: dict, out: Path, seed: int, quick: bool, command: str) -> list[dict]:
    m, n = cfg["alpha_m"], None if quick else TASKS[name][2]
    row = row_for(name, quick, num_samples=n, m=m)
    cells = Cells(row, out, command, force=False)
    folder = out / "curves" / row.name / f"alpha_N{row.num_samples}_M{m}"
    try:
        rows = [point(cells, name, "alpha", method, m, None, seed, folder / f"{method}.json")
                for method in ("pretrained", "best_of_n")]
        for scale in cfg["alpha_scale"]:
            alpha = scale * row.spec.smc_alpha
            rows.append(point(cells, name, "alpha", "svdd_pm", m, alpha, seed, folder / f"svdd_pm_alpha{alpha:g}.json"))
    finally:
        cells.close()
    return rows


def write_part(out: Path, part: str, payload: dict) -> None:
    """The part's JSON/CSV, keeping the stored rows of tasks this run did not touch."""
    path = out / f"curves_{part}.json"
    if path.exists():
        done = {r["task"] for r in payload["rows"]}
        old = json.loads(path.read_text())
        payload["rows"] = [r for r in old["rows"] if r["task"] not in done] + payload["rows"]
        for key in ("reward_label", "diversity_label", "min_unique"):  # per-task labels of the kept tasks too
            payload["meta"][key] = {**old["meta"].get(key, {}), **payload["meta"].get(key, {})}
        payload["meta"]["earlier_runs"] = [old["meta"], *old["meta"].pop("earlier_runs", [])][:4]
    write_json(path, payload)
    write_csv(out / f"curves_{part}.csv", payload["rows"], CSV_FIELDS)
    render(out)


def main(argv: list[str] | None = None) -> None:
    argv = list(argv or [])
    ap = argparse.ArgumentParser(prog="python -m benchmarks curves", description=__doc__.splitlines()[0])
    ap.add_argument("part", nargs="?", choices=["compute", "alpha", "all"], default=None)
    ap.add_argument("--quick", action="store_true", help="tiny settings (smoke test, ~1 min); output in a temp dir")
    ap.add_argument("--tasks", nargs="+", default=["dna", "qed"], choices=list(TASKS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None,
                    help=f"output folder (default {RESULTS.relative_to(ROOT)}; with --quick a temp dir)")
    ap.add_argument("--render-only", action="store_true", help="rewrite md and png from the JSON files in --out")
    args = ap.parse_args(argv)
    out = args.out or (Path(tempfile.gettempdir()) / "svdd_curves_quick" if args.quick else RESULTS)
    if args.render_only:
        render(out)
        print(f"rendered {out}")
        return
    if args.part is None:
        ap.error("PART (compute | alpha | all) is required unless --render-only")
    torch.set_num_threads(1)
    cfg, command = (QUICK if args.quick else FULL), command_line("curves", argv)
    for part in (["compute", "alpha"] if args.part == "all" else [args.part]):
        meta = provenance("curves", argv, seed=args.seed, packages=("rdkit", "selfies", "ViennaRNA", "matplotlib"),
                          part=part, quick=args.quick, tasks=args.tasks)
        rows = []
        for name in args.tasks:
            rows += (part_compute if part == "compute" else part_alpha)(name, cfg, out, args.seed, args.quick, command)
        meta.update(candidates=cfg["candidates"], alpha_m=cfg["alpha_m"], alpha_scale=cfg["alpha_scale"],
                    reward_label={n: ROWS[TASKS[n][0]].spec.label for n in args.tasks},
                    diversity_label={n: TASKS[n][1] for n in args.tasks},
                    min_unique={n: min_unique(ROWS[TASKS[n][0]].spec.domain) for n in args.tasks},
                    method_budget={m: METHODS[m].budget for m in COMPUTE_METHODS})
        write_part(out, part, {"meta": finish(meta, wall_key="total_wall_time_s"), "rows": rows})
        print(f"{part}: {len(rows)} points in {meta['total_wall_time_s']:.0f} s -> {out}", flush=True)
    print((out / "curves.md").read_text())
