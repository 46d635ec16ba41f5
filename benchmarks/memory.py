"""Performance part `memory`: peak resident-memory increase of SVDD-PM against M.

M in {1, 2, 4, 8, 16, 32}, with max_batch=None and max_batch=64 (molecules N=64, images N=8),
each configuration in a fresh subprocess (`python -m benchmarks.memory DOMAIN N M MAX_BATCH K SEED`
prints one JSON line).

    python -m benchmarks performance memory [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

import svdd

from .report import ROOT, md_table, pyplot, save_figure
from .timing import label, load

TITLE = "# Performance: peak memory against M"
SETTINGS = {
    "full": {"domains": {"molecules": {"N": 64, "K": 2}, "images": {"N": 8, "K": 3}},
             "M": [1, 2, 4, 8, 16, 32], "max_batch": [None, 64]},
    "quick": {"domains": {"molecules": {"N": 4, "K": 2}}, "M": [1, 4], "max_batch": [None, 4]},
}


def _status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def measure(domain: str, n: int, m: int, max_batch: int | None, steps: int, seed: int) -> dict[str, Any]:
    """The peak-RSS increase of one SVDD-PM run (meant for a fresh process).

    Loads the model and reward, does a tiny warm-up run, records VmRSS as the baseline, resets
    the kernel's peak-RSS counter (`echo 5 > /proc/self/clear_refs`) and runs SVDD-PM; the peak
    is VmHWM afterwards. (getrusage's ru_maxrss is not used after the reset: it also keeps the
    high-water mark of exited threads, so it can still report the peak of model loading.) If the
    reset is not allowed, a psutil thread polls RSS every 2 ms instead.
    """
    torch.set_num_threads(1)
    process, reward = load(domain, steps)
    svdd.sample(process, reward, method="svdd", num_samples=1, num_candidates=1,
                generator=torch.Generator().manual_seed(0), progress=False)
    baseline_kb = _status_kb("VmRSS") or 0
    poller = None
    try:
        Path("/proc/self/clear_refs").write_text("5")
        how = "clear_refs + VmHWM"
    except OSError:
        import threading

        import psutil

        how, peak, stop, me = "psutil polling (2 ms)", [0], threading.Event(), psutil.Process()

        def poll() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], me.memory_info().rss // 1024)
                time.sleep(0.002)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
    start = time.perf_counter()
    res = svdd.sample(process, reward, method="svdd", num_samples=n, num_candidates=m, max_batch=max_batch,
                      generator=torch.Generator().manual_seed(seed), progress=False)
    wall = time.perf_counter() - start
    if poller is not None:
        stop.set()
        poller.join()
        peak_kb = peak[0]
    else:
        peak_kb = _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"domain": domain, "N": n, "M": m, "max_batch": max_batch, "K": steps, "baseline_mb": baseline_kb / 1024,
            "peak_mb": peak_kb / 1024, "increase_mb": (peak_kb - baseline_kb) / 1024, "wall_s": wall,
            "model_batches": int(res.stats["model_batches"]), "how": how}


def run(cfg: dict[str, Any], args: argparse.Namespace) -> tuple[dict, str]:
    """Peak-RSS increase of SVDD-PM against M, each (domain, M, max_batch) in a fresh subprocess."""
    seed, out = args.seed, args.out
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rows = []
    for name, d in cfg["domains"].items():
        for mb in cfg["max_batch"]:
            for m in cfg["M"]:
                cmd = [sys.executable, "-m", "benchmarks.memory", name, str(d["N"]), str(m), str(mb), str(d["K"]),
                       str(seed)]
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
                if proc.returncode != 0:
                    raise RuntimeError(f"memory child {' '.join(cmd[3:])} failed:\n{proc.stderr[-3000:]}")
                row = {**json.loads(proc.stdout.strip().splitlines()[-1]), "label": label(name)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    plot(rows, cfg, out / "performance_memory.png")
    return report(rows, cfg)


def growth(rows: list[dict], cfg: dict[str, Any]) -> list[dict]:
    """Growth ratios per (domain, max_batch): M_high vs M_low (the headline), and M_high vs M_fit,
    the largest M whose N·M candidates still fit in one batch of max_batch rows: below M_fit the
    knob does not act, so only growth beyond M_fit says whether max_batch bounds memory.
    "Bounded" = at most 2x beyond M_fit."""
    out = []
    for name, d in cfg["domains"].items():
        for mb in cfg["max_batch"]:
            sel = {r["M"]: r for r in rows if r["domain"] == name and r["max_batch"] == mb}
            lo, hi = sel[min(sel)], sel[max(sel)]
            fits = [m for m in sel if mb is not None and d["N"] * m <= mb]
            fit = sel[max(fits)] if fits else lo
            out.append({"domain": name, "label": label(name), "max_batch": mb, "N": d["N"],
                        "M_low": lo["M"], "M_high": hi["M"], "M_fit": fit["M"],
                        "increase_low_mb": lo["increase_mb"], "increase_high_mb": hi["increase_mb"],
                        "increase_fit_mb": fit["increase_mb"],
                        "ratio": hi["increase_mb"] / max(lo["increase_mb"], 1e-9),
                        "ratio_vs_fit": hi["increase_mb"] / max(fit["increase_mb"], 1e-9),
                        "peak_ratio": hi["peak_mb"] / lo["peak_mb"],
                        "bounded": None if mb is None else hi["increase_mb"] <= 2 * fit["increase_mb"]})
    return out


def report(rows: list[dict], cfg: dict[str, Any]) -> tuple[dict, str]:
    """The payload and markdown of the memory part from its rows."""
    grown, ms = growth(rows, cfg), cfg["M"]
    lines = [
        "SVDD-PM (alpha = 0), one torch.Generator, each configuration in a fresh subprocess. Increase = peak "
        "resident memory during `svdd.sample` minus the resident memory just before it (after loading the model "
        "and reward and a warm-up run with N=1, M=1); the peak counter is reset right before the call "
        "(`/proc/self/clear_refs`, then VmHWM). Settings: "
        + "; ".join(f"{label(k)} N={v['N']}, K={v['K']}" for k, v in cfg["domains"].items())
        + " (K only repeats the same per-step work; K = 2 already has one PM step on N·M children and the "
        "clean last step). Small values (tens of MB) carry allocator noise of about +-10 MB.", "",
        "Peak increase (MB):", ""]
    table = []
    for name in cfg["domains"]:
        for mb in cfg["max_batch"]:
            sel = {r["M"]: r for r in rows if r["domain"] == name and r["max_batch"] == mb}
            table.append([label(name), mb, *(f"{sel[m]['increase_mb']:.1f}" for m in ms)])
    lines += md_table(["domain", "max_batch", *(f"M={m}" for m in ms)], table)
    lines += ["", f"Growth of the increase, M={max(ms)} vs M={min(ms)}, and M={max(ms)} vs M_fit (the largest M with "
              "N·M <= max_batch: up to there all candidates are one batch with or without the knob). Bounded = the "
              "increase at most doubles beyond M_fit.", ""]
    lines += md_table(["domain", "max_batch", f"M={max(ms)} vs M={min(ms)}", "M_fit", f"M={max(ms)} vs M_fit",
                       "peak RSS ratio", "bounded by max_batch?"],
                      [[g["label"], g["max_batch"],
                        f"{g['ratio']:.2f}x ({g['increase_low_mb']:.1f} -> {g['increase_high_mb']:.1f} MB)",
                        "" if g["max_batch"] is None else g["M_fit"],
                        "" if g["max_batch"] is None else f"{g['ratio_vs_fit']:.2f}x", f"{g['peak_ratio']:.2f}x",
                        _verdict(g)] for g in grown])
    lines += ["", "Wall time of each run (s): "
              + "; ".join(f"{r['label']} mb={r['max_batch']} M={r['M']}: {r['wall_s']:.1f}" for r in rows), "",
              "![peak memory vs M](performance_memory.png)"]
    return {"rows": rows, "growth": grown, "settings": cfg}, "\n".join(lines) + "\n"


def _verdict(g: dict) -> str:
    return "" if g["bounded"] is None else ("yes" if g["bounded"] else "NO")


def plot(rows: list[dict], cfg: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name in cfg["domains"]:
        for mb in cfg["max_batch"]:
            sel = sorted((r for r in rows if r["domain"] == name and r["max_batch"] == mb), key=lambda r: r["M"])
            ax.plot([r["M"] for r in sel], [r["increase_mb"] for r in sel], marker="o",
                    linestyle="-" if mb is None else "--", label=f"{label(name)}, max_batch={mb}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(cfg["M"], [str(m) for m in cfg["M"]])
    ax.set_xlabel("M (candidates per sample)")
    ax.set_ylabel("peak RSS increase during svdd.sample (MB)")
    ax.set_title("SVDD-PM peak memory vs M")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def summary(d: dict[str, Any]) -> list[str]:
    """The part's section of performance.md."""
    return ["## Peak memory against M (peak RSS increase during `svdd.sample`)", "",
            *md_table(["domain", "N", "max_batch", "low M (MB)", "high M (MB)", "ratio", "ratio beyond M_fit",
                       "bounded?"],
                      [[g["label"], g["N"], g["max_batch"], f"{g['increase_low_mb']:.1f} (M={g['M_low']})",
                        f"{g['increase_high_mb']:.1f} (M={g['M_high']})", f"{g['ratio']:.2f}x",
                        "" if g["max_batch"] is None else f"{g['ratio_vs_fit']:.2f}x (M_fit={g['M_fit']})",
                        _verdict(g)] for g in d["growth"]]),
            "", "M_fit = the largest M with N·M <= max_batch (below it the knob does not act).", "",
            "![peak memory vs M](performance_memory.png)"]


def key_points(d: dict[str, Any]) -> list[str]:
    g = d["growth"]
    return ["- Peak memory from M=1 to M=32 grows "
            + ", ".join(f"{x['ratio']:.1f}x ({x['label']})" for x in g if x["max_batch"] is None)
            + " without max_batch; with max_batch=64 it grows "
            + ", ".join(f"{x['ratio_vs_fit']:.2f}x beyond M_fit ({x['label']})" for x in g
                        if x["max_batch"] is not None)
            + ": bounded by the knob."]


if __name__ == "__main__":  # the subprocess of `run`: DOMAIN N M MAX_BATCH K SEED -> one JSON line
    _domain, _n, _m, _mb, _k, _seed = sys.argv[1:]
    print(json.dumps(measure(_domain, int(_n), int(_m), None if _mb == "None" else int(_mb), int(_k), int(_seed))),
          flush=True)
