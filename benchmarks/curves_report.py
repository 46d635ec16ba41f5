"""The markdown and plots of `python -m benchmarks curves`, from its JSON files."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .budgets import front_notes
from .methods import METHODS
from .report import fmt, md_table, pyplot, save_figure

COLORS = {"pretrained": "black", "best_of_n": "tab:blue", "smc": "tab:green", "fk": "tab:olive",
          "svdd_mc": "tab:orange", "svdd_pm": "tab:red", "beam": "tab:purple", "refine": "tab:brown",
          "svdd_pm_every4": "tab:pink", "fk_every4": "tab:cyan", "random_search": "tab:gray", "zero_order": "gold"}
AXES = {"model_calls": "item-level model calls", "reward_calls": "reward calls (objects scored)",
        "wall_time_s": "wall seconds (one thread, shared machine)",
        "cpu_time_s": "CPU seconds (≈ wall on an idle core)"}
TIE_FRACTION = 0.05  # a median within this share of Best-of-N's gain over pretrained ties Best-of-N
DIVERSITY_TARGET = 0.9  # SVDD-PM's diversity at least this share of the pretrained model's


def label(row: dict) -> str:
    return METHODS[row["method"]].label


def _tasks(rows: list[dict]) -> dict[str, list[dict]]:
    """The rows of each task, in order of appearance."""
    return {task: [r for r in rows if r["task"] == task] for task in dict.fromkeys(r["task"] for r in rows)}


def point_label(r: dict) -> str:
    return label(r) if r["method"] == "pretrained" else f"{label(r)} M={r['M']}"


def _alpha(r: dict) -> str:
    return "-" if r.get("alpha") is None else f"{r['alpha']:g}"


def _secs(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, (int, float)) else "n/a"


def floor_of(meta: dict, task: str) -> float:
    return meta.get("min_unique", {}).get(task, 0.99 if task == "qed" else 0.95)


# -------------------------------------------------------------------------------- compute part

def compute_md(payload: dict) -> str:
    rows, meta = payload["rows"], payload["meta"]
    out = ["## Part 1: median reward against model calls, reward calls and wall seconds", "",
           f"Command: `{meta['command']}`  ",
           f"M in {meta['candidates']} (the budget of M candidates per sample, as in Table 1: about N·M·K model "
           "calls; pretrained and SVDD-MC make N·K), N and K of Table 1's row, seed 0; α per method as Table 1's "
           "sweep chose it (sparse variants: their dense method's α). Methods: "
           + "; ".join(f"{METHODS[m].label}: {b}" for m, b in meta.get("method_budget", {}).items()) + ".", ""]
    for task, trows in _tasks(rows).items():
        out += [f"### {task} ({meta['reward_label'][task]})", ""]
        out += md_table(["method", "M", "α", "median", "90%", "diversity", "unique", "model calls", "reward calls",
                         "value calls", "wall s", "CPU s", "load"],
                        [[label(r), r["M"], _alpha(r), fmt(r["median"]), fmt(r["p90"]), fmt(r["diversity"]),
                          fmt(r["unique"], 2), r["model_calls"], r["reward_calls"], r["value_calls"],
                          _secs(r["wall_time_s"]), _secs(r.get("cpu_time_s")), _secs(r.get("loadavg_1min"))]
                         for r in trows])
        out += ["", *(f"- {line}" for line in compute_notes(trows, floor_of(meta, task))), ""]
    return "\n".join(out)


def compute_notes(rows: list[dict], floor: float) -> list[str]:
    """Who wins at equal M (equal model calls) and the Pareto fronts of the three budgets."""
    notes = []
    for m in sorted({r["M"] for r in rows if r["method"] != "pretrained"}):
        at = [r for r in rows if r["M"] == m and r["method"] != "pretrained"]
        ok = [r for r in at if (r["unique"] or 0) >= floor - 1e-12]
        if ok:
            best = max(ok, key=lambda r: r["median"])
            collapsed = [r for r in at if r not in ok and r["median"] > best["median"]]
            notes.append(f"M = {m} (equal model calls): best {label(best)} {fmt(best['median'])}"
                         + "".join(f"; {label(r)} {fmt(r['median'])} is higher but uniqueness {r['unique']:.2f}"
                                   for r in collapsed) + ".")
    return notes + front_notes(rows, floor, point_label)


def plot_compute(payload: dict, out: Path) -> None:
    plt = pyplot()
    if plt is None:
        return
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    meta = payload["meta"]
    for task, trows in _tasks(payload["rows"]).items():
        fig, axes = plt.subplots(1, len(AXES), figsize=(5.6 * len(AXES), 5))
        for ax, (key, xlabel) in zip(axes, AXES.items()):
            for method in dict.fromkeys(r["method"] for r in trows):
                pts = sorted((r for r in trows if r["method"] == method), key=lambda r: r["M"])
                x, c = [max(r[key] or 1e-3, 1e-3) for r in pts], COLORS[method]
                y = [r["median"] for r in pts]
                if method == "pretrained":
                    ax.scatter(x, y, marker="*", s=140, color=c, label="Pretrained", zorder=3)
                    continue
                style = "o--" if method in ("svdd_pm_every4", "fk_every4") else "o-"
                ax.plot(x, y, style, color=c, label=METHODS[method].label, markersize=4)
                for r, xi in zip(pts, x):
                    ax.annotate(str(r["M"]), (xi, r["median"]), textcoords="offset points", xytext=(3, 3), fontsize=6,
                                color=c)
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))  # 1, 2, 5 x 10^k
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel(f"{xlabel} (log)")
            ax.set_ylabel(f"median reward: {meta['reward_label'][task]}")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7, loc="lower right")
        fig.suptitle(f"{task}: median reward against model calls, reward calls and time; numbers = M (candidates per "
                     "sample)", fontsize=10)
        save_figure(fig, out / f"curves_compute_{task}.png")


# -------------------------------------------------------------------------------- alpha part

def alpha_md(payload: dict) -> str:
    rows, meta = payload["rows"], payload["meta"]
    out = ["## Part 2: the α trade-off (reward against diversity)", "", f"Command: `{meta['command']}`  ",
           f"SVDD-PM at M = {meta['alpha_m']} for α = a·{meta['alpha_scale']} (a: the task's reference temperature), "
           "seed 0; SVDD-PM keeps child i with probability softmax(v/α)_i (argmax at α = 0). Pretrained and "
           f"Best-of-N (M = {meta['alpha_m']}) for reference.", ""]
    for task, trows in _tasks(rows).items():
        out += [f"### {task} ({meta['reward_label'][task]}; diversity = {meta['diversity_label'][task]})", ""]
        out += md_table(["method", "α", "median", "90%", "diversity", "unique", "model calls", "reward calls", "wall s",
                         "CPU s"],
                        [[label(r), _alpha(r), fmt(r["median"]), fmt(r["p90"]), fmt(r["diversity"]),
                          fmt(r["unique"], 2), r["model_calls"], r["reward_calls"], _secs(r["wall_time_s"]),
                          _secs(r.get("cpu_time_s"))] for r in trows])
        out += ["", *(f"- {line}" for line in alpha_notes(trows)), ""]
    return "\n".join(out)


def diversity_target(rows: list[dict]) -> tuple[list[dict], str]:
    """(the SVDD-PM points that keep diversity >= 0.9x pretrained while beating Best-of-N's median, a sentence)."""
    pre = next((r for r in rows if r["method"] == "pretrained"), None)
    bon = next((r for r in rows if r["method"] == "best_of_n"), None)
    pm = sorted((r for r in rows if r["method"] == "svdd_pm"), key=lambda r: r["alpha"])
    if not (pre and bon and pm):
        return [], "diversity target: not measured"
    need = DIVERSITY_TARGET * pre["diversity"]
    # "beating" Best-of-N means by more than TIE_FRACTION of Best-of-N's own gain over pretrained
    margin = TIE_FRACTION * abs(bon["median"] - pre["median"])
    hits = [r for r in pm if r["diversity"] >= need and r["median"] > bon["median"] + margin]
    if hits:
        best = max(hits, key=lambda r: r["median"])
        return hits, (f"Diversity target **met** at α ∈ {{{', '.join(_alpha(r) for r in hits)}}}: e.g. α = "
                      f"{_alpha(best)} gives median {fmt(best['median'])} (Best-of-N {fmt(bon['median'])}) with "
                      f"diversity {fmt(best['diversity'])} ≥ 0.9 × pretrained {fmt(pre['diversity'])}.")
    beat = [r for r in pm if r["median"] > bon["median"] + margin]
    closest = max(beat, key=lambda r: r["diversity"]) if beat else None
    text = (f"Diversity target **NOT met**: no α keeps diversity ≥ {fmt(need)} (0.9 × pretrained "
            f"{fmt(pre['diversity'])}) while beating Best-of-N's median {fmt(bon['median'])} by more than "
            f"{fmt(margin)} ({TIE_FRACTION:g} of Best-of-N's gain over pretrained; less counts as a tie)")
    ties = [r for r in pm if r["diversity"] >= need and r["median"] > bon["median"] - margin]
    if ties:
        text += "; a tie at α = " + ", ".join(f"{_alpha(r)} (median {fmt(r['median'])}, diversity "
                                               f"{fmt(r['diversity'])})" for r in ties)
    if closest:
        text += (f"; the most diverse α that beats Best-of-N is {_alpha(closest)} (diversity "
                 f"{fmt(closest['diversity'])}, {closest['diversity'] / pre['diversity']:.2f}× pretrained, median "
                 f"{fmt(closest['median'])})")
    return [], text + "."


def alpha_notes(rows: list[dict]) -> list[str]:
    notes = [diversity_target(rows)[1]]
    pm = [r for r in rows if r["method"] == "svdd_pm"]
    dup = [f"{_alpha(r)}: {r['unique']:.2f}" for r in pm if (r["unique"] or 0) < 0.95]
    if dup:
        notes.append("SVDD-PM uniqueness below 0.95 at α = " + ", ".join(dup) + ".")
    return notes


def plot_alpha(payload: dict, path: Path) -> None:
    plt = pyplot()
    if plt is None:
        return
    meta, tasks = payload["meta"], _tasks(payload["rows"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4.6))
    for ax, (task, trows) in zip(np.atleast_1d(axes), tasks.items()):
        pts = sorted((r for r in trows if r["method"] == "svdd_pm"), key=lambda r: r["alpha"])
        ax.plot([r["diversity"] for r in pts], [r["median"] for r in pts], "o-", color=COLORS["svdd_pm"],
                label=f"SVDD-PM (M = {meta['alpha_m']})")
        for r in pts:
            ax.annotate(f"α={r['alpha']:g}", (r["diversity"], r["median"]), textcoords="offset points", xytext=(4, 3),
                        fontsize=7, color=COLORS["svdd_pm"])
        for r in (r for r in trows if r["method"] in ("pretrained", "best_of_n")):
            ax.scatter([r["diversity"]], [r["median"]], marker="*" if r["method"] == "pretrained" else "D", s=90,
                       color=COLORS[r["method"]], zorder=3, label=label(r))
            if r["method"] == "pretrained":
                ax.axvline(DIVERSITY_TARGET * r["diversity"], color="grey", ls=":", lw=1, label="0.9 × pretrained")
        ax.set_xlabel(f"diversity: {meta['diversity_label'][task]}")
        ax.set_ylabel(f"median reward: {meta['reward_label'][task]}")
        ax.set_title(task)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)


# -------------------------------------------------------------------------------- both

def env_md(payloads: list[dict]) -> str:
    lines = ["## Machine", ""]
    for meta in (m for p in payloads for m in [p["meta"], *p["meta"].get("earlier_runs", [])]):
        v, c = meta["versions"], meta.get("checkout") or {}
        lines.append(f"- {meta['part']} ({', '.join(meta.get('tasks', []))}): {v['platform']}, {v['cpu_count']} "
                     f"cores, {v['torch_threads']} torch thread(s), torch {v['torch']}; commit "
                     f"{str(c.get('commit'))[:10]}; load average (1, 5, 15 min) {fmt_load(meta['loadavg_start'])} at "
                     f"start, {fmt_load(meta['loadavg_end'])} at end; total {meta['total_wall_time_s']:.0f} s.")
    lines += ["", "Wall times are sampling times from `Result.stats` on a 2-core machine shared with other jobs: a "
              "load average above 1 means another process competed for the cores, so read the wall-time axis as "
              "approximate (each point's CPU seconds and load are in the tables; the call counts are exact).", ""]
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


def summary_md(payloads: dict) -> str:
    lines = ["# Reward against three budgets, and against diversity (python -m benchmarks curves)", "",
             "Full tables: curves_compute.md, curves_alpha.md; all points: curves_compute.csv, curves_alpha.csv; "
             "plots: curves_compute_<task>.png (median against model calls, reward calls and wall seconds), "
             "curves_alpha.png.", ""]
    if "compute" in payloads:
        meta = payloads["compute"]["meta"]
        lines += ["## Median reward at each budget", "",
                  "Each cell: median reward (reward calls; wall s). Model calls are about N·M·K for every method but "
                  "pretrained and SVDD-MC (N·K); exact counts in curves_compute.md.", ""]
        for task, trows in _tasks(payloads["compute"]["rows"]).items():
            ms = sorted({r["M"] for r in trows})
            cells = []
            for method in dict.fromkeys(r["method"] for r in trows):
                by = {r["M"]: r for r in trows if r["method"] == method}
                cells.append([METHODS[method].label, *(f"{fmt(by[m]['median'])} ({by[m]['reward_calls']}; "
                                                       f"{_secs(by[m]['wall_time_s'])})" if m in by else ""
                                                       for m in ms)])
            lines += [f"### {task}", "", *md_table(["method", *(f"M = {m}" for m in ms)], cells), "",
                      *(f"- {n}" for n in compute_notes(trows, floor_of(meta, task))), ""]
    if "alpha" in payloads:
        meta = payloads["alpha"]["meta"]
        lines += [f"## α sweep of SVDD-PM at M = {meta['alpha_m']}: median reward and diversity", ""]
        for task, trows in _tasks(payloads["alpha"]["rows"]).items():
            table = [[label(r), _alpha(r), fmt(r["median"]), fmt(r["diversity"]), fmt(r["unique"], 2)] for r in trows]
            lines += [f"### {task} (diversity = {meta['diversity_label'][task]})", "",
                      *md_table(["method", "α", "median", "diversity", "unique"], table), "",
                      *(f"- {n}" for n in alpha_notes(trows)), ""]
    lines.append(env_md(list(payloads.values())))
    return "\n".join(lines)
