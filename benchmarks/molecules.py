"""Molecule benchmarks: the pretrained MOSES model's sample quality, and reward guidance.

    OMP_NUM_THREADS=1 python benchmarks/molecules.py pretrained   # 1000 samples: validity, uniqueness,
                                                                   # novelty, W1 of QED/logP/SA/MW, FCD
    OMP_NUM_THREADS=1 python benchmarks/molecules.py guidance     # QED and SA: pretrained, best_of_n, svdd_pm
    OMP_NUM_THREADS=1 python benchmarks/molecules.py docking      # PARP1 docking, small N

Methods at the same seed: pretrained (N samples), best_of_n (N·M pretrained samples, keep the
top N: about the model calls of SVDD-PM), svdd_pm (SVDD, posterior-mean value, α = 0).
Writes benchmarks/results/molecules_<part>.{json,md} (and CSVs of the samples); every JSON records
the command, seed, versions and machine. The MOSES data come from `pip install --no-deps molsets`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import svdd  # noqa: E402
from benchmarks.provenance import machine_and_versions  # noqa: E402
from svdd.domains.molecules import (QED, SA, Docking, LogP, canonical, distribution_metrics, load_pretrained,  # noqa: E402
                               mean_pairwise_tanimoto_distance, moses_smiles, write_smiles_csv)

RESULTS = ROOT / "benchmarks" / "results"


def versions() -> dict:
    return machine_and_versions(("torch", "rdkit", "selfies", "vina", "meeko", "dockstring", "molsets", "fcd_torch"))


def save(part: str, payload: dict, md: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"command": "OMP_NUM_THREADS=1 python " + " ".join(["benchmarks/molecules.py"] + sys.argv[1:]),
               "versions": versions(), **payload}
    (RESULTS / f"molecules_{part}.json").write_text(json.dumps(payload, indent=1))
    (RESULTS / f"molecules_{part}.md").write_text(f"Command: `{payload['command']}`\n\n" + md)
    print(md)


def part_pretrained(args) -> None:
    process = load_pretrained(num_steps=args.steps)
    start = time.time()
    res = svdd.sample(process, QED(), method="pretrained", num_samples=args.num_samples,
                      generator=torch.Generator().manual_seed(args.seed), progress=True, max_batch=1024)
    sample_s = time.time() - start
    write_smiles_csv(RESULTS / "molecules_pretrained_samples.csv", res.samples, res.rewards)
    meta = process.metadata
    train_subset = moses_smiles("train", meta["train_size"] + meta["val_size"], seed=meta["seed"])
    train_canon = {canonical(s) for s in train_subset}
    test = moses_smiles("test", args.reference, seed=args.seed)
    metrics = distribution_metrics(res.samples, test, training=train_canon)
    full_train = set(moses_smiles("train"))  # the MOSES strings as given (RDKit-canonical already)
    valid = {canonical(s) for s in res.samples} - {None}
    metrics["novelty_vs_full_moses_train_strings"] = len([s for s in valid if s not in full_train]) / max(len(valid), 1)
    metrics["diversity"] = mean_pairwise_tanimoto_distance(res.samples)
    metrics["reference_diversity"] = mean_pairwise_tanimoto_distance(test[: args.num_samples])
    try:
        from fcd_torch import FCD

        fcd = FCD(device="cpu", n_jobs=1)
        metrics["FCD_vs_test"] = float(fcd(sorted(valid), test))
        metrics["FCD_test_subset_vs_other_test_subset"] = float(
            fcd(moses_smiles("test", len(valid), seed=args.seed + 1), test))
    except ImportError:
        metrics["FCD_vs_test"] = None
    metrics["sampling_time_s"] = sample_s
    md = ["| metric | value |", "|---|---|"] + [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
                                               for k, v in metrics.items()]
    save("pretrained", {"seed": args.seed, "num_steps": args.steps, "reference": f"MOSES test, {args.reference} random",
                        "novelty_reference": f"canonical SMILES of the {len(train_canon)} training molecules drawn",
                        "metrics": metrics}, "\n".join(md) + "\n")


def row(task: str, method: str, res, rewards: dict) -> dict:
    r = np.asarray(res.rewards, float)
    ok = np.isfinite(r)
    canon = [canonical(s) for s in res.samples]
    valid = [c for c in canon if c]
    out = {"task": task, "method": method, "median": float(np.median(r[ok])), "p90": float(np.quantile(r[ok], 0.9)),
           "mean": float(r[ok].mean()), "validity": len(valid) / len(canon),
           "uniqueness": len(set(valid)) / max(len(valid), 1),
           "diversity": mean_pairwise_tanimoto_distance(res.samples),
           "model_calls": int(res.stats["model_calls"]), "reward_calls": int(res.stats["reward_calls"]),
           "wall_time_s": float(res.stats["wall_time_s"])}
    for name, fn in rewards.items():
        out[f"mean_{name}"] = float(np.nanmean(fn(res.samples)))
    return out


def table(rows: list[dict]) -> str:
    lines = ["| task | method | median | 90% | mean | valid | unique | diversity | model calls | reward calls | time (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['method']} | {r['median']:.3f} | {r['p90']:.3f} | {r['mean']:.3f} | "
                     f"{r['validity']:.3f} | {r['uniqueness']:.3f} | {r['diversity']:.3f} | {r['model_calls']} | "
                     f"{r['reward_calls']} | {r['wall_time_s']:.0f} |")
    return "\n".join(lines) + "\n"


def targets(rows: list[dict]) -> str:
    lines = []
    for task in dict.fromkeys(r["task"] for r in rows):
        by = {r["method"]: r for r in rows if r["task"] == task}
        pre, bon = by.get("pretrained"), by.get("best_of_n")
        for name, pm in by.items():
            if not (name.startswith("svdd_pm") and pre and bon):
                continue
            lines.append(f"- {task}: {name} median {pm['median']:.3f} vs pretrained p90 {pre['p90']:.3f} "
                         f"({'met' if pm['median'] > pre['p90'] else 'NOT met'}); vs Best-of-N median "
                         f"{bon['median']:.3f} ({'met' if pm['median'] > bon['median'] else 'NOT met'}); validity "
                         f"{pm['validity']:.3f}, uniqueness {pm['uniqueness']:.3f} "
                         f"({'>= 0.99 kept' if min(pm['validity'], pm['uniqueness']) >= 0.99 else 'BELOW 0.99'}).")
    return "\n".join(lines) + "\n"


def run_methods(task: str, process, reward, args, extra: dict, methods=("pretrained", "best_of_n", "svdd_pm")) -> list:
    rows = []
    for method in methods:
        kw = dict(num_samples=args.num_samples, num_candidates=args.num_candidates, progress=True, max_batch=2048,
                  generator=torch.Generator().manual_seed(args.seed))
        name = "svdd" if method.startswith("svdd_pm") else method
        res = svdd.sample(process, reward, method=name, **kw, **extra.get(method, {}))
        rows.append(row(task, method, res, {"QED": QED(), "SA": SA(), "logP": LogP()}))
        write_smiles_csv(RESULTS / f"molecules_{task}_{method}.csv", res.samples, res.rewards)
        print(rows[-1], flush=True)
    return rows


def part_guidance(args) -> None:
    process = load_pretrained(num_steps=args.steps)
    rows = []
    # svdd_pm selects by argmax (α = 0, as the paper's code); svdd_pm_alpha0.01 draws from softmax(v/0.01)
    methods = ("pretrained", "best_of_n", "svdd_pm", "svdd_pm_alpha0.01")
    for task, reward in (("qed", QED()), ("sa", SA())):
        rows += run_methods(task, process, reward, args, {"svdd_pm_alpha0.01": {"alpha": 0.01}}, methods)
    md = (f"N = {args.num_samples}, M = {args.num_candidates}, K = {args.steps} steps, seed {args.seed}. "
          "SA is (10 - SA)/9 (higher = easier to make). diversity = mean pairwise Tanimoto distance (Morgan r=2).\n\n"
          + table(rows) + "\n" + targets(rows))
    save("guidance", {"seed": args.seed, "num_samples": args.num_samples, "num_candidates": args.num_candidates,
                      "num_steps": args.steps, "rows": rows}, md)


def part_docking(args) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    process = load_pretrained(num_steps=args.steps)
    with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as pool:
        reward = Docking("PARP1", exhaustiveness=1, timeout_s=60, executor=pool)
        # docking is the expensive part: select only at every `select_every`-th step (PM value)
        extra = {"svdd_pm": {"select_steps": args.select_every}}
        rows = run_methods("docking_parp1" + (f"_{args.tag}" if args.tag else ""), process, reward, args, extra, methods=tuple(args.methods.split(",")))
    md = (f"PARP1, Vina exhaustiveness 1, N = {args.num_samples}, M = {args.num_candidates}, K = {args.steps}, "
          f"SVDD-PM selects every {args.select_every} steps, {args.workers} workers, seed {args.seed}. Reward = -Vina "
          "(kcal/mol, higher = better).\n\n" + table(rows) + "\n" + targets(rows))
    save("docking" + (f"_{args.tag}" if args.tag else ""), {"seed": args.seed, "num_samples": args.num_samples, "num_candidates": args.num_candidates,
                     "num_steps": args.steps, "select_every": args.select_every, "rows": rows}, md)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=["pretrained", "guidance", "docking"])
    ap.add_argument("--num-samples", type=int, default=None)
    ap.add_argument("--num-candidates", type=int, default=10)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reference", type=int, default=10000, help="MOSES test molecules for the distances")
    ap.add_argument("--select-every", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--methods", default="pretrained,best_of_n,svdd_pm", help="docking: methods to run")
    ap.add_argument("--tag", default="", help="docking: suffix of the result files (molecules_docking_<tag>.*)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.num_samples is None:
        args.num_samples = {"pretrained": 1000, "guidance": 128, "docking": 16}[args.part]
    {"pretrained": part_pretrained, "guidance": part_guidance, "docking": part_docking}[args.part](args)


if __name__ == "__main__":
    main()
