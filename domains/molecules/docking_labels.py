"""Docking-score labels for value training: one fixed list of molecules (MOSES train molecules and
final samples of a prior), docked with Vina against DOCKSTRING targets, resumable.

    OMP_NUM_THREADS=1 python -m svdd.domains.molecules.docking_labels OUT --targets PARP1 JAK2 ESR1 \\
        --moses 1500 --prior 1500 --prior-model moses-selfies --workers 2

OUT/molecules.csv (made on the first run, then reused, so every target and every restart docks the
same list): `index, source (moses | prior), smiles`; MOSES molecules are a seeded random subset of the
train split, prior molecules are final samples of `--prior-model` (a shipped name or a snapshot
`.safetensors`) at a seeded generator. OUT/docking_<TARGET>.csv: `index, smiles, score, seconds`, one
row appended (and flushed) per docked molecule, so a killed run loses at most the molecules in flight;
a rerun docks only what is missing. `score` is the negated best Vina energy (kcal/mol, higher =
better) from `Docking(target, exhaustiveness, seed)`; NaN where the molecule cannot be prepared or
docked, or timed out. OUT/settings.json records the command, the docking settings and versions.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .data import moses_smiles
from .docking import DEFAULT_SEED, Docking, target_names

MOLECULES = "molecules.csv"


def prior_smiles(model: str, n: int, seed: int, steps: int, batch_size: int = 128) -> list[str]:
    """n final samples (canonical SMILES, "" where a sequence decodes to no molecule) of the prior
    `model`: a shipped name or a snapshot file of `train_prior.py`."""
    import svdd

    from .pretrained import load_process
    from .rewards import QED

    process = load_process(model, num_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    out: list[str] = []
    with tqdm(total=n, desc="prior samples", unit="mol") as bar:
        while len(out) < n:
            take = min(batch_size, n - len(out))
            res = svdd.sample(
                process, QED(), method="pretrained", num_samples=take, generator=generator, progress=False
            )
            out.extend(str(s) for s in res.samples)
            bar.update(take)
    return out


def molecule_list(out: Path, args: argparse.Namespace) -> list[dict]:
    """The fixed list OUT/molecules.csv, made on the first run."""
    path = out / MOLECULES
    if not path.exists():
        rows = [{"source": "moses", "smiles": s} for s in moses_smiles("train", n=args.moses, seed=args.seed)]
        if args.prior:
            rows += [
                {"source": "prior", "smiles": s} for s in prior_smiles(args.prior_model, args.prior, args.seed, 32)
            ]
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["index", "source", "smiles"])
            writer.writeheader()
            writer.writerows({"index": i, **r} for i, r in enumerate(rows))
        tmp.replace(path)
    with path.open(newline="") as f:
        return [{"index": int(r["index"]), "source": r["source"], "smiles": r["smiles"]} for r in csv.DictReader(f)]


def done_indices(path: Path) -> set[int]:
    """Indices already in a label file (a half-written last line from a killed run is dropped)."""
    if not path.exists():
        return set()
    lines = path.read_text().splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        path.write_text("".join(lines[:-1]))  # a line cut by a kill
        lines = lines[:-1]
    return {int(line.split(",", 1)[0]) for line in lines[1:] if line.strip()}


def dock_target(target: str, molecules: list[dict], out: Path, args: argparse.Namespace, pool) -> dict:
    """Dock every molecule of the list not yet in OUT/docking_<target>.csv; the file's summary."""
    path = out / f"docking_{target}.csv"
    done = done_indices(path)
    todo = [m for m in molecules if m["index"] not in done]
    reward = Docking(
        target, exhaustiveness=args.exhaustiveness, timeout_s=args.timeout, executor=pool, seed=args.seed_vina
    )
    new = not path.exists()
    with path.open("a", newline="") as f, tqdm(total=len(molecules), initial=len(done), desc=target, unit="mol") as bar:
        writer = csv.writer(f)
        if new:
            writer.writerow(["index", "smiles", "score", "seconds"])
        for start in range(0, len(todo), args.chunk):
            chunk = todo[start : start + args.chunk]
            t0 = time.perf_counter()
            scores = reward([m["smiles"] for m in chunk])
            seconds = (time.perf_counter() - t0) / len(chunk)  # the chunk's mean (they dock in parallel)
            for m, score in zip(chunk, scores):
                writer.writerow(
                    [m["index"], m["smiles"], "nan" if math.isnan(score) else f"{score:.3f}", f"{seconds:.2f}"]
                )
            f.flush()
            bar.update(len(chunk))
    return {"target": target, "settings": reward.settings}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="folder of the molecule list and the label files")
    ap.add_argument("--targets", nargs="+", default=["PARP1", "JAK2", "ESR1"])
    ap.add_argument("--moses", type=int, default=1500, help="MOSES train molecules in the list")
    ap.add_argument("--prior", type=int, default=1500, help="final prior samples in the list")
    ap.add_argument("--prior-model", default="moses-selfies", help="shipped model name or a snapshot .safetensors")
    ap.add_argument("--seed", type=int, default=0, help="seed of the MOSES subset and of the prior's samples")
    ap.add_argument("--seed-vina", type=int, default=DEFAULT_SEED, help="Vina and ETKDG seed (fixed: reproducible)")
    ap.add_argument("--exhaustiveness", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per ligand (NaN past it)")
    ap.add_argument("--workers", type=int, default=1, help="docking processes")
    ap.add_argument("--chunk", type=int, default=8, help="molecules docked between two flushes")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.targets) - set(target_names()))
    if unknown:
        ap.error(f"unknown DOCKSTRING targets {unknown}; the wheel ships {', '.join(target_names())}")
    if args.moses < 0 or args.prior < 0 or args.moses + args.prior == 0:
        ap.error("--moses and --prior must be >= 0 and not both 0")
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    molecules = molecule_list(args.out, args)
    targets: dict[str, dict] = {}
    record = {"command": " ".join(["python -m svdd.domains.molecules.docking_labels", *(argv or sys.argv[1:])]),
              "molecules": len(molecules), "targets": targets}  # fmt: skip
    pool = ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) if args.workers > 1 else None
    try:
        for target in args.targets:
            started = time.time()
            info = dock_target(target, molecules, args.out, args, pool)
            scores = pd.read_csv(args.out / f"docking_{target}.csv")["score"].to_numpy(float)
            info.update(labels=int(np.isfinite(scores).sum()), nan=int(np.isnan(scores).sum()),
                        wall_s_this_run=round(time.time() - started, 1))  # fmt: skip
            targets[target] = info
            print(f"{target}: {info['labels']} labels, {info['nan']} NaN", flush=True)
    finally:
        if pool is not None:
            pool.shutdown()
    settings = args.out / "settings.json"
    previous = json.loads(settings.read_text()) if settings.exists() else {}
    previous.setdefault("runs", []).append(record)
    settings.write_text(json.dumps(previous, indent=1) + "\n")


if __name__ == "__main__":
    main()
