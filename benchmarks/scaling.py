"""Performance part `scaling`: throughput (samples/s) of SVDD-PM against N.

SVDD-PM, M=10, max_batch=2048, against N in {8, ..., 256} on DNA and molecules (K=16), plus a DNA
series with max_batch=128, and the cost per row of one denoiser call against the call's size.

    python -m benchmarks performance scaling [--quick]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

import svdd

from .report import loadavg, md_table, pyplot, save_figure
from .timing import Clock, inside_time, label, load, model_cost_per_row, warm_up

TITLE = "# Performance: throughput against N"
SETTINGS = {
    "full": {"domains": {"dna": {"K": 16}, "molecules": {"K": 16}}, "M": 10, "N": [8, 16, 32, 64, 128, 256],
             "series": [("dna", 2048), ("molecules", 2048), ("dna", 128)],
             "call_sizes": [32, 64, 128, 256, 512, 1024, 2048], "call_repeats": 3},
    "quick": {"domains": {"dna": {"K": 2}, "molecules": {"K": 2}}, "M": 3, "N": [4, 8],
              "series": [("dna", 2048), ("molecules", 2048), ("dna", 4)], "call_sizes": [4, 8], "call_repeats": 1},
}


def run(cfg: dict[str, Any], args: argparse.Namespace) -> tuple[dict, str]:
    """Samples/s of SVDD-PM against N, per (domain, max_batch) series; then the call-size sweep."""
    seed, out = args.seed, args.out
    rows, sweep = [], []
    for name in dict.fromkeys(name for name, _ in cfg["series"]):
        process, reward = load(name, cfg["domains"][name]["K"])
        warm_up(process, reward)
        # the series of one domain are interleaved (each N runs every max_batch back to back), so a
        # change in machine load between series does not masquerade as a max_batch effect
        for n, mb in ((n, mb) for n in cfg["N"] for dom, mb in cfg["series"] if dom == name):
            with Clock() as clock:
                res = svdd.sample(process, reward, method="svdd", num_samples=n, num_candidates=cfg["M"],
                                  max_batch=mb, generator=torch.Generator().manual_seed(seed), progress=False)
            inside, parts = inside_time(res.stats)
            model_s = parts.get("model_time_s", 0.0)
            rows.append({"domain": name, "label": label(name), "max_batch": mb, "N": n, "M": cfg["M"],
                         "K": cfg["domains"][name]["K"], "wall_s": clock.wall, "cpu_s": clock.cpu,
                         "core_share": clock.share, "samples_per_s": n / clock.wall, "samples_per_cpu_s": n / clock.cpu,
                         "model_s": model_s, "reward_s": parts.get("reward_time_s", 0.0), "inside_s": inside,
                         "model_calls": int(res.stats["model_calls"]), "model_batches": int(res.stats["model_batches"]),
                         "model_ms_per_row": 1000 * model_s / max(int(res.stats["model_calls"]), 1),
                         "loadavg": loadavg()})
            print(json.dumps(rows[-1]), flush=True)
    for name in dict.fromkeys(name for name, _ in cfg["series"]):
        process, _ = load(name, cfg["domains"][name]["K"])
        # the minimum over repeats filters out the time lost to other jobs on a shared machine
        for b, times in model_cost_per_row(process, cfg["call_sizes"], cfg["call_repeats"]).items():
            sweep.append({"domain": name, "label": label(name), "rows": b,
                          "wall_ms_per_row": 1000 * min(w for w, _ in times),
                          "cpu_ms_per_row": 1000 * min(c for _, c in times)})
            print(json.dumps(sweep[-1]), flush=True)
    plot(rows, sweep, cfg, out / "performance_scaling.png")
    return {"rows": rows, "call_sizes": sweep, "settings": cfg}, report(rows, sweep, cfg)


def _by(rows: list[dict], name: str, mb: int) -> dict[int, dict]:
    return {r["N"]: r for r in rows if r["domain"] == name and r["max_batch"] == mb}


def _row_costs(sweep: list[dict]) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for r in sweep:
        out.setdefault(r["domain"], {})[r["rows"]] = r["cpu_ms_per_row"]
    return out


def report(rows: list[dict], sweep: list[dict], cfg: dict[str, Any]) -> str:
    ns = cfg["N"]
    lines = [
        f"SVDD-PM (alpha = 0), M = {cfg['M']}, one torch.Generator, after a warm-up run; K = "
        + ", ".join(f"{label(k)} {v['K']}" for k, v in cfg["domains"].items())
        + " denoising steps (time per sample is about proportional to K: K = 32 gives about half these rates). "
        "Samples/s = N / wall time of `svdd.sample`; per CPU-s = N / CPU time of the process (the steadier "
        "measure when other jobs compete for the cores; core share = CPU / wall). Model ms/row = model time / "
        "model rows: the cost of one denoiser row at the call sizes that N·M and max_batch give (one call has "
        "min(N·M, about max_batch) rows). The series of a domain are interleaved: at each N every max_batch "
        "runs back to back.", ""]
    table = []
    for name, mb in cfg["series"]:
        sel, tag = _by(rows, name, mb), f"{label(name)}, max_batch={mb}"
        for key, what, digits in (("samples_per_s", "samples/s", 2), ("samples_per_cpu_s", "samples per CPU-s", 2),
                                  ("model_ms_per_row", "model ms/row (wall)", 2), ("core_share", "core share", 2)):
            table.append([f"{tag}: {what}", *(f"{sel[n][key]:.{digits}f}" for n in ns)])
    lines += md_table(["series", *(f"N={n}" for n in ns)], table)
    sizes = cfg["call_sizes"]
    lines += ["", f"Cost of one denoiser row against the size of the model call (min over {cfg['call_repeats']} "
              "interleaved repeats, CPU ms per row; the minimum filters out time lost to other jobs). "
              "SVDD-PM's model calls have min(N·M, about max_batch) rows:", ""]
    lines += md_table(["domain", *(f"{b} rows" for b in sizes)],
                      [[label(name), *(f"{cost[b]:.3f}" for b in sizes)] for name, cost in _row_costs(sweep).items()])
    lines += ["", "## Findings", "", *_findings(rows, sweep, cfg)]
    lines += ["", "![throughput vs N](performance_scaling.png)"]
    return "\n".join(lines) + "\n"


def _findings(rows: list[dict], sweep: list[dict], cfg: dict[str, Any]) -> list[str]:
    """Data-driven notes: the per-row cost of big calls, and what a smaller max_batch buys."""
    out = []
    for name, sel in _row_costs(sweep).items():
        small, big = min(v for b, v in sel.items() if b <= 256), max(sel)
        out.append(f"- {label(name)}: one denoiser row costs {small:.2f} CPU ms in calls of <= 256 rows and "
                   f"{sel[big]:.2f} ms in a call of {big} rows ({sel[big] / small:.1f}x). With max_batch=2048 a call "
                   f"holds N·M rows (up to 2048), so throughput falls once N·M passes a few hundred rows instead of "
                   "rising with N.")
    series = [mb for dom, mb in cfg["series"] if dom == "dna"]
    if len(series) == 2:
        big_mb, small_mb = sorted(series, reverse=True)
        a, b = _by(rows, "dna", small_mb), _by(rows, "dna", big_mb)
        ratios = [(n, a[n]["samples_per_cpu_s"] / b[n]["samples_per_cpu_s"]) for n in cfg["N"]
                  if n in a and n in b and n * cfg["M"] > small_mb]
        if ratios:
            out.append(f"- DNA ARS1 with max_batch={small_mb} vs {big_mb}, same N (interleaved runs): "
                       + ", ".join(f"N={n} {r:.2f}x" for n, r in ratios)
                       + " the samples per CPU-second. max_batch caps the rows of the denoiser calls and, through "
                       "the candidate groups, of the reward calls too (the ARS1 oracle is also a CNN): on a CPU it is "
                       "the throughput knob.")
    out.append("- At N = 8 and 16 the rates are also lowered by fixed costs per run, among them the first model "
               "call at each new batch shape, which we measured at 2-3x the CPU time of a repeat call of that "
               "shape (presumably kernel set-up per shape; a process that samples repeatedly pays it once per "
               "shape).")
    out.append("- Wall-time rates carry the machine's load (core share above); compare series through the CPU "
               "rates, and the absolute numbers only with runs at a similar core share.")
    return out


def plot(rows: list[dict], sweep: list[dict], cfg: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    for ax, key, ylabel in ((axes[0], "samples_per_s", "samples / s (wall, one thread)"),
                            (axes[1], "samples_per_cpu_s", "samples per CPU-second")):
        for name, mb in cfg["series"]:
            sel = sorted(_by(rows, name, mb).values(), key=lambda r: r["N"])
            ax.plot([r["N"] for r in sel], [r[key] for r in sel], marker="o", linestyle="-" if mb == 2048 else "--",
                    label=f"{label(name)} (K={cfg['domains'][name]['K']}), max_batch={mb}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(cfg["N"], [str(n) for n in cfg["N"]])
        ax.set_xlabel("N (samples per call)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax = axes[2]
    for name, cost in _row_costs(sweep).items():
        sizes = sorted(cost)
        ax.plot(sizes, [cost[b] for b in sizes], marker="o", label=label(name))
    ax.set_xscale("log", base=2)
    ax.set_xticks(cfg["call_sizes"], [str(b) for b in cfg["call_sizes"]])
    ax.set_xlabel("rows per model call")
    ax.set_ylabel("CPU ms per row (min over repeats)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle(f"SVDD-PM throughput, M={cfg['M']} (left, middle) and denoiser cost per row vs call size (right)")
    save_figure(fig, path)


def summary(d: dict[str, Any]) -> list[str]:
    """The part's section of performance.md."""
    ns, s = d["settings"]["N"], d["settings"]
    shares = [r["core_share"] for r in d["rows"]]
    return [f"## Throughput against N (M={s['M']}; samples per CPU-second, wall samples/s in "
            "performance_scaling.md)", "",
            *md_table(["series (samples per CPU-s)", "K", *(f"N={n}" for n in ns)],
                      [[f"{label(name)}, max_batch={mb}", s["domains"][name]["K"],
                        *(f"{_by(d['rows'], name, mb)[n]['samples_per_cpu_s']:.2f}" for n in ns)]
                       for name, mb in s["series"]]),
            "", "CPU time rather than wall time because other jobs shared the 2 cores (core share "
            f"{min(shares):.2f}-{max(shares):.2f}); wall samples/s and per-row model cost: performance_scaling.md.", "",
            "![throughput vs N](performance_scaling.png)"]


def key_points(d: dict[str, Any]) -> list[str]:
    out = []
    for name, sel in _row_costs(d.get("call_sizes", [])).items():
        small = min(v for b, v in sel.items() if b <= 256)
        out.append(f"- {label(name)}: a denoiser row costs {sel[max(sel)] / small:.1f}x more in a "
                   f"{max(sel)}-row call than in calls of <= 256 rows, so throughput with max_batch=2048 drops "
                   "at large N.")
    return out
