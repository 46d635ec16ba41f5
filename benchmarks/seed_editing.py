"""Seed editing: reward against distance to the seed, for DNA (ARS1 activity), molecules (QED) and
proteins (-(instability index) of ubiquitin on its backbone, ProteinMPNN).

A designer edits a seed instead of starting from nothing. For each domain a few low-reward natural
seeds are taken (ARS1 library variants and MOSES test molecules at the 5th, 10th and 15th
percentile of the reward; for proteins the one native sequence of ubiquitin, instability index
36.1). Each is edited by masking a fraction f of its positions and denoising only those, in two
modes (timesteps start at t0 = f in both):

  region    `process.from_seed(seed, positions=P)`: one set P of round(f·n) of the seed's n tokens
            (pads excluded), drawn once per seed (nested across f), the same for every sample and
            method: the designer's editable region
  random    `process.from_seed(seed, mask_fraction=f)`: a fresh random subset of round(f·L) of all L
            positions (SELFIES pads included, so a molecule may grow) for every sample

At the same N and M, three methods start from there:

  pretrained   ancestral sampling from the seed (N samples)
  best_of_n    N·M samples from the seed, keep the best N (model calls N·M·K_f, slightly above SVDD's)
  svdd         SVDD-PM, α = 0 (model calls N + N·M·(K_f - 1))
  svdd_select_mask   (random mode only) SVDD-PM with `select_start=True`: each sample's mask is
               chosen among M random masks by the PM value at t0 (N·M model and reward calls at the
               first step instead of N), so its model calls equal Best-of-N's. (The DNA and molecule
               rows were made before the sampler had `select_start`, by an emulation that drew the N·M
               starts, kept the best and ran SVDD-PM from them: the same algorithm and counts.)

Distance to the seed: Hamming (tokens changed, at most round(f·L) by construction) for both
domains, and Tanimoto distance (1 - similarity of Morgan fingerprints, radius 2, 2048 bits) for
molecules. Writes benchmarks/results/seed_editing.{md,json,png}; a run of some domains keeps the
stored rows of the others. Another domain is one more entry of DOMAINS.

    python -m benchmarks seed_editing --domains dna molecules   # N=32, M=10, K=32, 3 seeds, f in 0.1 0.2 0.4
    python -m benchmarks seed_editing --domains proteins --num-samples 16 --num-candidates 8
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import svdd

from .metrics import reward_quantiles
from .report import RESULTS, finish, md_table, provenance, pyplot, save_figure, write_json
from .tasks import Task

METHODS = ("pretrained", "best_of_n", "svdd", "svdd_select_mask")
MODES = ("region", "random")
SEED_QUANTILES = (0.05, 0.10, 0.15)


def dna(steps: int) -> dict[str, Any]:
    """The ARS1 model, its reward, and natural seeds: 2,000 library variants scored by the oracle."""
    from svdd.domains.sequences.data import load_ars1

    task = Task("dna_ars1", steps=steps)
    process, reward = task.process, task.reward
    pool = load_ars1(limit=20000).sequences
    pool = [pool[i] for i in np.random.default_rng(0).choice(len(pool), 2000, replace=False)]
    return {"process": process, "reward": reward, "reward_name": "ARS1Activity", "pool": pool,
            "encode": lambda s: process.tokenizer.encode([s])[0], "pad": None, "distance": None}


def molecules(steps: int) -> dict[str, Any]:
    """The MOSES SELFIES model, QED, and seeds from the 500 shipped MOSES test molecules."""
    from svdd.domains.molecules import sample_smiles, tanimoto_distance

    task = Task("molecules_qed", steps=steps)
    process = task.process
    pool = [s for s in sample_smiles() if process.tokenizer.encodable(s)]
    return {"process": process, "reward": task.reward, "reward_name": "QED", "pool": pool,
            "encode": lambda s: process.tokenizer.encode(s)[0], "pad": process.tokenizer.pad_index,
            "distance": tanimoto_distance}


def proteins(steps: int) -> dict[str, Any]:
    """ProteinMPNN on ubiquitin (1ubi), reward -(instability index); the seed is the native sequence."""
    task = Task("proteins_instability", steps=steps)
    process = task.process
    return {"process": process, "reward": task.reward, "reward_name": "-InstabilityIndex", "pool": [process.native],
            "seeds": [process.native], "encode": lambda s: process.encode([s])[0], "pad": None, "distance": None,
            "max_batch": 256}


DOMAINS: dict[str, Callable[[int], dict[str, Any]]] = {"dna": dna, "molecules": molecules, "proteins": proteins}


def pick_seeds(domain: dict[str, Any], count: int) -> list[tuple[str, float]]:
    """(seed, reward) at the SEED_QUANTILES of the pool's rewards (the first `count` of them), or the
    domain's own `seeds`."""
    if "seeds" in domain:
        seeds = domain["seeds"][:count]
        return list(zip(seeds, (float(r) for r in domain["reward"](seeds))))
    scores = np.asarray(domain["reward"](domain["pool"]), dtype=np.float64)
    order = [i for i in np.argsort(scores) if np.isfinite(scores[i])]
    ranks = [int(q * (len(order) - 1)) for q in SEED_QUANTILES[:count]]
    return [(domain["pool"][order[r]], float(scores[order[r]])) for r in ranks]


def edit(domain: dict[str, Any], seed_obj: str, index: int, fraction: float, mode: str, args):
    """The seed-editing process: a region of positions drawn once per seed (nested across fractions),
    or a fresh random subset per sample."""
    tokens = domain["encode"](seed_obj)
    if mode == "random":
        return domain["process"].from_seed(tokens, mask_fraction=fraction)
    editable = (tokens != domain["pad"]).nonzero().flatten() if domain["pad"] is not None else torch.arange(len(tokens))
    order = editable[torch.randperm(len(editable), generator=torch.Generator().manual_seed(args.seed + index))]
    return domain["process"].from_seed(tokens, positions=order[: max(1, round(fraction * len(editable)))])


def run(domain: dict[str, Any], seed_obj: str, seed_reward: float, edited: Any, method: str, args) -> dict:
    res = svdd.sample(edited, domain["reward"], method="svdd" if method == "svdd_select_mask" else method,
                      num_samples=args.num_samples, num_candidates=args.num_candidates,
                      generator=torch.Generator().manual_seed(args.seed), max_batch=domain.get("max_batch", "auto"),
                      progress=False, **({"select_start": True} if method == "svdd_select_mask" else {}))
    r = np.asarray(res.rewards, dtype=np.float64)
    q, ok = reward_quantiles(r), r[np.isfinite(r)]
    hamming = edited.hamming_to_seed(res.states).numpy()
    row = {"masked": edited.seed_mask_count, "steps": len(edited.timesteps), "method": method,
           "seed_reward": seed_reward, **{k: q[k] for k in ("median", "p90", "mean", "max", "valid")},
           "improved": float((ok > seed_reward).mean()), "unique": len(set(res.samples)) / len(res.samples),
           "hamming_mean": float(hamming.mean()), "hamming_max": int(hamming.max()),
           "model_calls": int(res.stats["model_calls"]), "reward_calls": int(res.stats["reward_calls"]),
           "wall_time_s": float(res.stats["wall_time_s"]), "num_samples": args.num_samples,
           "num_candidates": args.num_candidates}
    if domain["distance"] is not None:
        row["tanimoto_mean"] = float(np.nanmean(domain["distance"](res.samples, seed_obj)))
    return row


def summary(rows: list[dict]) -> list[dict]:
    """Per (domain, mode, fraction, method): means over seeds of the reward gain and the distances."""
    out = []
    keys = {(r["domain"], r["mode"], r["fraction"], r["method"]) for r in rows}
    for key in sorted(keys, key=lambda k: (k[0], MODES.index(k[1]), k[2], METHODS.index(k[3]))):
        group = [r for r in rows if (r["domain"], r["mode"], r["fraction"], r["method"]) == key]
        entry = {"domain": key[0], "mode": key[1], "fraction": key[2], "method": key[3]}
        for name in ("median", "p90", "hamming_mean", "tanimoto_mean", "improved", "unique", "model_calls"):
            if name in group[0]:
                entry[name] = float(np.mean([g[name] for g in group]))
        entry["median_gain"] = float(np.mean([g["median"] - g["seed_reward"] for g in group]))
        out.append(entry)
    return out


def markdown(rows: list[dict], table: list[dict], meta: dict) -> str:
    v = meta["versions"]
    sizes = {r["domain"]: f"N = {r['num_samples']}, M = {r['num_candidates']}" for r in rows}
    setup = (f"{'; '.join(f'{d}: {text}' for d, text in sizes.items())}; K = {meta['steps']} steps for a full chain "
             f"(ceil(f·K) from a seed), torch seed {meta['seed']}; {v['platform']}, {v['cpu_count']} cores, "
             f"{v['torch_threads']} torch thread(s), torch {v['torch']}; this run {meta['total_wall_time_s']:.0f} s"
             + "".join(f"; earlier run `{m['command']}` ({m['total_wall_time_s']:.0f} s)"
                       for m in meta.get("earlier_runs", [])) + ".")
    legend = ("Seeds: natural sequences / molecules at the 5th, 10th and 15th percentile of the reward; for proteins "
              "the native ubiquitin sequence (reward -36.1). f = fraction "
              "of positions masked; the rest is kept. Mode region: one set of f·n of the seed's n tokens (SELFIES "
              "pads excluded) per seed, shared by every sample and method; mode random: a fresh random subset of "
              "f·L of all L positions per sample (pads included). Gain = median reward minus the seed's reward, "
              "averaged over the seeds. Hamming = tokens changed (mean); Tanimoto = 1 - Morgan similarity to the "
              "seed (mean, molecules). Best-of-N uses N·M·K_f model calls, SVDD-PM N + N·M·(K_f - 1).")
    lines = ["# Seed editing: reward against distance to the seed", "", f"Command: `{meta['command']}`  ", setup, "",
             legend, ""]
    lines += md_table(["domain", "mode", "f", "method", "median gain", "median", "90%", "improved", "Hamming",
                       "Tanimoto", "unique", "calls"],
                      [[e["domain"], e["mode"], f"{e['fraction']:.1f}", e["method"], f"{e['median_gain']:+.3f}",
                        f"{e['median']:.3f}", f"{e['p90']:.3f}", f"{e['improved']:.2f}", f"{e['hamming_mean']:.1f}",
                        f"{e['tanimoto_mean']:.3f}" if "tanimoto_mean" in e else "-", f"{e['unique']:.2f}",
                        f"{e['model_calls']:.0f}"] for e in table])
    lines += ["", "## Per seed", ""]
    lines += md_table(["domain", "mode", "seed", "seed reward", "f", "method", "median", "max", "Hamming mean (max)"],
                      [[r["domain"], r["mode"], r["seed_index"], f"{r['seed_reward']:.3f}", f"{r['fraction']:.1f}",
                        r["method"], f"{r['median']:.3f}", f"{r['max']:.3f}",
                        f"{r['hamming_mean']:.1f} ({r['hamming_max']})"] for r in rows])
    lines += ["", "## Checks", ""]
    for e in (e for e in table if e["method"] == "svdd"):
        same = {x["method"]: x for x in table
                if (x["domain"], x["mode"], x["fraction"]) == (e["domain"], e["mode"], e["fraction"])}
        bon, pre = same["best_of_n"], same["pretrained"]
        better = "better" if e["median"] > bon["median"] else "NOT better"
        lines.append(f"- {e['domain']}, {e['mode']}, f = {e['fraction']:.1f}: SVDD median gain "
                     f"{e['median_gain']:+.3f} vs Best-of-N {bon['median_gain']:+.3f} ({better}"
                     f", {e['model_calls']:.0f} vs {bon['model_calls']:.0f} model calls); vs pretrained-from-seed "
                     f"90th percentile {pre['p90']:.3f} ({'above' if e['median'] > pre['p90'] else 'NOT above'}); "
                     f"mean Hamming {e['hamming_mean']:.1f} (Best-of-N {bon['hamming_mean']:.1f}).")
        if "svdd_select_mask" in same:
            sel = same["svdd_select_mask"]
            lines.append(f"  - with the mask chosen among M draws: median gain {sel['median_gain']:+.3f} "
                         f"({'better' if sel['median'] > bon['median'] else 'NOT better'} than Best-of-N, "
                         f"{sel['model_calls']:.0f} model calls).")
    return "\n".join(lines) + "\n"


def plot(table: list[dict], path: Path) -> None:
    plt = pyplot()
    if plt is None:
        return
    domains = sorted({e["domain"] for e in table})
    modes = [m for m in MODES if any(e["mode"] == m for e in table)]
    fig, axes = plt.subplots(len(modes), len(domains), figsize=(5.5 * len(domains), 4 * len(modes)), squeeze=False)
    for (row, mode), (col, domain) in ((r, c) for r in enumerate(modes) for c in enumerate(domains)):
        ax = axes[row][col]
        rows = [e for e in table if e["domain"] == domain and e["mode"] == mode]
        distance = "tanimoto_mean" if "tanimoto_mean" in rows[0] else "hamming_mean"
        for method in METHODS:
            pts = sorted((e[distance], e["median_gain"], e["fraction"]) for e in rows if e["method"] == method)
            if not pts:
                continue
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=method)
            for d, g, f in pts:
                ax.annotate(f"f={f:.1f}", (d, g), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xlabel(f"mean {'Tanimoto' if distance == 'tanimoto_mean' else 'Hamming'} distance to seed")
        ax.set_ylabel("median reward - seed reward (mean over seeds)")
        ax.set_title(f"{domain}, {mode} positions")
        ax.legend(fontsize=8)
    save_figure(fig, path)


def merged(path: Path, rows: list[dict], meta: dict) -> tuple[list[dict], dict]:
    """This run's rows after the stored rows of the domains it did not run (with their run's N and M)."""
    if not path.exists():
        return rows, meta
    old = json.loads(path.read_text())
    done = {r["domain"] for r in rows}
    kept = [{"num_samples": old["meta"]["num_samples"], "num_candidates": old["meta"]["num_candidates"], **r}
            for r in old["rows"] if r["domain"] not in done]
    if kept:
        meta["earlier_runs"] = [{k: v for k, v in old["meta"].items() if k != "earlier_runs"},
                                *old["meta"].get("earlier_runs", [])][:3]
    return kept + rows, meta


def main(argv: list[str] | None = None) -> None:
    argv = list(argv or [])
    parser = argparse.ArgumentParser(prog="python -m benchmarks seed_editing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", nargs="+", default=list(DOMAINS), choices=list(DOMAINS))
    parser.add_argument("--num-samples", type=int, default=32)
    parser.add_argument("--num-candidates", type=int, default=10)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--seeds", type=int, default=3, choices=range(1, len(SEED_QUANTILES) + 1))
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.2, 0.4])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--replot", action="store_true", help="redraw the .md and .png from the .json in --out")
    args = parser.parse_args(argv)
    if args.replot:
        saved = json.loads((args.out / "seed_editing.json").read_text())
        (args.out / "seed_editing.md").write_text(markdown(saved["rows"], saved["summary"], saved["meta"]))
        plot(saved["summary"], args.out / "seed_editing.png")
        return
    meta = provenance("seed_editing", argv, seed=args.seed, packages=("rdkit", "selfies"),
                      num_samples=args.num_samples, num_candidates=args.num_candidates, steps=args.steps)
    rows = []
    for name in args.domains:
        domain = DOMAINS[name](args.steps)
        for index, (seed_obj, seed_reward) in enumerate(pick_seeds(domain, args.seeds)):
            for mode in args.modes:
                for fraction in args.fractions:
                    edited = edit(domain, seed_obj, index, fraction, mode, args)
                    for method in METHODS if mode == "random" else METHODS[:-1]:
                        row = {"domain": name, "mode": mode, "fraction": fraction, "seed_index": index,
                               "seed_object": seed_obj, **run(domain, seed_obj, seed_reward, edited, method, args)}
                        rows.append(row)
                        print(f"{name} {mode} seed {index} f={fraction} {method}: median {row['median']:.3f} "
                              f"(seed {seed_reward:.3f}), Hamming {row['hamming_mean']:.1f}", flush=True)
    rows, meta = merged(args.out / "seed_editing.json", rows, finish(meta, wall_key="total_wall_time_s"))
    table = summary(rows)
    write_json(args.out / "seed_editing.json", {"meta": meta, "summary": table, "rows": rows})
    (args.out / "seed_editing.md").write_text(markdown(rows, table, meta))
    plot(table, args.out / "seed_editing.png")
    print(f"wrote {args.out / 'seed_editing.md'} in {meta['total_wall_time_s']:.0f} s")

