"""The markdown and plots of `python -m benchmarks curves`, from its JSON files."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .methods import METHODS
from .report import fmt, md_table, pyplot, save_figure

COLORS = {"pretrained": "black", "best_of_n": "tab:blue", "svdd_pm": "tab:red", "svdd_mc": "tab:orange",
          "smc": "tab:green"}


def label(row: dict) -> str:
    return METHODS[row["method"]].label


def _tasks(rows: list[dict]) -> dict[str, list[dict]]:
    """The rows of each task, in order of appearance."""
    return {task: [r for r in rows if r["task"] == task] for task in dict.fromkeys(r["task"] for r in rows)}


def compute_md(payload: dict) -> str:
    rows, meta = payload["rows"], payload["meta"]
    out = ["## Part 1: reward against compute", "", f"Command: `{meta['command']}`  ",
           f"N = {meta['num_samples']}, K = {meta['num_steps']}, seed {meta['seed']}, M in {meta['candidates']}; "
           "SVDD α = 0 (argmax); SMC α = " + ", ".join(f"{k} {v:g}" for k, v in meta["smc_alpha"].items())
           + " (N·M particles, PM value, multinomial resampling every step). Best-of-N at M draws N·M pretrained "
           "samples (same model calls as SVDD-PM at M).", ""]
    for task, trows in _tasks(rows).items():
        out += [f"### {task} ({meta['reward_label'][task]})", ""]
        out += md_table(["method", "M", "median", "90%", "mean", "diversity", "unique", "model calls", "value calls",
                         "time (s)"],
                        [[label(r), r["M"], fmt(r["median"]), fmt(r["p90"]), fmt(r["mean"]), fmt(r["diversity"]),
                          fmt(r["unique"], 2), r["model_calls"], r["value_calls"], f"{r['wall_time_s']:.1f}"]
                         for r in trows])
        out += ["", *(f"- {line}" for line in compute_notes(trows)), ""]
    return "\n".join(out)


def winner(pm: float, other: float, name: str) -> str:
    if pm == other:
        return "tie"
    return "SVDD-PM wins" if pm > other else f"{name} WINS"


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
        notes.append(f"M = {m}: SVDD-PM median {fmt(pm['median'])} at {pm['model_calls']} model calls; "
                     + "; ".join(parts) + ".")
    for m in ms:  # the time axis: the best Best-of-N run that took no longer than SVDD-PM at this M
        at_m = by[("svdd_pm", m)]
        cheaper = [r for r in rows if r["method"] == "best_of_n" and r["wall_time_s"] <= at_m["wall_time_s"]]
        if m > 1 and cheaper:
            b = max(cheaper, key=lambda r: r["median"])
            if b["median"] >= at_m["median"]:
                notes.append(f"At equal wall time Best-of-N WINS over SVDD-PM M = {m} ({at_m['wall_time_s']:.3g} s, "
                             f"median {fmt(at_m['median'])}): Best-of-N M = {b['M']} reaches {fmt(b['median'])} in "
                             f"{b['wall_time_s']:.3g} s (SVDD-PM also pays N·M reward calls per step).")
    for mc in (r for r in rows if r["method"] == "svdd_mc" and r["M"] > 1):
        faster = [r for r in rows if r["method"] == "svdd_pm" and r["wall_time_s"] <= mc["wall_time_s"]]
        best = max(faster, key=lambda r: r["median"]) if faster else None
        if best is not None and best["median"] > mc["median"]:
            notes.append(f"SVDD-MC M = {mc['M']} uses only {mc['model_calls']} model calls but {mc['value_calls']} "
                         f"value-network calls ({mc['wall_time_s']:.3g} s, median {fmt(mc['median'])}); SVDD-PM "
                         f"M = {best['M']} gets {fmt(best['median'])} in {best['wall_time_s']:.3g} s, so MC LOSES at "
                         "equal wall time here.")
    pre, pm1 = by.get(("pretrained", 1)), by.get(("svdd_pm", 1))
    if pre and pm1 and pm1["wall_time_s"] > 1.5 * pre["wall_time_s"]:
        notes.append(f"SVDD-PM at M = 1 returns the pretrained samples but still scores the single child every step "
                     f"({pm1['value_calls']} value calls, {pm1['wall_time_s']:.3g} s vs {pre['wall_time_s']:.3g} s).")
    top = max((r for r in rows if r["method"] == "svdd_pm"), key=lambda r: r["M"], default=None)
    if pre and top:
        notes.append(f"Diversity: pretrained {fmt(pre['diversity'])}, SVDD-PM M = {top['M']} {fmt(top['diversity'])}, "
                     + ", ".join(f"{METHODS[k].label} M = {top['M']} {fmt(by[(k, top['M'])]['diversity'])}"
                                 for k in ("best_of_n", "svdd_mc", "smc") if (k, top["M"]) in by) + ".")
    dup = [f"{r['M']}: {r['unique']:.2f}" for r in rows if r["method"] == "smc" and r["unique"] < 0.95]
    if dup:
        notes.append("SMC returns duplicate samples (uniqueness at M = " + ", ".join(dup) + "): its resampling "
                     "collapses the particles onto a few lineages; diversity in the CSV.")
    return notes


def alpha_md(payload: dict) -> str:
    rows, meta = payload["rows"], payload["meta"]
    out = ["## Part 2: the α trade-off (reward against diversity)", "", f"Command: `{meta['command']}`  ",
           f"N = {meta['num_samples']}, M = {meta['alpha_m']}, K = {meta['num_steps']}, seed {meta['seed']}. "
           "The same α grid for both tasks (ARS1 rewards are O(1) standardised, QED lies in [0, 1], so on QED the "
           "large α are close to pretrained sampling). SVDD-PM keeps child i with probability softmax(v/α)_i "
           "(argmax at α = 0); SMC targets p_pre·exp(r/α) with N·M particles.", ""]
    for task, trows in _tasks(rows).items():
        out += [f"### {task} ({meta['reward_label'][task]}; diversity = {meta['diversity_label'][task]})", ""]
        out += md_table(["method", "α", "median", "90%", "mean", "diversity", "unique", "valid", "model calls",
                         "time (s)"],
                        [[f"{label(r)} (M={r['M']})",
                          "-" if r["method"] in ("pretrained", "best_of_n") else f"{r['alpha']:g}",
                          fmt(r["median"]), fmt(r["p90"]), fmt(r["mean"]), fmt(r["diversity"]), fmt(r["unique"], 2),
                          fmt(r["valid"], 2), r["model_calls"], f"{r['wall_time_s']:.1f}"] for r in trows])
        out += ["", *(f"- {line}" for line in alpha_notes(trows)), ""]
    return "\n".join(out)


def alpha_notes(rows: list[dict]) -> list[str]:
    pre = next((r for r in rows if r["method"] == "pretrained"), None)
    bon = next((r for r in rows if r["method"] == "best_of_n"), None)
    notes = []
    pm = [r for r in rows if r["method"] == "svdd_pm"]
    if pm and bon:
        beat = [f"{r['alpha']:g}" for r in pm if r["median"] > bon["median"]]
        notes.append(f"SVDD-PM beats Best-of-N's median ({fmt(bon['median'])}) at α in "
                     f"{{{', '.join(beat) or 'none'}}}.")
    if pm and pre:
        best = max(pm, key=lambda r: r["median"])
        notes.append(f"SVDD-PM: best median {fmt(best['median'])} at α = {best['alpha']:g} with diversity "
                     f"{fmt(best['diversity'])} (pretrained: median {fmt(pre['median'])}, diversity "
                     f"{fmt(pre['diversity'])}).")
    dup = [f"{r['alpha']:g}: {r['unique']:.2f}" for r in rows if r["method"] == "smc" and r["unique"] < 0.95]
    if dup:
        notes.append("SMC returns duplicate samples (uniqueness at α = " + ", ".join(dup) + ").")
    return notes


def env_md(payloads: list[dict]) -> str:
    lines = ["## Machine", ""]
    for p in payloads:
        meta = p["meta"]
        v = meta["versions"]
        c = meta.get("checkout") or {"commit": v.get("git_commit"),  # results written before benchmarks/report.py
                                     "svdd_uncommitted_changes": v.get("uncommitted_library_files")}
        dirty = c.get("svdd_uncommitted_changes")
        edits = f" with uncommitted changes in {', '.join(dirty)}" if dirty else ""
        lines.append(f"- {meta['part']}: {v['platform']}, {v['cpu_count']} cores, {v['torch_threads']} torch "
                     f"thread(s), Python {v['python']}, torch {v['torch']}, rdkit {v.get('rdkit')}; commit "
                     f"{str(c.get('commit'))[:10]}{edits}"
                     + f"; load average (1, 5, 15 min) {fmt_load(meta['loadavg_start'])} at start, "
                     f"{fmt_load(meta['loadavg_end'])} at end; total {meta['total_wall_time_s']:.0f} s."
                     + (f" {meta['note']}" if meta.get("note") else ""))
    lines += ["", "Wall times are sampling times from `Result.stats` (reward and value calls included, diversity "
              "metrics excluded) on a 2-core machine shared with other jobs; a load average above 1 means another "
              "process competed for the cores, so read the time axis as approximate (the model-call axis is "
              "exact).", ""]
    return "\n".join(lines)


def fmt_load(load: Any) -> str:
    return "/".join(f"{x:.2f}" for x in load) if load else "n/a"


def render(out: Path) -> None:
    """(Re)write the per-part md and png and the summary curves.md from whichever JSON files exist."""
    payloads = {part: json.loads((out / f"curves_{part}.json").read_text())
                for part in ("compute", "alpha") if (out / f"curves_{part}.json").exists()}
    if "compute" in payloads:
        (out / "curves_compute.md").write_text(compute_md(payloads["compute"]) + "\n" + env_md([payloads["compute"]]))
        plot_compute(payloads["compute"], out)
    if "alpha" in payloads:
        (out / "curves_alpha.md").write_text(alpha_md(payloads["alpha"]) + "\n" + env_md([payloads["alpha"]]))
        plot_alpha(payloads["alpha"], out / "curves_alpha.png")
    if payloads:
        (out / "curves.md").write_text(summary_md(payloads))


def _point(r: dict | None) -> list[str]:
    """Median, diversity and uniqueness of one α-sweep point (blank cells for none)."""
    return [fmt(r["median"]), fmt(r["diversity"]), fmt(r["unique"], 2)] if r else ["", "", ""]


def summary_md(payloads: dict) -> str:
    lines = ["# Reward against compute and against diversity (python -m benchmarks curves)", "",
             "Regenerate: `OMP_NUM_THREADS=1 python -m benchmarks curves all` (sized for about 20-25 min on one idle "
             "core; much longer on a loaded machine, see the total times under Machine; "
             "`--quick` for a one-minute smoke test). Full tables: curves_compute.md, curves_alpha.md; all points: "
             "curves_compute.csv, curves_alpha.csv; plots: curves_compute_<task>.png, curves_alpha.png.", ""]
    if "compute" in payloads:
        lines += ["## Median reward against item-level model calls", "",
                  "Each cell: median reward / model calls / wall time (s). SVDD α = 0; SMC α = "
                  + ", ".join(f"{k} {v:g}" for k, v in payloads["compute"]["meta"]["smc_alpha"].items()) + ".", ""]
        for task, trows in _tasks(payloads["compute"]["rows"]).items():
            ms = sorted({r["M"] for r in trows})
            cells = []
            for method in dict.fromkeys(r["method"] for r in trows):
                by = {r["M"]: r for r in trows if r["method"] == method}
                cells.append([METHODS[method].label, *(f"{fmt(by[m]['median'])} / {by[m]['model_calls']} / "
                                                       f"{by[m]['wall_time_s']:.3g}" if m in by else "" for m in ms)])
            lines += [f"### {task}", "", *md_table(["method", *(f"M = {m}" for m in ms)], cells), "",
                      *(f"- {n}" for n in compute_notes(trows)), ""]
    if "alpha" in payloads:
        meta = payloads["alpha"]["meta"]
        lines += [f"## α sweep at M = {meta['alpha_m']}: median reward and diversity", ""]
        for task, trows in _tasks(payloads["alpha"]["rows"]).items():
            pm = {r["alpha"]: r for r in trows if r["method"] == "svdd_pm"}
            smc = {r["alpha"]: r for r in trows if r["method"] == "smc"}

            table = [[f"{a:g}", *_point(pm.get(a)), *_point(smc.get(a))] for a in sorted(set(pm) | set(smc))]
            table += [[f"{label(r)} (M={r['M']})", *_point(r), "", "", ""] for r in trows
                      if r["method"] in ("pretrained", "best_of_n")]
            lines += [f"### {task} (diversity = {meta['diversity_label'][task]})", "",
                      *md_table(["α", "SVDD-PM median", "SVDD-PM diversity", "SVDD-PM unique", "SMC median",
                                 "SMC diversity", "SMC unique"], table), "",
                      *(f"- {n}" for n in alpha_notes(trows)), ""]
    lines.append(env_md(list(payloads.values())))
    return "\n".join(lines)


def plot_compute(payload: dict, out: Path) -> None:
    plt = pyplot()
    if plt is None:
        return
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    meta = payload["meta"]
    for task, trows in _tasks(payload["rows"]).items():
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        for ax, key, xlabel in ((axes[0], "model_calls", "item-level model calls (log)"),
                                (axes[1], "wall_time_s", "wall time (s, log; shared machine)")):
            for method in dict.fromkeys(r["method"] for r in trows):
                pts = sorted((r for r in trows if r["method"] == method), key=lambda r: r["M"])
                x, c = [max(r[key], 1e-3) for r in pts], COLORS[method]
                if method == "pretrained":
                    ax.scatter(x, [r["median"] for r in pts], marker="*", s=120, color=c, label="pretrained (median)",
                               zorder=3)
                    ax.scatter(x, [r["p90"] for r in pts], marker="*", s=60, facecolors="none", edgecolors=c,
                               label="pretrained (90%)", zorder=3)
                    continue
                ax.plot(x, [r["median"] for r in pts], "o-", color=c, label=f"{METHODS[method].label} (median)")
                ax.plot(x, [r["p90"] for r in pts], "o--", color=c, alpha=0.45, markersize=3)
                for r, xi in zip(pts, x):
                    ax.annotate(str(r["M"]), (xi, r["median"]), textcoords="offset points", xytext=(3, 4),
                                fontsize=7, color=c)
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))  # 1, 2, 5 x 10^k, plain labels
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"reward: {meta['reward_label'][task]}")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7, loc="lower right")
        fig.suptitle(f"{task}: median (solid) and 90th percentile (dashed) reward; numbers = M; N = "
                     f"{meta['num_samples']}, K = {meta['num_steps']}, SMC α = {meta['smc_alpha'][task]}", fontsize=9)
        save_figure(fig, out / f"curves_compute_{task}.png")


def plot_alpha(payload: dict, path: Path) -> None:
    plt = pyplot()
    if plt is None:
        return
    meta, tasks = payload["meta"], _tasks(payload["rows"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 4.8))
    for ax, (task, trows) in zip(np.atleast_1d(axes), tasks.items()):
        for method, marker in (("svdd_pm", "o-"), ("smc", "s-")):
            pts = sorted((r for r in trows if r["method"] == method), key=lambda r: r["alpha"])
            if not pts:
                continue
            ax.plot([r["diversity"] for r in pts], [r["median"] for r in pts], marker, color=COLORS[method],
                    label=f"{METHODS[method].label} (M = {meta['alpha_m']})")
            for r in pts:
                ax.annotate(f"α={r['alpha']:g}", (r["diversity"], r["median"]), textcoords="offset points",
                            xytext=(4, 3), fontsize=7, color=COLORS[method])
        for r in (r for r in trows if r["method"] in ("pretrained", "best_of_n")):
            ax.scatter([r["diversity"]], [r["median"]], marker="*" if r["method"] == "pretrained" else "D", s=90,
                       color=COLORS[r["method"]], zorder=3,
                       label=label(r) + ("" if r["method"] == "pretrained" else f" (M = {r['M']})"))
        ax.set_xlabel(f"diversity: {meta['diversity_label'][task]}")
        ax.set_ylabel(f"median reward: {meta['reward_label'][task]}")
        ax.set_title(f"{task}: N = {meta['num_samples']}, K = {meta['num_steps']}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)
