"""SVDD-MC value networks for docking, trained on a docking label set (`docking_labels.py`).

    OMP_NUM_THREADS=1 python -m svdd.domains.molecules.docking_value LABELS --target PARP1 \\
        --model moses-selfies --out runs/molecules/docking-value-PARP1

An MC value estimates v(x_t) = E[r(x_0) | x_t] under the pretrained reverse process. For a masked
diffusion model whose reverse step unmasks positions independently of their tokens (the MDLM step,
"random" unmasking), the pair (x_t, x_0) along a rollout has the law x_0 ~ p_model,
x_t = `process.add_mask(x_0, t)`: each token masked independently with probability t. So a labelled
final sample x_0 yields a state at every t for free, and one docking per molecule trains the value at
every time, where rollout-based training (`svdd train-value`) docks one molecule per rollout as
well but keeps only the states its rollout passed through. The label set's MOSES molecules stand in
for samples of a prior fitted to MOSES.

Each epoch draws a fresh t ~ U(0, 1) and a fresh mask for every labelled molecule (the set is small,
so this augmentation matters), and regresses a `ConvValue(x_t, t)` on the label by mean squared
error. A held-out split (by molecule, seeded) is scored at fixed times with a fixed mask; the Pearson
correlation per time is kept in the weights' metadata.

Writes OUT.safetensors + OUT.json (`save_net`; the metadata holds the target, the label set's
size and settings, the model whose tokenizer encodes the states, and the held-out correlations).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from svdd.processes.nets import ConvValue
from svdd.processes.weights import save_net
from svdd.sampling.value_training import Rollouts, value_correlation

from .docking_labels import MOLECULES

EVAL_TIMES = (0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875)


def read_labels(folder: Path, target: str) -> pd.DataFrame:
    """The docked molecules of `target` in a label folder: columns index, source, smiles, score
    (finite scores only, in the molecule list's order). ValueError naming the file if absent."""
    molecules, labels = folder / MOLECULES, folder / f"docking_{target}.csv"
    for path in (molecules, labels):
        if not path.exists():
            raise ValueError(f"{path} does not exist: LABELS must be an output folder of docking_labels.py")
    table = pd.read_csv(molecules).merge(pd.read_csv(labels)[["index", "score"]], on="index")
    return table[np.isfinite(table["score"].to_numpy(float))].sort_values("index").reset_index(drop=True)


def split(n: int, held_out: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, held-out rows) of n molecules: a seeded random `held_out` fraction is held out."""
    order = np.random.default_rng(seed).permutation(n)
    k = max(1, round(held_out * n))
    return np.sort(order[k:]), np.sort(order[:k])


def held_out_correlation(
    net: torch.nn.Module, process: Any, x0: torch.Tensor, y: torch.Tensor, seed: int
) -> dict[str, float]:
    """Pearson r between net(x_t, t) and the labels y [n] on x_t = add_mask(x0 Long[n, L], t), per
    time in EVAL_TIMES (one fixed mask per time, generator seeded `seed`)."""
    generator = torch.Generator().manual_seed(seed)
    states = [process.add_mask(x0, torch.full((x0.shape[0],), t), generator) for t in EVAL_TIMES]
    corr = value_correlation(net, Rollouts(states, list(EVAL_TIMES), y.double()))
    return {f"{t:.3f}": float(c) for t, c in zip(EVAL_TIMES, corr)}


def train(
    net: torch.nn.Module,
    process: Any,
    x0: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    progress: bool = True,
) -> list[float]:
    """Fit net(x_t, t) to y [n] (float32) by MSE, with fresh t ~ U(0, 1) and masks of x0 Long[n, L]
    each epoch and a cosine learning-rate decay; the mean train loss per epoch."""
    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * -(-x0.shape[0] // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    losses = []
    net.train()
    for _ in tqdm(range(epochs), desc="docking value", disable=not progress):
        order = torch.randperm(x0.shape[0], generator=generator)
        total = 0.0
        for start in range(0, order.numel(), batch_size):
            idx = order[start : start + batch_size]
            t = torch.rand(idx.numel(), generator=generator)
            pred = net(process.add_mask(x0[idx], t, generator), t)
            loss = torch.nn.functional.mse_loss(pred, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            total += loss.item() * idx.numel()
        losses.append(total / x0.shape[0])
    net.eval()
    return losses


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("labels", type=Path, help="output folder of docking_labels.py")
    ap.add_argument("--target", required=True, help="a target docked in that folder, e.g. PARP1")
    ap.add_argument("--model", default="moses-selfies", help="the prior whose tokenizer encodes the states")
    ap.add_argument("--out", type=Path, required=True, help="weights path X (writes X.safetensors + X.json)")
    ap.add_argument("--held-out", type=float, default=0.1, help="fraction of molecules held out")
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-2)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not 0 < args.held_out < 1:
        ap.error(f"--held-out must be a fraction in (0, 1); got {args.held_out}")
    try:
        table = read_labels(args.labels, args.target)
    except ValueError as exc:
        ap.error(str(exc))
    from .pretrained import load_process

    process = load_process(args.model)
    tokenizer = process.tokenizer
    fits = np.array([tokenizer.encodable(s) for s in table["smiles"]])
    table = table[fits].reset_index(drop=True)
    if len(table) < 20:
        ap.error(f"{args.labels}: only {len(table)} finite {args.target} labels the tokenizer encodes; need >= 20")
    x0 = tokenizer.encode(list(table["smiles"]))
    y = torch.tensor(table["score"].to_numpy(np.float32))
    train_rows, held_rows = split(len(table), args.held_out, args.seed)
    torch.manual_seed(args.seed)
    net = ConvValue(
        vocab_size=process.vocab_size,
        length=process.length,
        channels=args.channels,
        num_blocks=args.blocks,
        dropout=args.dropout,
    )
    start = time.time()
    losses = train(
        net,
        process,
        x0[train_rows],
        y[train_rows],
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        seed=args.seed,
    )
    corr = held_out_correlation(net, process, x0[held_rows], y[held_rows], seed=args.seed + 1)
    settings_file = args.labels / "settings.json"
    meta = {
        "domain": "molecules",
        "reward": "docking",
        "target": args.target,
        "model": str(args.model),
        "source": "docking_value.py: masked label-set molecules at t ~ U(0, 1)",
        "labels": len(table),
        "label_sources": {k: int(v) for k, v in table["source"].value_counts().items()},
        "train_size": len(train_rows),
        "held_out_size": len(held_rows),
        "reward_mean": float(y[train_rows].mean()),
        "reward_std": float(y[train_rows].std()),
        "held_out_correlation": corr,
        "label_settings": json.loads(settings_file.read_text()) if settings_file.exists() else None,
        "epochs": args.epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "weight_decay": args.weight_decay,
        "train_seconds": round(time.time() - start, 1),
        "final_train_mse": losses[-1],
        "command": "python -m svdd.domains.molecules.docking_value " + shlex.join(argv or sys.argv[1:]),
    }
    path = save_net(net, args.out, **meta)
    print(json.dumps({"weights": str(path), "held_out_correlation": corr, "labels": len(table)}, indent=1))
    return meta


if __name__ == "__main__":
    main()
