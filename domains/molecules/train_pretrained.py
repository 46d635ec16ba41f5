"""Train the "moses-selfies" masked diffusion model on MOSES molecules written as SELFIES.

Data: the MOSES train split (1,584,663 SMILES, from ZINC Clean Leads) inside the `molsets` 0.3.1
wheel (`pip install --no-deps molsets`; read by path, see data.py). A random subset (default
200,000, numpy seed 0) is encoded as SELFIES; the vocabulary is every symbol of the subset plus
the pad "[nop]"; molecules longer than L = 56 symbols are dropped (MOSES max is about 50).
2,000 further molecules are the validation set. Denoiser: `svdd.processes.nets.ConvDenoiser`.

    python -m svdd.domains.molecules.train_pretrained      # ~25 min on one CPU core (make train-molecules)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from svdd.processes.nets import ConvDenoiser
from svdd.processes.training import save_training_run, train_masked

from .data import moses_smiles
from .pretrained import WEIGHTS
from .tokenizer import SelfiesTokenizer

LENGTH = 56


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-train", type=int, default=200_000)
    ap.add_argument("--num-val", type=int, default=2_000)
    ap.add_argument("--steps", type=int, default=3500)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=WEIGHTS / "moses-selfies.safetensors")
    ap.add_argument("--checkpoint", type=Path, default=Path("runs/molecules/moses-selfies.ckpt"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    smiles = moses_smiles("train", args.num_train + args.num_val, seed=args.seed)
    tokenizer = SelfiesTokenizer.build(tqdm(smiles, desc="vocabulary"), LENGTH)
    keep = [s for s in tqdm(smiles, desc="filter") if tokenizer.encodable(s)]
    val, train = tokenizer.encode(keep[: args.num_val]), tokenizer.encode(keep[args.num_val :])

    net = ConvDenoiser(
        vocab_size=tokenizer.size, length=LENGTH, channels=128, num_blocks=6, kernel_size=5, dilations=(1, 2, 4, 8)
    )
    start = time.time()
    log = train_masked(
        net,
        train,
        mask_index=tokenizer.size,
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
        data="MOSES train split (molsets 0.3.1 wheel, moses/dataset/data/train.csv.gz), random subset",
        tokenizer=tokenizer.to_dict(),
        dropped_too_long=len(smiles) - len(keep),
        seed=args.seed,
        steps=args.steps,
        batch_size=args.batch_size,
    )
    print(json.dumps({k: v for k, v in meta.items() if k != "tokenizer"}, indent=1))


if __name__ == "__main__":
    main()
