"""The markdown, CSV and JSON of Table 1, from its stored cells (`python -m benchmarks table1 --render`).

One block per task: the cells (reward, diversity, naturalness, α and the three budgets), then who
wins at each budget (`budgets.pareto`) and the issue's target at equal model calls; table1.md adds
the α sweeps.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .budgets import BUDGETS, front_notes, min_unique
from .methods import METHODS
from .report import ROOT, md_table, write_csv, write_json

SVDD_FAMILY = ("svdd_mc", "svdd_pm", "svdd_r", "beam", "refine")  # the methods built on SVDD's selection


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
    if "mpnn_loglik" in s:
        parts.append(f"LL {s['mpnn_loglik']:.3f}, rec {s['recovery']:.2f}")
    if "uniqueness" in s and "validity" not in s:
        parts.append(f"uniq {s['uniqueness']:.2f}")
    return "; ".join(parts)


def _with_ci(key: str) -> Callable[[dict], str]:
    return lambda s: f"{_fmt(s[key])} [{_fmt(s[key + '_ci'][0])}, {_fmt(s[key + '_ci'][1])}]"


def _seconds(key: str) -> Callable[[dict], str]:
    return lambda s: f"{s[key]:.1f}" if s.get(key) is not None else "n/a"


# The columns after "method": (header, cell -> text). A budget column is one more entry.
COLUMNS: list[tuple[str, Callable[[dict], str]]] = [
    ("median [95% CI]", lambda c: _with_ci("median")(c["summary"])),
    ("90th pct [95% CI]", lambda c: _with_ci("p90")(c["summary"])),
    ("diversity", lambda c: f"{c['summary']['diversity']:.3f}"),
    ("naturalness", lambda c: naturalness_text(c["summary"])),
    ("α", lambda c: "-" if c["settings"].get("alpha") is None else f"{c['settings']['alpha']:g}"),
    ("model calls", lambda c: str(c["summary"]["model_calls"])),
    ("reward calls", lambda c: str(c["summary"]["reward_calls"])),
    ("wall s", lambda c: _seconds("wall_time_s")(c["summary"])),
    ("CPU s", lambda c: _seconds("cpu_time_s")(c["summary"])),
]


def row_caption(row: Any, cells: dict[str, dict]) -> str:
    extras = "".join(f"; {METHODS[m].label} {', '.join(f'{k} = {v}' for k, v in o.items())}"
                     for m, o in row.options.items())
    dps = "" if row.unavailable("dps") else f"; DPS guidance scale {row.dps_scale}"
    sweep = (f"; α per method: best of 3 on seed 1 with N = {row.sweep_samples or row.num_samples}"
             + (f" (SVDD-R N = {row.num_samples})" if row.sweep_samples else "") if row.sweep else "")
    loads = [v for c in cells.values() for v in (c["summary"].get("loadavg_start") or [None])[:1] if v is not None]
    load = f"; 1-min load average {min(loads):.2f}-{max(loads):.2f} at the cells' start (2 cores)" if loads else ""
    return (f"**{row.name}**: {row.spec.label}; N = {row.num_samples}, M = {row.num_candidates}, K = {row.num_steps}"
            f"{sweep}; SVDD-R resamples {row.resample_fraction:g} of the batch per step{dps}{extras}{load}"
            + (f". {row.note}" if row.note else ""))


def points(cells: dict[str, dict]) -> list[dict[str, Any]]:
    """One budget point per cell: method, median, uniqueness and the three budgets."""
    return [{"method": m, "median": c["summary"]["median"], "diversity": c["summary"]["diversity"],
             "unique": c["summary"].get("unique", c["summary"].get("uniqueness")),
             **{k: c["summary"].get(k) for k in BUDGETS}} for m, c in cells.items()]


def _num(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def budget_notes(row: Any, cells: dict[str, dict]) -> list[str]:
    """Who wins at each budget, and the target at equal model calls."""
    floor = min_unique(row.spec.domain)
    pts = points(cells)
    label = lambda p: METHODS[p["method"]].label  # noqa: E731
    notes = []
    ours = [p for p in pts if p["method"] in SVDD_FAMILY]
    others = [p for p in pts if p["method"] not in SVDD_FAMILY]
    best = max((p for p in ours if p["unique"] is None or p["unique"] >= floor), key=lambda p: p["median"],
               default=None)
    if best and others:
        rival = max(others, key=lambda p: p["median"])
        rival_ok = max((p for p in others if p["unique"] is None or p["unique"] >= floor), key=lambda p: p["median"],
                       default=None)
        met = best["median"] >= rival["median"]
        pre = next((p for p in pts if p["method"] == "pretrained"), None)
        text = (f"Target at equal model calls: svdd's best method with uniqueness ≥ {floor:g} is {label(best)} "
                f"({_fmt(best['median'])}, diversity {_num(best['diversity'], '.3f')}"
                + (f" vs pretrained {_num(pre['diversity'], '.3f')}" if pre else "") + f"); the best other method is "
                f"{label(rival)} ({_fmt(rival['median'])}, uniqueness {_num(rival['unique'], '.2f')}): "
                f"**{'met' if met else 'NOT met'}**")
        if not met and rival_ok and best["median"] >= rival_ok["median"]:
            text += (f" (met against the others with uniqueness ≥ {floor:g}: best {label(rival_ok)} "
                     f"{_fmt(rival_ok['median'])})")
        notes.append(text + ".")
    return notes + front_notes(pts, floor, label)


def load_cells(out: Path, row: Any, methods: tuple[str, ...]) -> dict[str, dict]:
    cells = {}
    for method in methods:
        path = out / "table1" / row.name / f"{method}.json"
        if not row.unavailable(method) and path.exists():
            cells[method] = json.loads(path.read_text())
    return cells


def render(out: Path, rows: list[Any]) -> tuple[str, str, list[dict[str, Any]]]:
    """(the README markdown, the α sweeps' markdown, the flat records for CSV/JSON)."""
    from .table1 import TABLE_METHODS

    lines, sweeps, records = [], [], []
    blank = [""] * (len(COLUMNS) - 1)
    for row in rows:
        cells = load_cells(out, row, TABLE_METHODS)
        table = []
        for method in TABLE_METHODS:
            label = METHODS[method].label
            if row.unavailable(method):
                table.append([label, f"n/a: {row.unavailable(method)}", *blank])
            elif method not in cells:
                table.append([label, "not run", *blank])
            else:
                cell = cells[method]
                s = cell["summary"]
                records.append({"task": row.name, **cell["settings"],
                                **{k: v for k, v in s.items() if not isinstance(v, list)},
                                "median_ci_low": s["median_ci"][0], "median_ci_high": s["median_ci"][1],
                                "p90_ci_low": s["p90_ci"][0], "p90_ci_high": s["p90_ci"][1],
                                "command": cell["command"]})
                table.append([label, *(fn(cell) for _, fn in COLUMNS)])
        lines += [row_caption(row, cells), "", *md_table(["method", *(h for h, _ in COLUMNS)], table), "",
                  *(f"- {n}" for n in budget_notes(row, cells)), ""]
        sweeps += sweep_md(row, cells)
    return "\n".join(lines), "\n".join(sweeps), records


def sweep_md(row: Any, cells: dict[str, dict]) -> list[str]:
    swept = {m: c["sweep"] for m, c in cells.items() if c.get("sweep")}
    if not swept:
        return []
    out = [f"### {row.name}", "", *md_table(
        ["method", "α swept (seed 1): median / uniqueness", "chosen", "rule"],
        [[METHODS[m].label, "; ".join(f"{p['alpha']:g}: {_fmt(p['median'])} / {p['unique']:.2f}" for p in s["points"]),
          f"{s['chosen']:g}", s["rule"]] for m, s in swept.items()]), ""]
    return out


HEADER = ("# Table 1 on our models\n\nOne seed (0) per cell; intervals are 95% percentile bootstraps over "
          "the N samples. Higher reward is better. Every method gets the budget of M candidates per sample: about "
          "N·M·K model calls (pretrained, SVDD-MC and DPS make N·K; refine runs SVDD-PM at M/2 and spends the rest "
          "on two re-noisings to half the chain). Reward calls: objects actually scored (the sampler's reward cache "
          "answers repeats). Wall and CPU seconds of the sampling alone, one torch thread, on a 2-core machine "
          "shared with other jobs (the load average is in each caption and cell). Diversity: images 1 - cosine of "
          "classifier embeddings, sequences and proteins one-hot pairwise distance, molecules 1 - Tanimoto (Morgan "
          "r=2). Naturalness: images -ELBO under the DDPM in bits/dim (lower = more natural); sequences and "
          "molecules ELBO in nats (higher = more natural); proteins ProteinMPNN's N->C log-likelihood per residue "
          "(LL, higher = more natural) and native recovery. DPS's guidance scale (1.0) was the best median reward "
          "on seed 1 among {0.03, 0.1, 0.3, 1.0}. Commands per cell are in table1.json.\n\n")


def write_table(out: Path, rows: list[Any], update_readme: bool, environment: dict) -> None:
    md, sweeps, records = render(out, rows)
    text = HEADER + md + ("\n## α sweeps\n\nThree α per method (0, a/10, a for the selection methods; a/10, a, 10a "
                          "for SMC and FK; a = the task's reference temperature), on seed 1; the chosen α is the "
                          "best median with uniqueness ≥ 0.95 (molecules 0.99).\n\n" + sweeps if sweeps else "")
    (out / "table1.md").write_text(text)
    write_json(out / "table1.json", {"rows": records, "environment": environment})
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
