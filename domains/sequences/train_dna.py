"""Train the "dna-ars1" masked diffusion model on the ARS1 150-bp variant library.

Data: `logomaker/examples/datafiles/ars_sequences.txt.gz` (logomaker wheel; 603,569 variants).
A random subset (seed 0) of `--train-size` variants is the training set and 2,000 other
variants the validation set; the read counts are not used (the model learns the library's
sequence distribution, not its activity).

    python -m svdd.domains.sequences.train_dna            # ~10 min on one CPU core
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

from .alphabet import DNA
from .data import ars1_path, load_ars1
from .pretrained import WEIGHTS


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--train-size", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=WEIGHTS / "dna-ars1.safetensors")
    ap.add_argument("--checkpoint", type=Path, default=Path("runs/sequences/dna-ars1.ckpt"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    lib = load_ars1()
    order = np.random.default_rng(args.seed).permutation(len(lib))
    train_idx, val_idx = order[: args.train_size], order[args.train_size : args.train_size + 2000]
    train = DNA.encode([lib.sequences[i] for i in train_idx], length=150)
    val = DNA.encode([lib.sequences[i] for i in val_idx], length=150)

    net = ConvDenoiser(vocab_size=4, length=150, channels=64, num_blocks=4, kernel_size=5, dilations=(1, 2, 4, 8))
    start = time.time()
    log = train_masked(
        net,
        train,
        mask_index=4,
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
        data=f"ARS1 library, {ars1_path().name} in the logomaker wheel",
        seed=args.seed,
        steps=args.steps,
        batch_size=args.batch_size,
    )
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
