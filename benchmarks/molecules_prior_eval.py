"""Sample quality of a molecule prior snapshot (e.g. "moses-selfies" v2 from train_prior.py) on MOSES.

    OMP_NUM_THREADS=1 python -m benchmarks.molecules_prior_eval /work/ckpt/moses-v2/snapshots/ema_step0012345.pt
    OMP_NUM_THREADS=1 python -m benchmarks.molecules_prior_eval SNAPSHOT --num-samples 10000   # final table
    OMP_NUM_THREADS=1 python -m benchmarks.molecules_prior_eval moses-selfies                 # the shipped model

SNAPSHOT: a weights file written by `domains.molecules.denoiser.save_denoiser` or `save_net` (the
SelfiesTokenizer dict in its metadata), or the name of a shipped model (`load_pretrained`).
Draws N samples (default 2,000) with plain reverse sampling (`svdd.sample(method="pretrained")`, K = 32
steps, one thread, seed 0) and reports validity, uniqueness, novelty vs the full MOSES train split
(its SMILES strings, RDKit-canonical already), W1 and means of QED / logP / SA / MW against
`--reference` random MOSES test molecules (`domains.molecules.metrics.distribution_metrics`),
internal diversity (mean pairwise Tanimoto distance, Morgan r = 2, 2048 bits; and 1024 bits as
MOSES IntDiv1) of the samples and of as many test molecules, FCD vs the test reference (`fcd_torch`,
as benchmarks/molecules.py) and the sampling time. Writes JSON (default: next to the snapshot,
<snapshot>.eval<N>.json) and, with `--samples-csv`, the samples.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch


def load_process(snapshot: str, steps: int):
    """(svdd.MaskedDiffusion, record) for a snapshot file or a shipped model name."""
    from svdd.domains.molecules.pretrained import load_process as load

    process = load(snapshot, num_steps=steps)
    net, meta = process.denoiser, dict(process.metadata or {})
    record = {k: v for k, v in meta.items() if k not in ("tokenizer",)}
    record["class"] = type(net).__name__
    record["config"] = dict(getattr(net, "config", {}))
    record["parameters"] = sum(p.numel() for p in net.parameters())
    return process, record


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("snapshot")
    ap.add_argument("--num-samples", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reference", type=int, default=10000, help="random MOSES test molecules (FCD, W1, diversity)")
    ap.add_argument("--max-batch", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-fcd", action="store_true")
    ap.add_argument(
        "--fcd-floor",
        action="store_true",
        help="also FCD of another random test subset of the same size vs the reference",
    )
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--samples-csv", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    import svdd
    from svdd.domains.molecules import (
        canonical,
        distribution_metrics,
        mean_pairwise_tanimoto_distance,
        moses_smiles,
        write_smiles_csv,
    )
    from svdd.domains.molecules.rewards import QED

    process, record = load_process(args.snapshot, args.steps)
    start = time.time()
    res = svdd.sample(
        process,
        QED(),
        method="pretrained",
        num_samples=args.num_samples,
        generator=torch.Generator().manual_seed(args.seed),
        max_batch=args.max_batch,
        progress=False,
    )
    sampling_s = time.time() - start
    samples = list(res.samples)
    if args.samples_csv:
        write_smiles_csv(args.samples_csv, samples, res.rewards)

    test = moses_smiles("test", args.reference, seed=args.seed)
    full_train = set(moses_smiles("train"))
    metrics = distribution_metrics(samples, test, training=full_train)
    valid = sorted({c for c in (canonical(s) for s in samples) if c is not None})
    n_div = min(len(samples), len(test))
    metrics["diversity"] = mean_pairwise_tanimoto_distance(samples)
    metrics["reference_diversity"] = mean_pairwise_tanimoto_distance(test[:n_div])
    metrics["IntDiv1_1024"] = mean_pairwise_tanimoto_distance(samples, bits=1024)
    metrics["reference_IntDiv1_1024"] = mean_pairwise_tanimoto_distance(test[:n_div], bits=1024)
    if not args.no_fcd:
        from fcd_torch import FCD

        fcd = FCD(device="cpu", n_jobs=1)
        metrics["FCD_vs_test"] = float(fcd(valid, test)) if len(valid) > 1 else float("nan")
        if args.fcd_floor:
            metrics["FCD_test_subset_vs_other_test_subset"] = float(
                fcd(moses_smiles("test", len(valid), seed=args.seed + 1), test)
            )
    metrics["sampling_time_s"] = sampling_s
    metrics["sampling_time_per_1000_s"] = 1000 * sampling_s / max(args.num_samples, 1)
    out = {
        "command": "python -m benchmarks.molecules_prior_eval " + " ".join(argv or []),
        "snapshot": str(args.snapshot),
        "model": record,
        "num_samples": args.num_samples,
        "num_steps": args.steps,
        "seed": args.seed,
        "threads": args.threads,
        "reference": f"MOSES test, {len(test)} random (numpy seed {args.seed})",
        "novelty_reference": "the full MOSES train split (SMILES strings as given)",
        "metrics": metrics,
        "torch": str(torch.__version__),
        "machine": platform.processor() or platform.machine(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    path = args.out
    if path is None:
        base = Path(args.snapshot)
        path = (
            base.with_name(base.name + f".eval{args.num_samples}.json")
            if base.exists()
            else Path(f"molecules_prior_eval_{args.snapshot}_{args.num_samples}.json")
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else str(o)))
    print(json.dumps(metrics, indent=1))
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
