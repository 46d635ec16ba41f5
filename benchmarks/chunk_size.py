"""Why `max_batch="auto"` chunks model calls at 64 rows on a CPU: denoiser cost per row against batch size.

For each domain's shipped denoiser: CPU milliseconds per row of one `process.model` call on B rows
(B in 16..1280; repetitions interleaved so that machine load affects every size alike), and the
wall time of SVDD-PM (N = 64, M = 10) with max_batch=None (one call on all 640 candidates) against
the default "auto" (64-row calls; the samples are identical, which is checked).

    OMP_NUM_THREADS=1 python benchmarks/chunk_size.py            # writes results/performance_chunk.{json,md}
    OMP_NUM_THREADS=1 python benchmarks/chunk_size.py --quick
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import svdd  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def domains(quick: bool) -> dict:
    from svdd.domains.images import JPEGCompressibility, load_pretrained as load_ddpm
    from svdd.domains.molecules import QED, load_pretrained as load_molecules
    from svdd.domains.sequences import ARS1Activity, load_pretrained as load_sequences

    steps = 8 if quick else 32
    return {
        "DNA ARS1": (lambda: load_sequences("dna-ars1", num_steps=steps), ARS1Activity),
        "molecules QED": (lambda: load_molecules(num_steps=steps), QED),
        "images JPEG": (lambda: load_ddpm(num_steps=10 if quick else 50), JPEGCompressibility),
    }


def per_row_ms(process, sizes: list[int], repeats: int) -> dict[int, float]:
    """Median CPU ms per row of process.model on batches of each size."""
    x = process.prior(max(sizes), torch.Generator().manual_seed(0))
    t = process.timesteps[len(process.timesteps) // 2]
    times: dict[int, list[float]] = {b: [] for b in sizes}
    with torch.no_grad():
        process.model(x[: sizes[0]], t)  # warm-up
        for _ in range(repeats):
            for b in sizes:
                start = time.process_time()
                process.model(x[:b], t)
                times[b].append((time.process_time() - start) / b * 1e3)
    return {b: float(np.median(v)) for b, v in times.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    sizes = [16, 64, 128, 320, 640, 1280] if not args.quick else [16, 64, 256]
    n, m = (64, 10) if not args.quick else (8, 4)
    load_start = os.getloadavg()
    rows = []
    for name, (make, reward_cls) in domains(args.quick).items():
        process, reward = make(), reward_cls()
        cost = per_row_ms(process, sizes if not name.startswith("images") else [s for s in sizes if s <= 640],
                          repeats=2 if args.quick else 4)
        run = {}
        for setting in (None, "auto"):
            res = svdd.sample(process, reward, num_samples=n, num_candidates=m, max_batch=setting, progress=False,
                              generator=torch.Generator().manual_seed(0))
            run[str(setting)] = res
        same = torch.equal(run["None"].states, run["auto"].states)
        rows.append({"domain": name, "cpu_ms_per_row": cost, "N": n, "M": m,
                     "wall_s_max_batch_None": run["None"].stats["wall_time_s"],
                     "wall_s_auto": run["auto"].stats["wall_time_s"],
                     "model_s_max_batch_None": run["None"].stats["model_time_s"],
                     "model_s_auto": run["auto"].stats["model_time_s"], "identical_samples": same})
        print(rows[-1], flush=True)
    command = "OMP_NUM_THREADS=1 python benchmarks/chunk_size.py" + (" --quick" if args.quick else "")
    env = {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
           "cpu_count": os.cpu_count(), "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
           "cpu_model_chunk": svdd.api.CPU_MODEL_CHUNK}
    lines = [f"# Model-call chunk size on a CPU\n\nCommand: `{command}`  \n"
             f"{env['platform']}, {env['cpu_count']} cores, 1 torch thread, torch {env['torch']}; load average "
             f"{env['loadavg_start'][0]:.1f} at the start, {env['loadavg_end'][0]:.1f} at the end (other jobs "
             "shared the cores; CPU time per row is the steadier measure).\n",
             "CPU ms per row of one `process.model` call on B rows (median of interleaved repetitions):\n",
             "| domain | " + " | ".join(f"B={b}" for b in sizes) + " |", "|---|" + "---|" * len(sizes)]
    for r in rows:
        lines.append(f"| {r['domain']} | " + " | ".join(
            f"{r['cpu_ms_per_row'][b]:.2f}" if b in r["cpu_ms_per_row"] else "" for b in sizes) + " |")
    lines += ["", f"SVDD-PM, N = {n}, M = {m}: max_batch=None (one call on all N·M candidates) against the default "
              f"max_batch=\"auto\" ({svdd.api.CPU_MODEL_CHUNK}-row calls):\n",
              "| domain | wall None (s) | wall auto (s) | speed-up | model time None (s) | model time auto (s) | "
              "identical samples |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['domain']} | {r['wall_s_max_batch_None']:.1f} | {r['wall_s_auto']:.1f} | "
                     f"{r['wall_s_max_batch_None'] / r['wall_s_auto']:.2f}x | {r['model_s_max_batch_None']:.1f} | "
                     f"{r['model_s_auto']:.1f} | {r['identical_samples']} |")
    if not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "performance_chunk.json").write_text(
            json.dumps({"command": command, "environment": env, "rows": rows}, indent=1, default=str))
        (RESULTS / "performance_chunk.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
