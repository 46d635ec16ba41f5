"""Why `max_batch="auto"` chunks model calls at 64 rows on a CPU: denoiser cost per row against batch size.

For each domain's shipped denoiser: CPU milliseconds per row of one `process.model` call on B rows
(B in 16..1280; repetitions interleaved so that machine load affects every size alike), and the
wall time of SVDD-PM (N = 64, M = 10) with max_batch=None (one call on all 640 candidates) against
the default "auto" (64-row calls; the samples are identical, which is checked).

    python -m benchmarks chunk_size            # writes results/performance_chunk.{json,md}
    python -m benchmarks chunk_size --quick    # tiny settings, written to a temporary directory
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

import svdd

from .report import RESULTS, finish, md_table, provenance, write_json, write_md
from .timing import label, load, model_cost_per_row


def main(argv: list[str] | None = None) -> None:
    argv = list(argv or [])
    ap = argparse.ArgumentParser(prog="python -m benchmarks chunk_size", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="default benchmarks/results; with --quick a temp dir")
    args = ap.parse_args(argv)
    out = args.out or (Path(tempfile.gettempdir()) / "svdd-chunk-quick" if args.quick else RESULTS)
    torch.set_num_threads(1)
    sizes = [16, 64, 256] if args.quick else [16, 64, 128, 320, 640, 1280]
    n, m = (8, 4) if args.quick else (64, 10)
    steps = {"dna": 8, "molecules": 8, "images": 10} if args.quick else {"dna": 32, "molecules": 32, "images": 50}
    meta = provenance("chunk_size", argv, seed=0, cpu_model_chunk=svdd.api.CPU_MODEL_CHUNK)
    rows = []
    for domain, k in steps.items():
        process, reward = load(domain, k)
        times = model_cost_per_row(process, sizes if domain != "images" else [s for s in sizes if s <= 640],
                                   repeats=2 if args.quick else 4)
        run = {str(setting): svdd.sample(process, reward, num_samples=n, num_candidates=m, max_batch=setting,
                                         progress=False, generator=torch.Generator().manual_seed(0))
               for setting in (None, "auto")}
        rows.append({"domain": label(domain),
                     "cpu_ms_per_row": {b: float(np.median([c for _, c in t])) * 1e3 for b, t in times.items()},
                     "N": n, "M": m, "wall_s_max_batch_None": run["None"].stats["wall_time_s"],
                     "wall_s_auto": run["auto"].stats["wall_time_s"],
                     "model_s_max_batch_None": run["None"].stats["model_time_s"],
                     "model_s_auto": run["auto"].stats["model_time_s"],
                     "identical_samples": torch.equal(run["None"].states, run["auto"].states)})
        print(rows[-1], flush=True)
    meta = finish(meta)
    lines = [f"# Model-call chunk size on a CPU\n\nCommand: `{meta['command']}`  \n"
             f"{meta['versions']['platform']}, {meta['versions']['cpu_count']} cores, 1 torch thread, torch "
             f"{meta['versions']['torch']}; load average {meta['loadavg_start'][0]:.1f} at the start, "
             f"{meta['loadavg_end'][0]:.1f} at the end (other jobs shared the cores; CPU time per row is the "
             "steadier measure).\n", "CPU ms per row of one `process.model` call on B rows (median of interleaved "
             "repetitions):\n"]
    lines += md_table(["domain", *(f"B={b}" for b in sizes)],
                      [[r["domain"], *(f"{r['cpu_ms_per_row'][b]:.2f}" if b in r["cpu_ms_per_row"] else ""
                                       for b in sizes)] for r in rows])
    lines += ["", f"SVDD-PM, N = {n}, M = {m}: max_batch=None (one call on all N·M candidates) against the default "
              f"max_batch=\"auto\" ({svdd.api.CPU_MODEL_CHUNK}-row calls):\n"]
    lines += md_table(["domain", "wall None (s)", "wall auto (s)", "speed-up", "model time None (s)",
                       "model time auto (s)", "identical samples"],
                      [[r["domain"], f"{r['wall_s_max_batch_None']:.1f}", f"{r['wall_s_auto']:.1f}",
                        f"{r['wall_s_max_batch_None'] / r['wall_s_auto']:.2f}x", f"{r['model_s_max_batch_None']:.1f}",
                        f"{r['model_s_auto']:.1f}", r["identical_samples"]] for r in rows])
    write_json(out / "performance_chunk.json", {**meta, "rows": rows})
    write_md(out / "performance_chunk.md", "\n".join(lines))
