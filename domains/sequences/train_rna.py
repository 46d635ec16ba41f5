"""Train the "rna-hairpin" masked diffusion model on miRBase hairpins of 50-100 nt.

Data: `hairpin.fa.gz` (miRBase release 21 stem-loops) from the Debian package seqkit-examples,
extracted by `make train-sequences` to build/seqkit-examples/. Kept: 50-100 nt, only ACGU
(17,995 sequences). Each sequence is right-padded with the pad token "-" to 100 positions, so the
model also learns where a sequence ends; decoding drops the pads. Split (seed 0): 95% train,
5% validation.

    python -m svdd.domains.sequences.train_rna [--hairpins PATH]   # ~10 min on one CPU core
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from svdd.processes.nets import ConvDenoiser
from svdd.processes.training import save_training_run, train_masked

from .alphabet import RNA
from .data import HAIRPIN_DEFAULT, load_hairpins
from .pretrained import WEIGHTS


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hairpins", type=Path, default=HAIRPIN_DEFAULT)
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=WEIGHTS / "rna-hairpin.safetensors")
    ap.add_argument("--checkpoint", type=Path, default=Path("runs/sequences/rna-hairpin.ckpt"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    records = load_hairpins(args.hairpins)
    order = np.random.default_rng(args.seed).permutation(len(records))
    n_val = len(records) // 20
    seqs = [records[i][1] for i in order]
    val, train = RNA.encode(seqs[:n_val], length=100), RNA.encode(seqs[n_val:], length=100)

    net = ConvDenoiser(
        vocab_size=RNA.size, length=100, channels=64, num_blocks=5, kernel_size=5, dilations=(1, 2, 4, 8, 16)
    )
    start = time.time()
    log = train_masked(
        net,
        train,
        mask_index=RNA.size,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=2e-3,
        val_data=val,
        log_every=250,
        checkpoint=args.checkpoint,
        seed=args.seed,
    )
    meta = save_training_run(
        net,
        log,
        args.out,
        train=train,
        val=val,
        started=start,
        data="miRBase hairpins (release 21), hairpin.fa.gz from Debian seqkit-examples; 50-100 nt, ACGU only",
        padding="right-padded with '-' (token 4) to 100; decode drops pads",
        seed=args.seed,
        steps=args.steps,
        batch_size=args.batch_size,
    )
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
