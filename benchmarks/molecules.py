"""Molecule benchmarks: the pretrained MOSES model's sample quality, and reward guidance.

    python -m benchmarks molecules pretrained   # 1000 samples: validity, uniqueness, novelty,
                                                # W1 of QED/logP/SA/MW, FCD
    python -m benchmarks molecules guidance     # QED and SA: pretrained, best_of_n, svdd_pm
    python -m benchmarks molecules docking      # PARP1 docking, small N

Methods at the same seed (`benchmarks.methods`): pretrained (N samples), best_of_n (N·M pretrained
samples, keep the top N: about the model calls of SVDD-PM), svdd_pm (SVDD, posterior-mean value,
α = 0). Writes benchmarks/results/molecules_<part>.{json,md} (and CSVs of the samples); every JSON
records the command, seed, versions and machine. The MOSES data come from
`pip install --no-deps molsets`.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .methods import run_method
from .metrics import reward_quantiles
from .report import RESULTS, finish, md_table, provenance, write_json, write_md
from .tasks import Task

PACKAGES = ("rdkit", "selfies", "vina", "meeko", "dockstring", "molsets", "fcd_torch")


def save(out: Path, part: str, meta: dict[str, Any], payload: dict[str, Any], md: str) -> None:
    meta = finish(meta)
    write_json(out / f"molecules_{part}.json", {**meta, **payload})
    write_md(out / f"molecules_{part}.md", f"Command: `{meta['command']}`\n\n" + md)


def part_pretrained(args: argparse.Namespace, meta: dict[str, Any]) -> None:
    from svdd.domains.molecules import canonical, distribution_metrics, moses_smiles, write_smiles_csv
    from svdd.domains.molecules import mean_pairwise_tanimoto_distance as tanimoto_diversity

    task = Task("molecules_qed", steps=args.steps)
    start = time.time()
    res = run_method(task, "pretrained", num_samples=args.num_samples, num_candidates=args.num_candidates,
                     seed=args.seed, max_batch=1024, progress=True)
    sample_s = time.time() - start
    write_smiles_csv(args.out / "molecules_pretrained_samples.csv", res.samples, res.rewards)
    info = task.process.metadata
    drawn = moses_smiles("train", info["train_size"] + info["val_size"], seed=info["seed"])
    train_canon = {canonical(s) for s in drawn}
    test = moses_smiles("test", args.reference, seed=args.seed)
    metrics = distribution_metrics(res.samples, test, training=train_canon)
    full_train = set(moses_smiles("train"))  # the MOSES strings as given (RDKit-canonical already)
    valid = {canonical(s) for s in res.samples} - {None}
    metrics["novelty_vs_full_moses_train_strings"] = len([s for s in valid if s not in full_train]) / max(len(valid), 1)
    metrics["diversity"] = tanimoto_diversity(res.samples)
    metrics["reference_diversity"] = tanimoto_diversity(test[: args.num_samples])
    try:
        from fcd_torch import FCD

        fcd = FCD(device="cpu", n_jobs=1)
        metrics["FCD_vs_test"] = float(fcd(sorted(valid), test))
        metrics["FCD_test_subset_vs_other_test_subset"] = float(
            fcd(moses_smiles("test", len(valid), seed=args.seed + 1), test))
    except ImportError:
        metrics["FCD_vs_test"] = None
    metrics["sampling_time_s"] = sample_s
    md = md_table(["metric", "value"], [[k, f"{v:.4g}" if isinstance(v, float) else v] for k, v in metrics.items()])
    save(args.out, "pretrained", meta, {
        "num_steps": args.steps, "reference": f"MOSES test, {args.reference} random",
        "novelty_reference": f"canonical SMILES of the {len(train_canon)} training molecules drawn",
        "metrics": metrics}, "\n".join(md) + "\n")


def row(task: Task, name: str, method: str, res: Any) -> dict:
    q = reward_quantiles(res.rewards)
    validity, unique = task.validity_uniqueness(res)
    out = {"task": name, "method": method, "median": q["median"], "p90": q["p90"], "mean": q["mean"],
           "validity": validity, "uniqueness": unique, "diversity": task.diversity(res),
           "model_calls": int(res.stats["model_calls"]), "reward_calls": int(res.stats["reward_calls"]),
           "wall_time_s": float(res.stats["wall_time_s"])}
    for label, spec in (("QED", "qed"), ("SA", "sa"), ("logP", "logp")):
        out[f"mean_{label}"] = float(np.nanmean(task.make_reward(spec)(res.samples)))
    return out


def table(rows: list[dict]) -> str:
    return "\n".join(md_table(
        ["task", "method", "median", "90%", "mean", "valid", "unique", "diversity", "model calls", "reward calls",
         "time (s)"],
        [[r["task"], r["method"], *(f"{r[k]:.3f}" for k in ("median", "p90", "mean", "validity", "uniqueness",
                                                             "diversity")),
          r["model_calls"], r["reward_calls"], f"{r['wall_time_s']:.0f}"] for r in rows])) + "\n"


def targets(rows: list[dict]) -> str:
    lines = []
    for name in dict.fromkeys(r["task"] for r in rows):
        by = {r["method"]: r for r in rows if r["task"] == name}
        pre, bon = by.get("pretrained"), by.get("best_of_n")
        for method, pm in by.items():
            if not (method.startswith("svdd_pm") and pre and bon):
                continue
            kept = ">= 0.99 kept" if min(pm["validity"], pm["uniqueness"]) >= 0.99 else "BELOW 0.99"
            lines.append(f"- {name}: {method} median {pm['median']:.3f} vs pretrained p90 {pre['p90']:.3f} "
                         f"({'met' if pm['median'] > pre['p90'] else 'NOT met'}); vs Best-of-N median "
                         f"{bon['median']:.3f} ({'met' if pm['median'] > bon['median'] else 'NOT met'}); validity "
                         f"{pm['validity']:.3f}, uniqueness {pm['uniqueness']:.3f} ({kept}).")
    return "\n".join(lines) + "\n"


def run_methods(task: Task, name: str, args: argparse.Namespace, methods: tuple[str, ...],
                options: dict[str, dict]) -> list[dict]:
    """Each method (svdd_pm<suffix>: SVDD-PM with `options[method]`) on `task`; a CSV of its samples."""
    from svdd.domains.molecules import write_smiles_csv

    rows = []
    for method in methods:
        res = run_method(task, "svdd_pm" if method.startswith("svdd_pm") else method, num_samples=args.num_samples,
                         num_candidates=args.num_candidates, seed=args.seed, max_batch=2048, progress=True,
                         **options.get(method, {}))
        rows.append(row(task, name, method, res))
        write_smiles_csv(args.out / f"molecules_{name}_{method}.csv", res.samples, res.rewards)
        print(rows[-1], flush=True)
    return rows


def part_guidance(args: argparse.Namespace, meta: dict[str, Any]) -> None:
    rows = []
    # svdd_pm selects by argmax (α = 0, as the paper's code); svdd_pm_alpha0.01 draws from softmax(v/0.01)
    methods = ("pretrained", "best_of_n", "svdd_pm", "svdd_pm_alpha0.01")
    for name in ("qed", "sa"):
        task = Task(f"molecules_{name}", steps=args.steps)
        rows += run_methods(task, name, args, methods, {"svdd_pm_alpha0.01": {"alpha": 0.01}})
    md = (f"N = {args.num_samples}, M = {args.num_candidates}, K = {args.steps} steps, seed {args.seed}. "
          "SA is (10 - SA)/9 (higher = easier to make). diversity = mean pairwise Tanimoto distance (Morgan r=2).\n\n"
          + table(rows) + "\n" + targets(rows))
    save(args.out, "guidance", meta, {"num_samples": args.num_samples, "num_candidates": args.num_candidates,
                                      "num_steps": args.steps, "rows": rows}, md)


def part_docking(args: argparse.Namespace, meta: dict[str, Any]) -> None:
    task = Task("molecules_docking", steps=args.steps, reward_workers=args.workers)
    tag = f"_{args.tag}" if args.tag else ""
    try:  # docking is the expensive part: SVDD-PM selects only at every `select_every`-th step
        rows = run_methods(task, "docking_parp1" + tag, args, tuple(args.methods.split(",")),
                           {"svdd_pm": {"select_steps": args.select_every}})
    finally:
        task.close()
    md = (f"PARP1, Vina exhaustiveness 1, N = {args.num_samples}, M = {args.num_candidates}, K = {args.steps}, "
          f"SVDD-PM selects every {args.select_every} steps, {args.workers} workers, seed {args.seed}. Reward = -Vina "
          "(kcal/mol, higher = better).\n\n" + table(rows) + "\n" + targets(rows))
    save(args.out, "docking" + tag, meta, {"num_samples": args.num_samples, "num_candidates": args.num_candidates,
                                           "num_steps": args.steps, "select_every": args.select_every, "rows": rows},
         md)


def main(argv: list[str] | None = None) -> None:
    argv = list(argv or [])
    ap = argparse.ArgumentParser(prog="python -m benchmarks molecules", description=__doc__.splitlines()[0])
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
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.num_samples is None:
        args.num_samples = {"pretrained": 1000, "guidance": 128, "docking": 16}[args.part]
    meta = provenance("molecules", argv, seed=args.seed, packages=PACKAGES)
    {"pretrained": part_pretrained, "guidance": part_guidance, "docking": part_docking}[args.part](args, meta)
