"""Train an SVDD-MC value network on rollouts of a pretrained sequence model.

Tasks: `--task ars1` (default): ARS1Activity on "dna-ars1" -> weights/dna-ars1-activity-value.pt;
`--task rna`: RNAFold() (-MFE) on "rna-hairpin" -> weights/rna-hairpin-mfe-value.pt.

Rollouts: `svdd.value_training.collect_rollouts` runs the pretrained model (32 steps, the
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

import numpy as np
import torch

from svdd.masked_nets import ConvValue, save_net
from svdd.value_training import collect_rollouts, fit_value, value_correlation

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
    train = collect_rollouts(
        process, reward, args.rollouts, generator=torch.Generator().manual_seed(args.seed), max_batch=1024
    )
    held = collect_rollouts(
        process, reward, args.held_out, generator=torch.Generator().manual_seed(args.seed + 1), max_batch=1024
    )
    net = ConvValue(vocab_size=process.vocab_size, length=process.length, channels=64, num_blocks=4)
    losses = fit_value(
        net, train, epochs=args.epochs, batch_size=256, lr=1e-3, generator=torch.Generator().manual_seed(args.seed)
    )
    corr = value_correlation(net, held)
    times = [float(t) for t in held.times]
    meta = {
        "reward": reward_desc,
        "pretrained": model_name,
        "num_steps": DEFAULT_STEPS,
        "rollouts": args.rollouts,
        "held_out_rollouts": args.held_out,
        "epochs": args.epochs,
        "seed": args.seed,
        "final_train_mse": losses[-1],
        "reward_var": float(train.rewards.var()),
        "held_out_corr_mean": float(np.nanmean(corr)),
        "held_out_corr_at_t": {f"{t:.4f}": (None if np.isnan(c) else float(c)) for t, c in zip(times, corr)},
        "wall_time_s": time.time() - start,
        "torch": str(torch.__version__),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    save_net(net, out, **{k: v for k, v in meta.items() if not isinstance(v, dict)})
    out.with_suffix(".json").write_text(json.dumps({**meta, "train_loss": losses}, indent=1))
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
