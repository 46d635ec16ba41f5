"""The paper's Table 1 on our models: every task (domain and reward) against every method, with
three budgets per cell (model calls, reward calls, wall seconds; CPU seconds too).

Rows are the tasks of `benchmarks.tasks.TASKS` (images JPEG and log p(shirt) on the Fashion-MNIST
DDPM; QED, SA and PARP1 docking on the MOSES SELFIES model; DNA ARS1 activity; RNA -MFE; protein
instability on ubiquitin with ProteinMPNN), with the settings of `ROWS` below. Columns are the
methods of `TABLE_METHODS` (`benchmarks.methods.METHODS`): pretrained, Best-of-N, DPS (only with a
differentiable surrogate), SMC, FK, SVDD-MC, SVDD-PM, SVDD-R, beam and refine, each at the budget of
M candidates (about N·M·K model calls; pretrained, SVDD-MC and DPS make N·K).

α per method: a sweep of three values (`methods.alpha_grid`, the same size for every method that
has an α) on another seed (seed + 1); the chosen α has the best median among those whose
uniqueness reaches 0.95 (molecules 0.99), see `budgets.choose_alpha`.

Cells: median and 90th percentile of the reward with 95% percentile-bootstrap intervals,
diversity and naturalness (`Task.diversity`, `Task.naturalness`), model calls, reward calls
(objects actually scored), wall and CPU seconds and the load average around the run. Every cell is
stored in benchmarks/results/table1/<task>/<method>.json (sweep cells under sweep/) with its
settings and per-sample rewards and reused by later runs with the same settings (--force redoes).

    python -m benchmarks table1                            # every row (hours on 2 cores)
    python -m benchmarks table1 --rows dna_ars1,rna_mfe
    python -m benchmarks table1 --quick                    # tiny settings, a few minutes
    python -m benchmarks table1 --render --update-readme   # assemble the table only
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from . import table1_report
from .budgets import choose_alpha, min_unique
from .methods import METHODS, alpha_grid, run_method
from .metrics import median_p90
from .report import RESULTS, command_line, loadavg, machine_and_versions, write_json
from .tasks import TASKS, Task, TaskSpec

PACKAGES = ("diffusers", "rdkit", "selfies", "vina", "ViennaRNA", "proteinmpnn")
TABLE_METHODS = (
    "pretrained",
    "best_of_n",
    "dps",
    "smc",
    "fk",
    "svdd_mc",
    "svdd_pm",
    "svdd_r",
    "beam",
    "refine",
    "random_search",
    "zero_order",
)
DOCKING_COST = "not run (cost: a Vina docking per scored candidate)"


@dataclass(frozen=True)
class Row:
    """The Table-1 settings of one task. sweep_samples: N of the α-sweep runs (default N; SVDD-R always
    sweeps at N, since it resamples floor(fraction·N) samples); sweep:
    whether α is swept (else each method's default); skip: method -> why it is not run."""

    name: str
    num_samples: int
    num_candidates: int
    num_steps: int
    resample_fraction: float = 0.05
    max_batch: int | str = "auto"
    options: dict[str, dict] = field(default_factory=dict)  # per-method extra options
    note: str = ""
    dps_scale: float = 1.0
    sweep_samples: int | None = None
    sweep: bool = True
    skip: dict[str, str] = field(default_factory=dict)

    @property
    def spec(self) -> TaskSpec:
        return TASKS[self.name]

    def unavailable(self, method: str) -> str | None:
        return METHODS[method].unavailable(self.spec) or self.skip.get(method)

    def quick(self) -> Row:
        """Tiny settings for a smoke run."""
        return replace(self, num_samples=4 if self.name == "molecules_docking" else 8, num_candidates=2,
                       num_steps=10 if self.name.startswith("images") else 8, resample_fraction=0.25,
                       sweep_samples=None, options={k: {"select_steps": 4} for k in self.options})


ROWS: dict[str, Row] = {row.name: row for row in (
    Row("images_jpeg", 16, 8, 50, resample_fraction=0.0625),
    Row("images_shirt", 16, 8, 50, resample_fraction=0.0625),
    Row("images_flow_jpeg", 16, 8, 20, resample_fraction=0.0625,
        note="class-conditional DiT trained by flow matching on a tiny VAE's latents, sampled unconditionally "
             "(null class, no CFG) with the DPM-Solver flow schedule stepped stochastically (SVDDScheduler's eta)"),
    Row("images_flow_shirt", 16, 8, 20, resample_fraction=0.0625,
        note="the DiT flow model as in images_flow_jpeg; DPS differentiates through the VAE decoder"),
    Row("molecules_qed", 32, 8, 32),
    Row("molecules_sa", 32, 8, 32),
    Row("molecules_docking", 16, 4, 32, resample_fraction=0.0625, max_batch=2048, sweep=False,
        options={"svdd_pm": {"select_steps": 16}, "svdd_r": {"select_steps": 16}},
        skip={m: DOCKING_COST for m in ("fk", "beam", "refine")},
        note="SMC weights by the docking value network (PM would dock N·M states per step); Vina exhaustiveness 1, "
             "60 s timeout per ligand (a timeout is NaN). Cells from the earlier run (before the reward cache: reward "
             "calls count every object handed to Vina; no CPU seconds recorded); α not swept"),
    Row("dna_ars1", 32, 8, 32),
    Row("rna_mfe", 32, 8, 32, sweep_samples=16),
    Row("proteins_instability", 16, 8, 25, resample_fraction=0.0625, max_batch=256, sweep_samples=8,
        note="ProteinMPNN (vanilla v_48_020) at T = 0.1 on 1ubi; 256-row model calls (faster than 64 for ProteinMPNN)"),
)}


def make_row(name: str, quick: bool) -> Row:
    if name not in ROWS:
        raise SystemExit(f"unknown row {name!r}; rows: {', '.join(ROWS)}")
    return ROWS[name].quick() if quick else ROWS[name]


# --------------------------------------------------------------------------- running cells

def method_options(row: Row, method: str) -> dict[str, Any]:
    options = dict(row.options.get(method, {}))
    if method == "svdd_r":
        options["resample_fraction"] = row.resample_fraction
    if method == "dps":
        options["guidance_scale"] = row.dps_scale
    return options


def settings(row: Row, method: str, seed: int, alpha: float | None, n: int) -> dict:
    """What decides a cell; a stored cell with the same settings is reused."""
    return {"task": row.name, "method": method, "num_samples": n, "num_candidates": row.num_candidates,
            "num_steps": row.num_steps, "seed": seed, "alpha": alpha, "options": method_options(row, method),
            "max_batch": row.max_batch}


def summarise(task: Task, res: Any, seed: int) -> dict[str, Any]:
    """Reward quantiles with CIs, diversity, uniqueness, naturalness and the run's budgets."""
    start = time.perf_counter()
    stats = res.stats
    summary = {**median_p90(res.rewards, seed=seed), "diversity": task.diversity(res),
               "unique": task.validity_uniqueness(res)[1], **task.naturalness(res),
               **{k: int(stats.get(k, 0)) for k in ("model_calls", "reward_calls", "reward_cache_hits", "value_calls")},
               "wall_time_s": float(stats["wall_time_s"]), "model_time_s": float(stats.get("model_time_s", 0.0)),
               "reward_time_s": float(stats.get("reward_time_s", 0.0)) + float(stats.get("decode_time_s", 0.0))}
    summary["metrics_time_s"] = time.perf_counter() - start
    return summary


class Cells:
    """The stored cells of one row: reused when their settings match, else run (the task is loaded
    only when a cell has to run)."""

    def __init__(self, row: Row, out: Path, command: str, force: bool):
        self.row, self.out, self.command, self.force = row, out, command, force
        self._task: Task | None = None

    @property
    def task(self) -> Task:
        if self._task is None:
            self._task = Task(self.row.name, steps=self.row.num_steps,
                              reward_workers=int(os.environ.get("DOCKING_WORKERS", "2")))
        return self._task

    def get(self, method: str, seed: int, alpha: float | None, n: int, path: Path, **extra: Any) -> dict:
        want = settings(self.row, method, seed, alpha, n)
        if path.exists() and not self.force:
            cell = json.loads(path.read_text())
            if cell.get("settings") == want:
                print(f"{self.row.name}/{path.stem}: kept", flush=True)
                return cell
        print(f"{self.row.name}/{path.stem} (seed {seed}, α {alpha}) ...", flush=True)
        task = self.task  # loaded before the clocks start
        load_start, cpu = loadavg(), time.process_time()
        res = run_method(task, method, num_samples=n, num_candidates=self.row.num_candidates, seed=seed,
                         max_batch=self.row.max_batch, alpha=alpha, **method_options(self.row, method))
        cpu = time.process_time() - cpu
        summary = {**summarise(task, res, seed), "cpu_time_s": cpu, "loadavg_start": load_start,
                   "loadavg_end": loadavg()}
        cell = {"settings": want, "summary": summary, **extra,
                "rewards": [None if not math.isfinite(r) else float(r) for r in res.rewards],
                "samples": [s if isinstance(s, str) else None for s in res.samples],
                "command": self.command, "environment": environment()}
        write_json(path, cell)
        s = summary
        print(f"  median {s['median']:.4g} unique {s['unique']:.2f} model {s['model_calls']} reward "
              f"{s['reward_calls']} wall {s['wall_time_s']:.1f}s cpu {cpu:.1f}s load {load_start}", flush=True)
        return cell

    def close(self) -> None:
        if self._task is not None:
            self._task.close()


def cell_path(out: Path, task: str, method: str) -> Path:
    return out / "table1" / task / f"{method}.json"


def sweep_path(out: Path, task: str, method: str, alpha: float) -> Path:
    return out / "table1" / task / "sweep" / f"{method}_alpha{alpha:g}.json"


def environment() -> dict:
    return {**machine_and_versions(PACKAGES), "loadavg": loadavg()}


def run_row(row: Row, methods: list[str], out: Path, seed: int, force: bool, command: str) -> None:
    """The α sweep (seed + 1) and the reported cell (seed) of every method of `row`."""
    cells = Cells(row, out, command, force)
    try:
        for method in methods:
            if row.unavailable(method):
                continue
            alpha, sweep = None, None
            if row.sweep and alpha_grid(method, row.spec):
                # SVDD-R resamples floor(fraction·N) samples, none at a small N: its sweep keeps the reported N
                n = row.num_samples if method == "svdd_r" else row.sweep_samples or row.num_samples
                points = []
                for a in alpha_grid(method, row.spec):
                    c = cells.get(method, seed + 1, a, n, sweep_path(out, row.name, method, a))
                    points.append({"alpha": a, **{k: c["summary"][k] for k in ("median", "unique", "diversity")}})
                alpha, why = choose_alpha(points, min_unique(row.spec.domain))
                sweep = {"seed": seed + 1, "num_samples": n, "points": points, "chosen": alpha, "rule": why}
            cells.get(method, seed, alpha, row.num_samples, cell_path(out, row.name, method), sweep=sweep)
    finally:
        cells.close()


def main(argv: list[str] | None = None) -> None:
    argv = list(argv or [])
    ap = argparse.ArgumentParser(prog="python -m benchmarks table1", description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows")
    ap.add_argument("--methods", default=",".join(TABLE_METHODS), help="comma-separated methods")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="tiny settings; results under benchmarks/results/quick/")
    ap.add_argument("--force", action="store_true", help="recompute cells that are already stored")
    ap.add_argument("--render", action="store_true", help="only assemble the table from stored cells")
    ap.add_argument("--update-readme", action="store_true", help="write the table into benchmarks/README.md")
    ap.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results[/quick])")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = [r for r in args.rows.split(",") if r]
    methods = [m for m in args.methods.split(",") if m]
    for bad in [r for r in rows if r not in ROWS] + [m for m in methods if m not in TABLE_METHODS]:
        raise SystemExit(f"unknown row or method {bad!r}; rows: {', '.join(ROWS)}; methods: {', '.join(TABLE_METHODS)}")
    out = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    if not args.render:
        for name in rows:
            run_row(make_row(name, args.quick), methods, out, args.seed, args.force, command_line("table1", argv))
    table1_report.write_table(out, [make_row(r, args.quick) for r in ROWS if r in rows],
                              args.update_readme and not args.quick, environment())


