"""Reward against compute, and the reward/diversity trade-off in α, for SVDD and its baselines.

Parts:
  compute  median (and 90th percentile) reward against item-level model calls and against wall time:
           pretrained; Best-of-N (N·M pretrained samples, keep the top N); SVDD-PM; SVDD-MC (DNA only,
           shipped value network); SMC (N·M particles, PM value, fixed α per task); M in {1, 2, 4, 8, 16}
           (SMC from M = 2). Writes curves_compute.{json,csv,md} and curves_compute_<task>.png.
  alpha    SVDD-PM at M = 10 for α in {0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1}, SMC at M = 10 for
           the same α > 0, pretrained and Best-of-N (M = 10) for reference: median reward against
           diversity. Writes curves_alpha.{json,csv,md} and curves_alpha.png.
  all      both.

Tasks (`benchmarks.tasks`, K = 32 steps, N = 64, seed 0): dna (dna_ars1: ARS1 activity; diversity
= mean pairwise normalised Hamming distance), qed (molecules_qed: QED; diversity = mean pairwise
Tanimoto distance, plus validity and uniqueness of canonical SMILES), and optionally rna (rna_mfe,
-MFE; RNAfold makes it slow).

Model calls are item-level denoiser evaluations (`Result.stats["model_calls"]`); SVDD-MC makes about
N per step whatever M is and spends its effort in value-network calls instead (`value_calls`), so it
sits to the left on the calls axis; the wall-time panel shows what that costs. Wall times are taken on
a shared machine (one torch thread); the load average at start and end is recorded.

    python -m benchmarks curves all            # full settings, ~25 min on one core
    python -m benchmarks curves all --quick    # smoke test (~1 min), writes to a temp dir
    python -m benchmarks curves --render-only  # rewrite the md/png from the JSON files
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from .curves_report import render
from .methods import run_method
from .metrics import reward_quantiles
from .report import RESULTS, ROOT, finish, loadavg, provenance, write_csv, write_json
from .tasks import Task

FULL: dict[str, Any] = {"num_samples": 64, "steps": 32, "candidates": [1, 2, 4, 8, 16], "alpha_m": 10,
                        "alphas": [0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0]}
QUICK: dict[str, Any] = {"num_samples": 16, "steps": 16, "candidates": [1, 2, 4], "alpha_m": 4,
                         "alphas": [0.0, 0.01, 0.1]}
# the curves' task names -> (benchmarks.tasks name, whether SVDD-MC runs, the diversity measure)
TASKS = {"dna": ("dna_ars1", True, "mean pairwise normalised Hamming distance"),
         "qed": ("molecules_qed", False, "mean pairwise Tanimoto distance (Morgan r=2)"),
         "rna": ("rna_mfe", True, "mean pairwise normalised Hamming distance (padded)")}
CSV_FIELDS = ["part", "task", "method", "M", "alpha", "median", "p90", "mean", "diversity", "unique", "valid",
              "invalid", "model_calls", "reward_calls", "value_calls", "wall_time_s", "num_samples", "num_steps",
              "seed", "loadavg_1min"]


def run(task: Task, name: str, part: str, method: str, m: int, alpha: float, cfg: dict, seed: int) -> dict:
    """One point: `method` at M = m and α on `task`, summarised as one CSV row."""
    res = run_method(task, method, num_samples=cfg["num_samples"], num_candidates=m, alpha=alpha, seed=seed,
                     max_batch=2048)
    q = reward_quantiles(res.rewards)
    valid, unique = task.validity_uniqueness(res)
    row = {"part": part, "task": name, "method": method, "M": m, "alpha": float(alpha), "median": q["median"],
           "p90": q["p90"], "mean": q["mean"], "diversity": task.diversity(res), "valid": valid, "unique": unique,
           "invalid": q["invalid"], "model_calls": int(res.stats["model_calls"]),
           "reward_calls": int(res.stats["reward_calls"]), "value_calls": int(res.stats.get("value_calls", 0)),
           "wall_time_s": float(res.stats["wall_time_s"]), "num_samples": cfg["num_samples"],
           "num_steps": cfg["steps"], "seed": seed, "loadavg_1min": (loadavg() or [float("nan")])[0]}
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    return row


def part_compute(task: Task, name: str, cfg: dict, seed: int) -> list[dict]:
    rows = [run(task, name, "compute", "pretrained", 1, 0.0, cfg, seed)]
    methods = ["best_of_n", "svdd_pm"] + (["svdd_mc"] if TASKS[name][1] else []) + ["smc"]
    for method in methods:
        for m in cfg["candidates"]:
            if method == "smc" and m < 2:
                continue
            alpha = task.spec.smc_alpha if method == "smc" else 0.0
            rows.append(run(task, name, "compute", method, m, alpha, cfg, seed))
    return rows


def part_alpha(task: Task, name: str, cfg: dict, seed: int, smc: bool) -> list[dict]:
    m = cfg["alpha_m"]
    rows = [run(task, name, "alpha", "pretrained", 1, 0.0, cfg, seed),
            run(task, name, "alpha", "best_of_n", m, 0.0, cfg, seed)]
    rows += [run(task, name, "alpha", "svdd_pm", m, a, cfg, seed) for a in cfg["alphas"]]
    if smc:
        rows += [run(task, name, "alpha", "smc", m, a, cfg, seed) for a in cfg["alphas"] if a > 0]
    return rows


def write_part(out: Path, part: str, payload: dict) -> None:
    write_json(out / f"curves_{part}.json", payload)
    write_csv(out / f"curves_{part}.csv", payload["rows"], CSV_FIELDS)
    render(out)


def main(argv: list[str] | None = None) -> None:
    argv = list(argv or [])
    ap = argparse.ArgumentParser(prog="python -m benchmarks curves", description=__doc__.splitlines()[0])
    ap.add_argument("part", nargs="?", choices=["compute", "alpha", "all"], default=None)
    ap.add_argument("--quick", action="store_true", help="tiny settings (smoke test, ~1 min); output in a temp dir")
    ap.add_argument("--tasks", nargs="+", default=["dna", "qed"], choices=list(TASKS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-smc-sweep", action="store_true", help="alpha part: skip the SMC α sweep")
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
    torch.set_num_threads(args.threads)
    cfg = QUICK if args.quick else FULL
    tasks: dict[str, Task] = {}
    for part in (["compute", "alpha"] if args.part == "all" else [args.part]):
        meta = provenance("curves", argv, seed=args.seed, packages=("rdkit", "selfies", "ViennaRNA", "matplotlib"),
                          part=part, quick=args.quick)
        rows = []
        for name in args.tasks:
            if name not in tasks:
                tasks[name] = Task(TASKS[name][0], steps=cfg["steps"])
            task = tasks[name]
            rows += (part_compute(task, name, cfg, args.seed) if part == "compute"
                     else part_alpha(task, name, cfg, args.seed, smc=not args.no_smc_sweep))
        meta.update(num_samples=cfg["num_samples"], num_steps=cfg["steps"], candidates=cfg["candidates"],
                    alpha_m=cfg["alpha_m"], alphas=cfg["alphas"], max_batch=2048,
                    smc_alpha={n: tasks[n].spec.smc_alpha for n in args.tasks},
                    reward_label={n: tasks[n].spec.label for n in args.tasks},
                    diversity_label={n: TASKS[n][2] for n in args.tasks})
        write_part(out, part, {"meta": finish(meta, wall_key="total_wall_time_s"), "rows": rows})
        print(f"{part}: {len(rows)} runs in {meta['total_wall_time_s']:.0f} s -> {out}", flush=True)
    print((out / "curves.md").read_text())
