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

Tasks (all offline from the committed weights, K = 32 steps, N = 64, seed 0):
  dna  "dna-ars1" model, reward ARS1Activity (standardised predicted enrichment), MC value
       "dna-ars1-activity"; diversity = mean pairwise normalised Hamming distance (= one-hot distance / 2L)
  qed  MOSES SELFIES model, reward QED in [0, 1]; diversity = mean pairwise Tanimoto distance
       (Morgan r = 2, 2048 bits), plus validity and uniqueness of canonical SMILES
  rna  (optional, --tasks ... rna; RNAfold makes it slow) "rna-hairpin", reward -MFE, MC value "rna-hairpin-mfe"

Model calls are item-level denoiser evaluations (`Result.stats["model_calls"]`); SVDD-MC makes about
N per step whatever M is and spends its effort in value-network calls instead (`value_calls`), so it
sits to the left on the calls axis; the wall-time panel shows what that costs. Wall times are taken on
a shared machine (one torch thread); the load average at start and end is recorded.

    OMP_NUM_THREADS=1 python benchmarks/curves.py all            # full settings, ~25 min on one core
    OMP_NUM_THREADS=1 python benchmarks/curves.py all --quick    # smoke test (~1 min), writes to a temp dir
    OMP_NUM_THREADS=1 python benchmarks/curves.py --render-only  # rewrite the md/png from the JSON files
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import svdd  # noqa: E402
from benchmarks.metrics import one_hot_distance, uniqueness  # noqa: E402
from benchmarks.provenance import machine_and_versions  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
FULL = {"num_samples": 64, "steps": 32, "candidates": [1, 2, 4, 8, 16], "alpha_m": 10,
        "alphas": [0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0]}
QUICK = {"num_samples": 16, "steps": 16, "candidates": [1, 2, 4], "alpha_m": 4, "alphas": [0.0, 0.01, 0.1]}
METHOD_LABEL = {"pretrained": "pretrained", "best_of_n": "Best-of-N", "svdd_pm": "SVDD-PM", "svdd_mc": "SVDD-MC",
                "smc": "SMC"}
COLORS = {"pretrained": "black", "best_of_n": "tab:blue", "svdd_pm": "tab:red", "svdd_mc": "tab:orange",
          "smc": "tab:green"}
CSV_FIELDS = ["part", "task", "method", "M", "alpha", "median", "p90", "mean", "diversity", "unique", "valid",
              "invalid", "model_calls", "reward_calls", "value_calls", "wall_time_s", "num_samples", "num_steps",
              "seed", "loadavg_1min"]


# --------------------------------------------------------------------------------------------- tasks

class Task:
    """A process, a reward, an optional MC value, an SMC α and a diversity measure."""

    def __init__(self, name: str, steps: int):
        self.name = name
        if name in ("dna", "rna"):
            from svdd.domains.sequences import ARS1Activity, RNAFold, load_pretrained, load_value

            model, reward, value, smc_alpha = {
                "dna": ("dna-ars1", ARS1Activity, "dna-ars1-activity", 0.1),
                "rna": ("rna-hairpin", RNAFold, "rna-hairpin-mfe", 1.0),
            }[name]
            self.process = load_pretrained(model, num_steps=steps)
            self.reward = reward()
            self.value = load_value(value)
            self.smc_alpha = smc_alpha
            self.reward_label = {"dna": "ARS1Activity (standardised)", "rna": "-MFE (kcal/mol)"}[name]
        elif name == "qed":
            from svdd.domains.molecules import QED, load_pretrained

            self.process = load_pretrained(num_steps=steps)
            self.reward = QED()
            self.value = None
            self.smc_alpha = 0.02
            self.reward_label = "QED"
        else:
            raise ValueError(name)

    def diversity(self, samples: list) -> dict:
        if self.name == "qed":
            from svdd.domains.molecules import canonical, mean_pairwise_tanimoto_distance

            canon = [canonical(s) for s in samples]
            valid = [c for c in canon if c]
            return {"diversity": mean_pairwise_tanimoto_distance(samples), "valid": len(valid) / len(canon),
                    "unique": uniqueness(valid)}
        return {"diversity": one_hot_distance(self.process.tokenizer.encode(samples, length=self.process.length)),
                "valid": 1.0, "unique": uniqueness(samples)}


# --------------------------------------------------------------------------------------------- runs

def run(task: Task, part: str, method: str, m: int, alpha: float, cfg: dict, seed: int) -> dict:
    kw = dict(num_samples=cfg["num_samples"], num_candidates=m, alpha=alpha, max_batch=2048, progress=False,
              generator=torch.Generator().manual_seed(seed))
    name = {"svdd_pm": "svdd", "svdd_mc": "svdd"}.get(method, method)
    if method == "svdd_mc":
        kw["value"] = task.value
    res = svdd.sample(task.process, task.reward, method=name, **kw)
    r = np.asarray(res.rewards, dtype=np.float64)
    ok = np.isfinite(r)
    row = {"part": part, "task": task.name, "method": method, "M": m, "alpha": float(alpha),
           "median": float(np.median(r[ok])) if ok.any() else float("nan"),
           "p90": float(np.quantile(r[ok], 0.9)) if ok.any() else float("nan"),
           "mean": float(r[ok].mean()) if ok.any() else float("nan"),
           **task.diversity(res.samples), "invalid": int((~ok).sum()),
           "model_calls": int(res.stats["model_calls"]), "reward_calls": int(res.stats["reward_calls"]),
           "value_calls": int(res.stats.get("value_calls", 0)), "wall_time_s": float(res.stats["wall_time_s"]),
           "num_samples": cfg["num_samples"], "num_steps": cfg["steps"], "seed": seed,
           "loadavg_1min": os.getloadavg()[0]}
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    return row


def part_compute(task: Task, cfg: dict, seed: int) -> list[dict]:
    rows = [run(task, "compute", "pretrained", 1, 0.0, cfg, seed)]
    methods = ["best_of_n", "svdd_pm"] + (["svdd_mc"] if task.value is not None else []) + ["smc"]
    for method in methods:
        for m in cfg["candidates"]:
            if method == "smc" and m < 2:
                continue
            rows.append(run(task, "compute", method, m, task.smc_alpha if method == "smc" else 0.0, cfg, seed))
    return rows


def part_alpha(task: Task, cfg: dict, seed: int, smc: bool) -> list[dict]:
    m = cfg["alpha_m"]
    rows = [run(task, "alpha", "pretrained", 1, 0.0, cfg, seed), run(task, "alpha", "best_of_n", m, 0.0, cfg, seed)]
    rows += [run(task, "alpha", "svdd_pm", m, a, cfg, seed) for a in cfg["alphas"]]
    if smc:
        rows += [run(task, "alpha", "smc", m, a, cfg, seed) for a in cfg["alphas"] if a > 0]
    return rows


# --------------------------------------------------------------------------------------------- output

def versions() -> dict:
    out = machine_and_versions(("torch", "numpy", "rdkit", "selfies", "ViennaRNA", "matplotlib"))
    try:
        out["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                           check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "svdd", "domains"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.split("\n")
        out["uncommitted_library_files"] = sorted(line[3:] for line in dirty if line.strip())
    except (OSError, subprocess.CalledProcessError):
        out["git_commit"] = None
    return out


def fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{digits}f}"


def label(row: dict) -> str:
    return METHOD_LABEL[row["method"]]


def compute_md(payload: dict) -> str:
    rows, meta = payload["rows"], payload["meta"]
    out = ["## Part 1: reward against compute", "",
           f"Command: `{meta['command']}`  ",
           f"N = {meta['num_samples']}, K = {meta['num_steps']}, seed {meta['seed']}, M in {meta['candidates']}; "
           "SVDD α = 0 (argmax); SMC α = " + ", ".join(f"{k} {v:g}" for k, v in meta["smc_alpha"].items()) + " (N·M particles, PM value, multinomial resampling "
           "every step). Best-of-N at M draws N·M pretrained samples (same model calls as SVDD-PM at M).", ""]
    for task in dict.fromkeys(r["task"] for r in rows):
        trows = [r for r in rows if r["task"] == task]
        out += [f"### {task} ({meta['reward_label'][task]})", "",
                "| method | M | median | 90% | mean | diversity | unique | model calls | value calls | time (s) |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for r in trows:
            out.append(f"| {label(r)} | {r['M']} | {fmt(r['median'])} | {fmt(r['p90'])} | {fmt(r['mean'])} | "
                       f"{fmt(r['diversity'])} | {fmt(r['unique'], 2)} | {r['model_calls']} | {r['value_calls']} | "
                       f"{r['wall_time_s']:.1f} |")
        out += [""] + [f"- {line}" for line in compute_notes(trows)] + [""]
    return "\n".join(out)


def compute_notes(rows: list[dict]) -> list[str]:
    """Plain statements of who wins at equal M (equal model calls for Best-of-N, SVDD-PM, SMC)."""
    by = {(r["method"], r["M"]): r for r in rows}
    notes = []
    ms = sorted({r["M"] for r in rows if r["method"] == "svdd_pm"})
    for m in ms:
        pm, bon, smc, mc = (by.get((k, m)) for k in ("svdd_pm", "best_of_n", "smc", "svdd_mc"))
        if pm is None:
            continue
        parts = []
        if bon:
            parts.append(f"Best-of-N {fmt(bon['median'])} ({winner(pm['median'], bon['median'], 'Best-of-N')})")
        if smc:
            parts.append(f"SMC {fmt(smc['median'])} ({winner(pm['median'], smc['median'], 'SMC')}; uniqueness "
                         f"{smc['unique']:.2f}, diversity {fmt(smc['diversity'])} vs SVDD-PM {pm['unique']:.2f}, "
                         f"{fmt(pm['diversity'])})")
        if mc:
            parts.append(f"SVDD-MC {fmt(mc['median'])} with {mc['model_calls']} model calls, "
                         f"{mc['wall_time_s']:.3g} s vs SVDD-PM {pm['wall_time_s']:.3g} s")
        notes.append(f"M = {m}: SVDD-PM median {fmt(pm['median'])} at {pm['model_calls']} model calls; " + "; ".join(parts) + ".")
    for m in ms:  # the time axis: the best Best-of-N run that took no longer than SVDD-PM at this M
        pm = by.get(("svdd_pm", m))
        cheaper = [r for r in rows if r["method"] == "best_of_n" and r["wall_time_s"] <= pm["wall_time_s"]]
        if m > 1 and cheaper:
            b = max(cheaper, key=lambda r: r["median"])
            if b["median"] >= pm["median"]:
                notes.append(f"At equal wall time Best-of-N WINS over SVDD-PM M = {m} ({pm['wall_time_s']:.3g} s, median "
                             f"{fmt(pm['median'])}): Best-of-N M = {b['M']} reaches {fmt(b['median'])} in "
                             f"{b['wall_time_s']:.3g} s (SVDD-PM also pays N·M reward calls per step).")
    for mc in (r for r in rows if r["method"] == "svdd_mc" and r["M"] > 1):
        faster = [r for r in rows if r["method"] == "svdd_pm" and r["wall_time_s"] <= mc["wall_time_s"]]
        b = max(faster, key=lambda r: r["median"]) if faster else None
        if b is not None and b["median"] > mc["median"]:
            notes.append(f"SVDD-MC M = {mc['M']} uses only {mc['model_calls']} model calls but "
                         f"{mc['value_calls']} value-network calls ({mc['wall_time_s']:.3g} s, median {fmt(mc['median'])}); "
                         f"SVDD-PM M = {b['M']} gets {fmt(b['median'])} in {b['wall_time_s']:.3g} s, so MC LOSES at equal "
                         "wall time here.")
    pre, pm1 = by.get(("pretrained", 1)), by.get(("svdd_pm", 1))
    if pre and pm1 and pm1["wall_time_s"] > 1.5 * pre["wall_time_s"]:
        notes.append(f"SVDD-PM at M = 1 returns the pretrained samples but still scores the single child every step "
                     f"({pm1['value_calls']} value calls, {pm1['wall_time_s']:.3g} s vs {pre['wall_time_s']:.3g} s).")
    top = max((r for r in rows if r["method"] == "svdd_pm"), key=lambda r: r["M"], default=None)
    if pre and top:
        notes.append(f"Diversity: pretrained {fmt(pre['diversity'])}, SVDD-PM M = {top['M']} {fmt(top['diversity'])}, "
                     + ", ".join(f"{METHOD_LABEL[k]} M = {top['M']} {fmt(by[(k, top['M'])]['diversity'])}"
                                 for k in ("best_of_n", "svdd_mc", "smc") if (k, top["M"]) in by) + ".")
    smc = [r for r in rows if r["method"] == "smc"]
    dup = [f"{r['M']}: {r['unique']:.2f}" for r in smc if r["unique"] < 0.95]
    if dup:
        notes.append("SMC returns duplicate samples (uniqueness at M = " + ", ".join(dup) + "): its resampling "
                     "collapses the particles onto a few lineages; diversity in the CSV.")
    return notes


def winner(pm: float, other: float, name: str) -> str:
    if pm == other:
        return "tie"
    return "SVDD-PM wins" if pm > other else f"{name} WINS"


def alpha_md(payload: dict) -> str:
    rows, meta = payload["rows"], payload["meta"]
    out = ["## Part 2: the α trade-off (reward against diversity)", "",
           f"Command: `{meta['command']}`  ",
           f"N = {meta['num_samples']}, M = {meta['alpha_m']}, K = {meta['num_steps']}, seed {meta['seed']}. "
           "The same α grid for both tasks (ARS1 rewards are O(1) standardised, QED lies in [0, 1], so on QED the "
           "large α are close to pretrained sampling). SVDD-PM keeps child i with probability softmax(v/α)_i "
           "(argmax at α = 0); SMC targets p_pre·exp(r/α) with N·M particles.", ""]
    for task in dict.fromkeys(r["task"] for r in rows):
        trows = [r for r in rows if r["task"] == task]
        out += [f"### {task} ({meta['reward_label'][task]}; diversity = {meta['diversity_label'][task]})", "",
                "| method | α | median | 90% | mean | diversity | unique | valid | model calls | time (s) |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for r in trows:
            a = "-" if r["method"] in ("pretrained", "best_of_n") else f"{r['alpha']:g}"
            out.append(f"| {label(r)} (M={r['M']}) | {a} | {fmt(r['median'])} | {fmt(r['p90'])} | {fmt(r['mean'])} | "
                       f"{fmt(r['diversity'])} | {fmt(r['unique'], 2)} | {fmt(r['valid'], 2)} | {r['model_calls']} | "
                       f"{r['wall_time_s']:.1f} |")
        out += [""] + [f"- {line}" for line in alpha_notes(trows)] + [""]
    return "\n".join(out)


def alpha_notes(rows: list[dict]) -> list[str]:
    pre = next((r for r in rows if r["method"] == "pretrained"), None)
    bon = next((r for r in rows if r["method"] == "best_of_n"), None)
    notes = []
    pm = [r for r in rows if r["method"] == "svdd_pm"]
    if pm and bon:
        beat = [f"{r['alpha']:g}" for r in pm if r["median"] > bon["median"]]
        notes.append(f"SVDD-PM beats Best-of-N's median ({fmt(bon['median'])}) at α in {{{', '.join(beat) or 'none'}}}.")
    if pm and pre:
        best = max(pm, key=lambda r: r["median"])
        notes.append(f"SVDD-PM: best median {fmt(best['median'])} at α = {best['alpha']:g} with diversity "
                     f"{fmt(best['diversity'])} (pretrained: median {fmt(pre['median'])}, diversity {fmt(pre['diversity'])}).")
    dup = [f"{r['alpha']:g}: {r['unique']:.2f}" for r in rows if r["method"] == "smc" and r["unique"] < 0.95]
    if dup:
        notes.append("SMC returns duplicate samples (uniqueness at α = " + ", ".join(dup) + ").")
    return notes


def env_md(payloads: list[dict]) -> str:
    lines = ["## Machine", ""]
    for p in payloads:
        v, meta = p["meta"]["versions"], p["meta"]
        lines.append(f"- {meta['part']}: {v['platform']}, {v['cpu_count']} cores, {v['torch_threads']} torch thread(s), "
                     f"Python {v['python']}, torch {v['torch']}, rdkit {v.get('rdkit')}; commit {str(v.get('git_commit'))[:10]}"
                     + (f" with uncommitted changes in {', '.join(v['uncommitted_library_files'])}"
                        if v.get("uncommitted_library_files") else "")
                     + f"; load average (1, 5, 15 min) {fmt_load(meta['loadavg_start'])} at start, "
                     f"{fmt_load(meta['loadavg_end'])} at end; total {meta['total_wall_time_s']:.0f} s."
                     + (f" {meta['note']}" if meta.get("note") else ""))
    lines += ["", "Wall times are sampling times from `Result.stats` (reward and value calls included, diversity "
              "metrics excluded) on a 2-core machine shared with other jobs; a load average above 1 means another "
              "process competed for the cores, so read the time axis as approximate (the model-call axis is exact).", ""]
    return "\n".join(lines)


def fmt_load(load) -> str:
    return "/".join(f"{x:.2f}" for x in load)


def write_part(out: Path, part: str, payload: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"curves_{part}.json").write_text(json.dumps(payload, indent=1))
    with open(out / f"curves_{part}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(payload["rows"])
    render(out)


def render(out: Path) -> None:
    """(Re)write the per-part md and png and the summary curves.md from whichever JSON files exist."""
    payloads = {}
    for part in ("compute", "alpha"):
        path = out / f"curves_{part}.json"
        if path.exists():
            payloads[part] = json.loads(path.read_text())
    if "compute" in payloads:
        md = compute_md(payloads["compute"])
        (out / "curves_compute.md").write_text(md + "\n" + env_md([payloads["compute"]]))
        plot_compute(payloads["compute"], out)
    if "alpha" in payloads:
        md = alpha_md(payloads["alpha"])
        (out / "curves_alpha.md").write_text(md + "\n" + env_md([payloads["alpha"]]))
        plot_alpha(payloads["alpha"], out / "curves_alpha.png")
    if payloads:
        (out / "curves.md").write_text(summary_md(payloads))


def summary_md(payloads: dict) -> str:
    lines = ["# Reward against compute and against diversity (benchmarks/curves.py)", "",
             "Regenerate: `OMP_NUM_THREADS=1 python benchmarks/curves.py all` (sized for about 20-25 min on one idle "
             "core; much longer on a loaded machine, see the total times under Machine; "
             "`--quick` for a one-minute smoke test). Full tables: curves_compute.md, curves_alpha.md; all points: "
             "curves_compute.csv, curves_alpha.csv; plots: curves_compute_<task>.png, curves_alpha.png.", ""]
    if "compute" in payloads:
        rows = payloads["compute"]["rows"]
        lines += ["## Median reward against item-level model calls", "",
                  "Each cell: median reward / model calls / wall time (s). SVDD α = 0; SMC α = "
                  + ", ".join(f"{k} {v:g}" for k, v in payloads['compute']['meta']['smc_alpha'].items()) + ".", ""]
        for task in dict.fromkeys(r["task"] for r in rows):
            trows = [r for r in rows if r["task"] == task]
            ms = sorted({r["M"] for r in trows})
            lines += [f"### {task}", "", "| method | " + " | ".join(f"M = {m}" for m in ms) + " |",
                      "|---|" + "---|" * len(ms)]
            for method in dict.fromkeys(r["method"] for r in trows):
                by = {r["M"]: r for r in trows if r["method"] == method}
                cells = [f"{fmt(by[m]['median'])} / {by[m]['model_calls']} / {by[m]['wall_time_s']:.3g}" if m in by else ""
                         for m in ms]
                lines.append(f"| {METHOD_LABEL[method]} | " + " | ".join(cells) + " |")
            lines += [""] + [f"- {n}" for n in compute_notes(trows)] + [""]
    if "alpha" in payloads:
        rows = payloads["alpha"]["rows"]
        meta = payloads["alpha"]["meta"]
        lines += [f"## α sweep at M = {meta['alpha_m']}: median reward and diversity", ""]
        for task in dict.fromkeys(r["task"] for r in rows):
            trows = [r for r in rows if r["task"] == task]
            pm = {r["alpha"]: r for r in trows if r["method"] == "svdd_pm"}
            smc = {r["alpha"]: r for r in trows if r["method"] == "smc"}
            lines += [f"### {task} (diversity = {meta['diversity_label'][task]})", "",
                      "| α | SVDD-PM median | SVDD-PM diversity | SVDD-PM unique | SMC median | SMC diversity | SMC unique |",
                      "|---|---|---|---|---|---|---|"]
            for a in sorted(set(pm) | set(smc)):
                p, s = pm.get(a), smc.get(a)
                lines.append(f"| {a:g} | {fmt(p['median']) if p else ''} | {fmt(p['diversity']) if p else ''} | "
                             f"{fmt(p['unique'], 2) if p else ''} | {fmt(s['median']) if s else ''} | "
                             f"{fmt(s['diversity']) if s else ''} | {fmt(s['unique'], 2) if s else ''} |")
            for r in trows:
                if r["method"] in ("pretrained", "best_of_n"):
                    lines.append(f"| {label(r)} (M={r['M']}) | {fmt(r['median'])} | {fmt(r['diversity'])} | "
                                 f"{fmt(r['unique'], 2)} | | | |")
            lines += [""] + [f"- {n}" for n in alpha_notes(trows)] + [""]
    lines.append(env_md(list(payloads.values())))
    return "\n".join(lines)


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot_compute(payload: dict, out: Path) -> None:
    plt = _pyplot()
    if plt is None:
        return
    rows, meta = payload["rows"], payload["meta"]
    for task in dict.fromkeys(r["task"] for r in rows):
        trows = [r for r in rows if r["task"] == task]
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        for ax, key, xlabel in ((axes[0], "model_calls", "item-level model calls (log)"),
                                (axes[1], "wall_time_s", "wall time (s, log; shared machine)")):
            for method in dict.fromkeys(r["method"] for r in trows):
                pts = sorted((r for r in trows if r["method"] == method), key=lambda r: r["M"])
                x = [max(r[key], 1e-3) for r in pts]
                c = COLORS[method]
                if method == "pretrained":
                    ax.scatter(x, [r["median"] for r in pts], marker="*", s=120, color=c, label="pretrained (median)", zorder=3)
                    ax.scatter(x, [r["p90"] for r in pts], marker="*", s=60, facecolors="none", edgecolors=c,
                               label="pretrained (90%)", zorder=3)
                    continue
                ax.plot(x, [r["median"] for r in pts], "o-", color=c, label=f"{METHOD_LABEL[method]} (median)")
                ax.plot(x, [r["p90"] for r in pts], "o--", color=c, alpha=0.45, markersize=3)
                for r, xi in zip(pts, x):
                    ax.annotate(str(r["M"]), (xi, r["median"]), textcoords="offset points", xytext=(3, 4),
                                fontsize=7, color=c)
            ax.set_xscale("log")
            from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))  # 1, 2, 5 x 10^k, plain labels
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"reward: {meta['reward_label'][task]}")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7, loc="lower right")
        fig.suptitle(f"{task}: median (solid) and 90th percentile (dashed) reward; numbers = M; "
                     f"N = {meta['num_samples']}, K = {meta['num_steps']}, SMC α = {meta['smc_alpha'][task]}", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / f"curves_compute_{task}.png", dpi=120)
        plt.close(fig)


def plot_alpha(payload: dict, path: Path) -> None:
    plt = _pyplot()
    if plt is None:
        return
    rows, meta = payload["rows"], payload["meta"]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 4.8))
    axes = np.atleast_1d(axes)
    for ax, task in zip(axes, tasks):
        trows = [r for r in rows if r["task"] == task]
        for method, marker in (("svdd_pm", "o-"), ("smc", "s-")):
            pts = sorted((r for r in trows if r["method"] == method), key=lambda r: r["alpha"])
            if not pts:
                continue
            ax.plot([r["diversity"] for r in pts], [r["median"] for r in pts], marker, color=COLORS[method],
                    label=f"{METHOD_LABEL[method]} (M = {meta['alpha_m']})")
            for r in pts:
                ax.annotate(f"α={r['alpha']:g}", (r["diversity"], r["median"]), textcoords="offset points",
                            xytext=(4, 3), fontsize=7, color=COLORS[method])
        for r in trows:
            if r["method"] in ("pretrained", "best_of_n"):
                ax.scatter([r["diversity"]], [r["median"]], marker="*" if r["method"] == "pretrained" else "D", s=90,
                           color=COLORS[r["method"]], zorder=3,
                           label=METHOD_LABEL[r["method"]] + ("" if r["method"] == "pretrained" else f" (M = {r['M']})"))
        ax.set_xlabel(f"diversity: {meta['diversity_label'][task]}")
        ax.set_ylabel(f"median reward: {meta['reward_label'][task]}")
        ax.set_title(f"{task}: N = {meta['num_samples']}, K = {meta['num_steps']}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------------------------- main

DIVERSITY_LABEL = {"dna": "mean pairwise normalised Hamming distance",
                   "rna": "mean pairwise normalised Hamming distance (padded)",
                   "qed": "mean pairwise Tanimoto distance (Morgan r=2)"}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", nargs="?", choices=["compute", "alpha", "all"], default=None)
    ap.add_argument("--quick", action="store_true", help="tiny settings (smoke test, ~1 min); default output in a temp dir")
    ap.add_argument("--tasks", nargs="+", default=["dna", "qed"], choices=["dna", "qed", "rna"])
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
    argv_list = list(argv) if argv is not None else sys.argv[1:]
    command = "OMP_NUM_THREADS=1 python benchmarks/curves.py " + " ".join(argv_list)
    tasks = {}
    for part in (["compute", "alpha"] if args.part == "all" else [args.part]):
        start, load_start, env = time.time(), os.getloadavg(), versions()  # library state as loaded
        rows = []
        for name in args.tasks:
            if name not in tasks:
                tasks[name] = Task(name, cfg["steps"])
            task = tasks[name]
            if part == "compute":
                rows += part_compute(task, cfg, args.seed)
            else:
                rows += part_alpha(task, cfg, args.seed, smc=not args.no_smc_sweep)
        meta = {"part": part, "command": command, "quick": args.quick, "seed": args.seed,
                "num_samples": cfg["num_samples"], "num_steps": cfg["steps"], "candidates": cfg["candidates"],
                "alpha_m": cfg["alpha_m"], "alphas": cfg["alphas"], "max_batch": 2048,
                "smc_alpha": {n: tasks[n].smc_alpha for n in args.tasks},
                "reward_label": {n: tasks[n].reward_label for n in args.tasks},
                "diversity_label": {n: DIVERSITY_LABEL[n] for n in args.tasks},
                "versions": env, "loadavg_start": list(load_start), "loadavg_end": list(os.getloadavg()),
                "total_wall_time_s": time.time() - start}
        write_part(out, part, {"meta": meta, "rows": rows})
        print(f"{part}: {len(rows)} runs in {meta['total_wall_time_s']:.0f} s -> {out}", flush=True)
    print((out / "curves.md").read_text())


if __name__ == "__main__":
    main()
