"""Train an SVDD-MC value network (`--reward jpeg` or `--reward shirt`) on rollouts of a shipped model.

Rollouts: `svdd.sampling.value_training.collect_rollouts` on the pretrained `--model` (the DDPM by
default, or `fashion-mnist-dit-flow`, unconditional; through the `svdd.diffusers` adapter, `--steps`
inference steps), keeping the state x_t at every `--every`-th step;
targets are r(x_0) of each rollout. A held-out set of rollouts (other seed) gives the validation
Pearson correlation per timestep (`svdd.sampling.value_training.value_correlation`). 1 CPU thread.
Writes `weights/value_<reward>.safetensors` and `weights/value_<reward>.json` (config, record);
`value_dit_flow_<reward>` for the DiT flow model (its latents: 4x8x8, one downsampling).
Rewards: `jpeg` is `JPEGCompressibility()`, a Fashion-MNIST class name (e.g. `shirt`) is
`ClassifierReward(name)`.

    python -m svdd.domains.images.train_value --reward jpeg --train 1024 --val 256 --steps 50 --every 2
    python -m svdd.domains.images.train_value --reward shirt --train 1024 --val 256 --steps 50 --every 2
    python -m svdd.domains.images.train_value --model fashion-mnist-dit-flow --reward jpeg --train 1024 \
        --val 256 --steps 20 --every 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from svdd.processes.weights import save_net
from svdd.sampling.value_training import collect_rollouts, fit_value, value_correlation

from .pretrained import MODELS, load_pretrained
from .rewards import ClassifierReward, JPEGCompressibility
from .value import WEIGHTS_DIR, ValueNet


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="fashion-mnist-ddpm", choices=sorted(MODELS))
    p.add_argument("--reward", default="jpeg", help="jpeg, or a Fashion-MNIST class name (log p(class))")
    p.add_argument("--train", type=int, default=1024, help="training rollouts")
    p.add_argument("--val", type=int, default=256, help="held-out rollouts")
    p.add_argument("--steps", type=int, default=50, help="DDPM inference steps per rollout")
    p.add_argument("--every", type=int, default=2, help="keep the state of every k-th step")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-batch", type=int, default=256)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.time()

    process = load_pretrained(args.model, num_steps=args.steps)
    reward = JPEGCompressibility() if args.reward == "jpeg" else ClassifierReward(args.reward)
    train = collect_rollouts(
        process,
        reward,
        args.train,
        generator=torch.Generator().manual_seed(args.seed),
        every=args.every,
        max_batch=args.max_batch,
    )
    val = collect_rollouts(
        process,
        reward,
        args.val,
        generator=torch.Generator().manual_seed(args.seed + 1),
        every=args.every,
        max_batch=args.max_batch,
    )
    t_roll = time.time() - t0
    y = train.rewards[torch.isfinite(train.rewards)]
    channels, size = train.states[0].shape[1], train.states[0].shape[-1]
    net = ValueNet(
        y_mean=float(y.mean()), y_std=float(y.std()), in_channels=channels, downsamples=3 if size >= 32 else 1
    )
    losses = fit_value(
        net,
        train,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=128,
        generator=torch.Generator().manual_seed(args.seed + 2),
    )
    corr = value_correlation(net, val)
    times = [float(t) for t in val.times]
    meta = {
        "reward": reward.name,
        "num_train_rollouts": len(train),
        "num_val_rollouts": len(val),
        "num_train_states": len(train) * len(train.states),
        "inference_steps": args.steps,
        "train_reward_mean": float(y.mean()),
        "train_reward_std": float(y.std()),
        "epochs": args.epochs,
        "lr": args.lr,
        "train_losses": losses,
        "val_times": times,
        "val_correlation": [None if np.isnan(c) else float(c) for c in corr],
        "params": sum(q.numel() for q in net.parameters()),
        "seed": args.seed,
        "rollout_seconds": round(t_roll, 1),
        "total_seconds": round(time.time() - t0, 1),
        "pretrained": str(MODELS[args.model].relative_to(WEIGHTS_DIR.parent.parent.parent)),
        "torch": torch.__version__,
        "command": "python -m svdd.domains.images.train_value "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
    }
    prefix = "value_dit_flow_" if args.model == "fashion-mnist-dit-flow" else "value_"
    save_net(net, WEIGHTS_DIR / f"{prefix}{args.reward}", nets={"ValueNet": ValueNet}, **meta)
    print("validation correlation per timestep:")
    for t, c in zip(times, corr):
        print(f"  t={t:6.0f}  r={c:+.3f}")


if __name__ == "__main__":
    main()
