"""Train an SVDD-MC value network on rollouts of a pretrained sequence model.

Tasks: `--task ars1` (default): ARS1Activity on "dna-ars1" -> weights/dna-ars1-activity-value.pt;
`--task rna`: RNAFold() (-MFE) on "rna-hairpin" -> weights/rna-hairpin-mfe-value.pt.

Rollouts: `svdd.sampling.value_training.collect_rollouts` runs the pretrained model (32 steps, the
default of `load_pretrained`) and keeps every intermediate state; the target of every state is
ARS1Activity of the clean sample it led to (MSE regression, as the paper's code does).
A separate set of rollouts (another seed) measures the per-timestep Pearson correlation between
the network and the final reward.

    python -m svdd.domains.sequences.train_value [--task rna]     # ~8 min on one CPU core
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from svdd.sampling.value_training import save_value_run, train_conv_value

from .pretrained import DEFAULT_STEPS, WEIGHTS, load_pretrained
from .rewards import ARS1Activity, RNAFold

TASKS = {
    "ars1": ("dna-ars1", ARS1Activity, "ARS1Activity (weights/ars1-oracle.pt)", "dna-ars1-activity-value.pt"),
    "rna": ("rna-hairpin", RNAFold, "RNAFold() = -MFE (ViennaRNA)", "rna-hairpin-mfe-value.pt"),
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=list(TASKS), default="ars1")
    ap.add_argument("--rollouts", type=int, default=2048)
    ap.add_argument("--held-out", type=int, default=512)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.time()

    model_name, reward_cls, reward_desc, file = TASKS[args.task]
    out = args.out or WEIGHTS / file
    process = load_pretrained(model_name, num_steps=DEFAULT_STEPS)
    reward = reward_cls()
    net, losses, record = train_conv_value(
        process,
        reward,
        rollouts=args.rollouts,
        held_out=args.held_out,
        epochs=args.epochs,
        seed=args.seed,
        max_batch=1024,
    )
    meta = {
        "reward": reward_desc,
        "pretrained": model_name,
        "num_steps": DEFAULT_STEPS,
        "rollouts": args.rollouts,
        "held_out_rollouts": args.held_out,
        "epochs": args.epochs,
        "seed": args.seed,
        **record,
        "wall_time_s": time.time() - start,
        "torch": str(torch.__version__),
    }
    save_value_run(net, out, meta, losses)
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
