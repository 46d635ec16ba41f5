"""Docking rows at equal docking calls: every method spends about D Vina dockings per sample.

    OMP_NUM_THREADS=1 python -m benchmarks molecules_docking_rows --targets PARP1 JAK2 ESR1 \\
        --num-samples 32 --dockings 8 --seeds 0 1 --values VALUES_DIR --workers 2
    OMP_NUM_THREADS=1 python -m benchmarks molecules_docking_rows --render        # the table only

The budget that costs here is docking (seconds per molecule on a CPU core; a model call is
milliseconds), so the methods are set to spend the same number D of docking calls per sample, and
each cell reports the docking calls it actually made (`stats["reward_calls"]`, distinct molecules
handed to Vina; the reward cache makes a repeat free), model calls and wall seconds (CPU seconds
only of this process: Vina runs in worker processes, so the wall seconds carry the docking time):

| method | how it spends D dockings per sample |
|---|---|
| pretrained | 1 (the sample is docked to be reported) |
| Best-of-N | D pretrained samples, the best N of all N·D kept |
| SVDD-MC | M = 8 candidates scored by the docking value network at every step but the last: 1 docking |
| SVDD-MC + best of D | D SVDD-MC samples per output, the best N kept: D |
| SVDD-PM (sparse) | M = D/2 candidates at 2 steps (3/4 of the way and the last), denoised and docked |
| FK every k | M = D/2 particles per sample, PM potential at K/2, then the M clean particles |
| refine | SVDD-PM at M = D/4 selecting at the last step, then 3 re-maskings of half the tokens |

The value network of SVDD-MC is a `docking_value.py` network per target (VALUES_DIR/docking-value-<TARGET>
.safetensors, or the shipped one when it exists). Selection is by argmax (α = 0); FK tilts with
α = 0.2 kcal/mol. Every cell is kept in benchmarks/results/molecules_docking_rows/<target>/<method>_seed<S>.json
with its per-sample SMILES and scores, and reused by a rerun with the same settings, so a killed run
loses one cell at most.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .metrics import median_p90, uniqueness
from .report import RESULTS, command_line, fmt, machine_and_versions, md_table, write_json, write_md

OUT = RESULTS / "molecules_docking_rows"
FK_ALPHA = 0.2
MC = {"num_candidates": 8, "alpha": 0.0}  # SVDD-MC's candidates: value-network calls only


@dataclass(frozen=True)
class Plan:
    """One method's `svdd.sample` settings at D dockings per sample; `per_output` > 1 draws that many
    samples per output and keeps the best N (by docking score)."""

    label: str
    method: str
    options: Callable[[int, int], dict[str, Any]]  # (D, K) -> keyword arguments of svdd.sample
    uses_value: bool = False
    per_output: Callable[[int], int] = lambda d: 1


PLANS: dict[str, Plan] = {
    "pretrained": Plan("Pretrained", "pretrained", lambda d, k: {}),
    "best_of_n": Plan("Best-of-N", "best_of_n", lambda d, k: {"num_candidates": d}),
    "svdd_mc": Plan("SVDD-MC", "svdd", lambda d, k: {**MC, "select_steps": list(range(k - 1))}, uses_value=True),
    "svdd_mc_best": Plan("SVDD-MC + best of D", "svdd", lambda d, k: {**MC, "select_steps": list(range(k - 1))},
                         uses_value=True, per_output=lambda d: d),
    "svdd_pm": Plan("SVDD-PM (2 steps)", "svdd",
                    lambda d, k: {"num_candidates": max(1, d // 2), "alpha": 0.0,
                                  "select_steps": [3 * k // 4 - 1, k - 1]}),
    "fk": Plan("FK (PM, every K/2)", "fk",
               lambda d, k: {"num_candidates": max(1, d // 2), "alpha": FK_ALPHA, "resample_every": k // 2}),
    "refine": Plan("Refine", "refine",
                   lambda d, k: {"num_candidates": max(1, d // 4), "alpha": 0.0, "select_steps": [k - 1],
                                 "iterations": 3, "renoise": 0.5}),
}


def load_value(target: str, values: Path | None) -> tuple[Any, dict[str, Any]]:
    """(the SVDD-MC docking value of `target` as `svdd.LearnedValue`, what its file records: path,
    labels, held-out r, command) from VALUES/docking-value-<target>.safetensors, else the shipped
    moses-selfies-docking-<target>."""
    import svdd
    from svdd.domains.molecules.pretrained import VALUES, WEIGHTS
    from svdd.processes.weights import load_net

    name = f"moses-selfies-docking-{target}"
    if values is not None and (values / f"docking-value-{target}.safetensors").exists():
        path = values / f"docking-value-{target}.safetensors"
    elif name in VALUES:
        path = WEIGHTS / VALUES[name]
    else:
        raise SystemExit(f"no docking value network for {target}: train one with docking_value.py and pass --values")
    net, meta = load_net(path)
    record = {"file": str(path), **{k: meta.get(k) for k in ("labels", "held_out_correlation", "command")}}
    return svdd.LearnedValue(net, max_batch=2048, name=path.stem), record


def best_per_output(smiles: list[str], rewards: np.ndarray, n: int, per: int) -> tuple[list[str], np.ndarray]:
    """Of n·per samples (output i drew samples i·per .. i·per + per - 1), the best of each output."""
    r = np.where(np.isfinite(rewards), rewards, -np.inf).reshape(n, per)
    pick = r.argmax(axis=1) + np.arange(n) * per
    return [smiles[i] for i in pick], rewards[pick]


def run_cell(process: Any, reward: Any, plan: Plan, *, n: int, d: int, seed: int, value: Any) -> dict[str, Any]:
    """One method at one seed: its samples, scores and budgets."""
    import svdd

    per = plan.per_output(d)
    options = plan.options(d, len(process.timesteps))
    if plan.uses_value:
        options["value"] = value
    start, cpu = time.perf_counter(), time.process_time()
    res = svdd.sample(process, reward, method=plan.method, num_samples=n * per,
                      generator=torch.Generator().manual_seed(seed), progress=True, **options)  # fmt: skip
    wall = time.perf_counter() - start
    smiles, rewards = list(res.samples), np.asarray(res.rewards, dtype=np.float64)
    if per > 1:
        smiles, rewards = best_per_output(smiles, rewards, n, per)
    return {
        "samples": smiles,
        "rewards": [None if not np.isfinite(r) else float(r) for r in rewards],
        "docking_calls": int(res.stats["reward_calls"]),
        "docking_calls_per_sample": res.stats["reward_calls"] / n,
        "reward_cache_hits": int(res.stats.get("reward_cache_hits", 0)),
        "model_calls": int(res.stats["model_calls"]),
        "value_calls": int(res.stats.get("value_calls", 0)),
        "wall_s": round(wall, 1),
        "cpu_s_main": round(time.process_time() - cpu, 1),
        "uniqueness": uniqueness([s for s in smiles if s]),
        "stats": median_p90(rewards, seed=seed),
    }


def cell_settings(args: argparse.Namespace, target: str, method: str, seed: int) -> dict[str, Any]:
    return {"target": target, "method": method, "seed": seed, "num_samples": args.num_samples,
            "dockings_per_sample": args.dockings, "steps": args.steps, "model": args.model,
            "exhaustiveness": 1, "vina_seed": 1,
            "options": PLANS[method].options(args.dockings, args.steps),
            "per_output": PLANS[method].per_output(args.dockings)}  # fmt: skip


def run(args: argparse.Namespace, argv: list[str]) -> None:
    from svdd.domains.molecules import Docking
    from svdd.domains.molecules.pretrained import load_process

    process = load_process(args.model, num_steps=args.steps)
    pool = ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) if args.workers > 1 else None
    try:
        for target in args.targets:
            reward = Docking(target, exhaustiveness=1, timeout_s=60.0, executor=pool)
            uses_value = any(PLANS[m].uses_value for m in args.methods)
            value, value_record = load_value(target, args.values) if uses_value else (None, None)
            for seed in args.seeds:
                for method in args.methods:
                    path = args.out / target / f"{method}_seed{seed}.json"
                    settings = cell_settings(args, target, method, seed)
                    if path.exists() and json.loads(path.read_text()).get("settings") == settings:
                        continue
                    print(f"{target} {method} seed {seed}", flush=True)
                    cell = run_cell(process, reward, PLANS[method], n=args.num_samples, d=args.dockings,
                                    seed=seed, value=value)  # fmt: skip
                    if PLANS[method].uses_value:
                        cell["value"] = value_record
                    write_json(path, {"settings": settings, "command": command_line("molecules_docking_rows", argv),
                                      "versions": machine_and_versions(("rdkit", "vina", "selfies")), **cell})
    finally:
        if pool is not None:
            pool.shutdown()


def render(out: Path) -> str:
    """The markdown table of every stored cell: per target and method, the median docking score
    over seeds (mean of the per-seed medians, each with its 95% interval), budgets and uniqueness."""
    lines = [__doc__.split("\n\n")[0], ""]
    for folder in sorted(p for p in out.iterdir() if p.is_dir()) if out.exists() else []:
        cells = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
        if not cells:
            continue
        s = cells[0]["settings"]
        lines += [f"## {folder.name}", "",
                  f"N = {s['num_samples']} samples, D = {s['dockings_per_sample']} dockings per sample, "
                  f"K = {s['steps']} steps, model `{s['model']}`, Vina exhaustiveness 1, seed 1. "
                  "Score = −Vina (kcal/mol, higher is better). Median per seed with its 95% bootstrap interval.",
                  ""]  # fmt: skip
        rows = []
        for method, plan in PLANS.items():
            mine = sorted((c for c in cells if c["settings"]["method"] == method), key=lambda c: c["settings"]["seed"])
            if not mine:
                continue
            per_seed = "; ".join(f"{fmt(c['stats']['median'], 2)} [{fmt(c['stats']['median_ci'][0], 2)}, "
                                 f"{fmt(c['stats']['median_ci'][1], 2)}]" for c in mine)  # fmt: skip
            rows.append([plan.label, fmt(float(np.mean([c["stats"]["median"] for c in mine])), 2), per_seed,
                         fmt(float(np.mean([c["stats"]["p90"] for c in mine])), 2),
                         fmt(float(np.mean([c["docking_calls_per_sample"] for c in mine])), 1),
                         f"{np.mean([c['model_calls'] for c in mine]):.0f}",
                         f"{np.mean([c['wall_s'] for c in mine]):.0f}",
                         fmt(min(c["uniqueness"] for c in mine), 3), len(mine)])  # fmt: skip
        lines += md_table(["method", "median", "median per seed [95% CI]", "90%", "dockings / sample",
                           "model calls", "wall s", "min uniqueness", "seeds"], rows)  # fmt: skip
        commands = sorted({c["command"] for c in cells})
        lines += ["", *(f"<sub>`{c}`</sub>" for c in commands), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = list(argv or [])
    ap = argparse.ArgumentParser(prog="python -m benchmarks molecules_docking_rows",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--targets", nargs="+", default=["PARP1", "JAK2", "ESR1"])
    ap.add_argument("--methods", nargs="+", default=list(PLANS), choices=list(PLANS))
    ap.add_argument("--num-samples", type=int, default=32)
    ap.add_argument("--dockings", type=int, default=8, help="D: docking calls per sample (>= 4)")
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--model", default="moses-selfies", help="prior: a shipped name or a snapshot .safetensors")
    ap.add_argument("--values", type=Path, default=None, help="folder of docking-value-<TARGET>.safetensors")
    ap.add_argument("--workers", type=int, default=1, help="docking processes")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--render", action="store_true", help="only assemble the table from stored cells")
    args = ap.parse_args(argv)
    if args.dockings < 4 or args.num_samples < 2 or args.steps < 4:
        ap.error("--dockings must be >= 4, --num-samples >= 2 and --steps >= 4")
    if not args.render:
        torch.set_num_threads(1)
        run(args, argv)
    write_md(args.out.parent / f"{args.out.name}.md", render(args.out))


if __name__ == "__main__":
    main()
