"""The paper's Table 1 on our models: every task (domain and reward) against every method.

Rows are the tasks of `benchmarks.tasks.TASKS` (images JPEG and log p(shirt) on the Fashion-MNIST
DDPM; QED, SA and PARP1 docking on the MOSES SELFIES model; DNA ARS1 activity; RNA -MFE), with
the settings of `ROWS` below. Columns are the methods of `benchmarks.methods.METHODS`:
pretrained, Best-of-N (N·M samples, top N kept), DPS (only with a differentiable surrogate),
SMC (N·M particles), SVDD-MC (shipped value network), SVDD-PM (α = 0) and SVDD-R (SVDD-PM with
resampling of the worst fraction each step).

Cells: median and 90th percentile of the reward with 95% percentile-bootstrap intervals,
diversity and naturalness (`Task.diversity`, `Task.naturalness`), model calls. Every cell is
stored in benchmarks/results/table1/<task>/<method>.json with its settings and per-sample
rewards and reused by later runs with the same settings (--force redoes).

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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .methods import METHODS, run_method
from .metrics import median_p90
from .report import RESULTS, ROOT, command_line, loadavg, machine_and_versions, md_table, write_csv, write_json
from .tasks import TASKS, Task, TaskSpec

PACKAGES = ("diffusers", "rdkit", "selfies", "vina", "ViennaRNA")


@dataclass(frozen=True)
class Row:
    """The Table-1 settings of one task."""

    name: str
    num_samples: int
    num_candidates: int
    num_steps: int
    resample_fraction: float = 0.05
    max_batch: int = 2048
    options: dict[str, dict] = field(default_factory=dict)  # per-method extra options
    note: str = ""
    dps_scale: float = 1.0

    @property
    def spec(self) -> TaskSpec:
        return TASKS[self.name]

    def unavailable(self, method: str) -> str | None:
        return METHODS[method].unavailable(self.spec)

    def quick(self) -> Row:
        """Tiny settings for a smoke run."""
        return replace(self, num_samples=4 if self.name == "molecules_docking" else 8, num_candidates=2,
                       num_steps=10 if self.name.startswith("images") else 8, resample_fraction=0.25,
                       options={k: {"select_steps": 4} for k in self.options})


ROWS: dict[str, Row] = {row.name: row for row in (
    Row("images_jpeg", 32, 8, 50, max_batch=256),
    Row("images_shirt", 32, 8, 50, max_batch=256),
    Row("molecules_qed", 128, 10, 32),
    Row("molecules_sa", 128, 10, 32),
    Row("molecules_docking", 16, 4, 32, resample_fraction=0.0625,
        options={"svdd_pm": {"select_steps": 16}, "svdd_r": {"select_steps": 16}},
        note="SMC weights by the docking value network (PM would dock N·M states per step); Vina exhaustiveness 1, "
             "60 s timeout per ligand (a timeout is NaN)"),
    Row("dna_ars1", 128, 10, 32),
    Row("rna_mfe", 128, 10, 32),
)}


def make_row(name: str, quick: bool) -> Row:
    if name not in ROWS:
        raise SystemExit(f"unknown row {name!r}; rows: {', '.join(ROWS)}")
    return ROWS[name].quick() if quick else ROWS[name]


# --------------------------------------------------------------------------- running cells

def settings(row: Row, method: str, seed: int) -> dict:
    """What decides a cell; a stored cell with the same settings is reused."""
    return {"task": row.name, "method": method, "num_samples": row.num_samples,
            "num_candidates": row.num_candidates, "num_steps": row.num_steps, "seed": seed,
            "smc_alpha": row.spec.smc_alpha if method == "smc" else None,
            "resample_fraction": row.resample_fraction if method == "svdd_r" else None,
            "options": row.options.get(method, {}), "max_batch": row.max_batch}


def run_cell(task: Task, row: Row, method: str, seed: int) -> dict:
    """Sample with `method` on `task` and summarise: reward quantiles with CIs, diversity, naturalness."""
    options = dict(row.options.get(method, {}))
    if method == "svdd_r":
        options["resample_fraction"] = row.resample_fraction
    if method == "dps":
        options["guidance_scale"] = row.dps_scale
    res = run_method(task, method, num_samples=row.num_samples, num_candidates=row.num_candidates, seed=seed,
                     max_batch=row.max_batch, progress=True, **options)
    start = time.perf_counter()
    summary = {**median_p90(res.rewards, seed=seed), "diversity": task.diversity(res), **task.naturalness(res),
               "model_calls": int(res.stats["model_calls"]), "reward_calls": int(res.stats["reward_calls"]),
               "value_calls": int(res.stats["value_calls"]), "wall_time_s": float(res.stats["wall_time_s"]),
               "metrics_time_s": time.perf_counter() - start}
    return {"settings": settings(row, method, seed), "summary": summary,
            "rewards": [None if not math.isfinite(r) else float(r) for r in res.rewards],
            "samples": [s if isinstance(s, str) else None for s in res.samples]}


def cell_path(out: Path, task: str, method: str) -> Path:
    return out / "table1" / task / f"{method}.json"


def environment() -> dict:
    return {**machine_and_versions(PACKAGES), "loadavg": loadavg()}


def todo_methods(row: Row, methods: list[str], out: Path, seed: int, force: bool) -> list[str]:
    """The methods of `row` that have no stored cell with the same settings (all with `force`)."""
    todo = []
    for method in methods:
        path = cell_path(out, row.name, method)
        if row.unavailable(method):
            continue
        if path.exists() and not force and json.loads(path.read_text()).get("settings") == settings(row, method, seed):
            print(f"{row.name}/{method}: kept {path}", flush=True)
            continue
        todo.append(method)
    return todo


def run_rows(rows: list[str], methods: list[str], out: Path, seed: int, quick: bool, force: bool,
             command: str) -> None:
    for name in rows:
        row = make_row(name, quick)
        todo = todo_methods(row, methods, out, seed, force)
        if not todo:
            continue
        task = Task(name, steps=row.num_steps, reward_workers=int(os.environ.get("DOCKING_WORKERS", "2")))
        try:
            for method in todo:
                print(f"{name}/{method} ...", flush=True)
                cell = {**run_cell(task, row, method, seed), "command": command, "environment": environment()}
                write_json(cell_path(out, name, method), cell)
                s = cell["summary"]
                print(f"{name}/{method}: median {s['median']:.4g} p90 {s['p90']:.4g} diversity {s['diversity']:.3f} "
                      f"calls {s['model_calls']} time {s['wall_time_s']:.0f}s", flush=True)
        finally:
            task.close()


# --------------------------------------------------------------------------- the table

def _fmt(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "nan"
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.1f}"


def naturalness_text(s: dict) -> str:
    parts = []
    if "validity" in s:
        parts.append(f"valid {s['validity']:.2f}, uniq {s['uniqueness']:.2f}")
    if "elbo_nats" in s:
        parts.append(f"ELBO {s['elbo_nats']:.1f}")
    if "neg_elbo_bits_per_dim" in s:
        parts.append(f"-ELBO {s['neg_elbo_bits_per_dim']:.3f} b/d")
    if "uniqueness" in s and "validity" not in s:
        parts.append(f"uniq {s['uniqueness']:.2f}")
    return "; ".join(parts)


def _with_ci(key: str) -> Callable[[dict], str]:
    return lambda s: f"{_fmt(s[key])} [{_fmt(s[key + '_ci'][0])}, {_fmt(s[key + '_ci'][1])}]"


# The columns after "method": (header, cell summary -> text). A budget column is one more entry.
COLUMNS: list[tuple[str, Callable[[dict], str]]] = [
    ("median [95% CI]", _with_ci("median")),
    ("90th pct [95% CI]", _with_ci("p90")),
    ("diversity", lambda s: f"{s['diversity']:.3f}"),
    ("naturalness", naturalness_text),
    ("model calls", lambda s: str(s["model_calls"])),
]


def row_caption(row: Row) -> str:
    extras = "".join(f"; {METHODS[m].label} {', '.join(f'{k} = {v}' for k, v in o.items())}"
                     for m, o in row.options.items())
    dps = "" if row.unavailable("dps") else f"; DPS guidance scale {row.dps_scale}"
    return (f"**{row.name}**: {row.spec.label}; N = {row.num_samples}, M = {row.num_candidates}, K = {row.num_steps}; "
            f"SMC α = {row.spec.smc_alpha}; SVDD-R resamples {row.resample_fraction:g} of the batch per step{dps}"
            f"{extras}" + (f". {row.note}" if row.note else ""))


def render(out: Path, rows: list[str], quick: bool) -> tuple[str, list[dict[str, Any]]]:
    """Markdown of Table 1 (one block per task) and the flat records for CSV/JSON."""
    lines, records = [], []
    blank = [""] * (len(COLUMNS) - 1)
    for name in rows:
        row = make_row(name, quick)
        cells = []
        for method, spec in METHODS.items():
            path = cell_path(out, name, method)
            if row.unavailable(method):
                cells.append([spec.label, f"n/a: {row.unavailable(method)}", *blank])
            elif not path.exists():
                cells.append([spec.label, "not run", *blank])
            else:
                cell = json.loads(path.read_text())
                s = cell["summary"]
                records.append({"task": name, "method": method, **cell["settings"],
                                **{k: v for k, v in s.items() if not isinstance(v, list)},
                                "median_ci_low": s["median_ci"][0], "median_ci_high": s["median_ci"][1],
                                "p90_ci_low": s["p90_ci"][0], "p90_ci_high": s["p90_ci"][1],
                                "command": cell["command"]})
                cells.append([spec.label, *(fn(s) for _, fn in COLUMNS)])
        lines += [row_caption(row), "", *md_table(["method", *(h for h, _ in COLUMNS)], cells), ""]
    return "\n".join(lines), records


HEADER = ("# Table 1 on our models\n\nOne seed (0) per cell; intervals are 95% percentile bootstraps over "
          "the N samples. Higher reward is better. Diversity: images 1 - cosine of classifier embeddings, "
          "sequences one-hot pairwise distance, molecules 1 - Tanimoto (Morgan r=2). Naturalness: images "
          "-ELBO under the DDPM in bits/dim (lower = more natural); sequences and molecules ELBO in nats "
          "(higher = more natural). DPS's guidance scale (1.0) was the best median reward on seed 1 among "
          "{0.03, 0.1, 0.3, 1.0} (seed 1 medians -2.53, -0.128, -0.0186, -0.0063). Commands per cell are in "
          "table1.json.\n\n")


def write_table(out: Path, rows: list[str], quick: bool, update_readme: bool) -> None:
    md, records = render(out, rows, quick)
    (out / "table1.md").write_text(HEADER + md)
    write_json(out / "table1.json", {"rows": records, "environment": environment()})
    write_csv(out / "table1.csv", records)
    if update_readme:
        readme = ROOT / "benchmarks" / "README.md"
        text = readme.read_text()
        start, end = "<!-- table1:start -->", "<!-- table1:end -->"
        if start not in text or end not in text:
            raise SystemExit(f"benchmarks/README.md has no {start} ... {end} block to update")
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        readme.write_text(before + start + "\n" + md + end + after)
    print(md)


def main(argv: list[str] | None = None) -> None:
    argv = list(argv or [])
    ap = argparse.ArgumentParser(prog="python -m benchmarks table1", description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods")
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
    for bad in [r for r in rows if r not in ROWS] + [m for m in methods if m not in METHODS]:
        raise SystemExit(f"unknown row or method {bad!r}; rows: {', '.join(ROWS)}; methods: {', '.join(METHODS)}")
    out = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    if not args.render:
        run_rows(rows, methods, out, args.seed, args.quick, args.force, command_line("table1", argv))
    write_table(out, [r for r in ROWS if r in rows], args.quick, args.update_readme and not args.quick)
