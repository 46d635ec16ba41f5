"""Fit the ARS1Activity oracle: a CNN from 150-bp DNA to the ARS1 library's selection enrichment.

Data: `ars_sequences.txt.gz` in the logomaker wheel (603,569 variants with library and selected
read counts). Target: log((selected_ct + 1)/(library_ct + 1)), standardised with the training
split's mean and std. Split (seed 0): 90% train, 5% validation (model selection per epoch), 5% test.
Reported on the test split: Pearson and Spearman correlation of prediction vs enrichment, on all
test variants and on the better-measured ones (library_ct + selected_ct >= 10), whose
enrichment is less dominated by read-count noise.

    python -m svdd.domains.sequences.train_oracle         # ~8 min on one CPU core
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .alphabet import DNA
from .data import ars1_path, load_ars1
from .oracle import ARS1CNN, save_oracle
from .pretrained import WEIGHTS


def _ranks(a: np.ndarray) -> np.ndarray:
    order = np.argsort(a, kind="stable")
    ranks = np.empty(len(a))
    ranks[order] = np.arange(len(a))
    # average ties
    _, inv, counts = np.unique(a, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    return (sums / counts)[inv]


def correlations(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {
        "pearson": float(np.corrcoef(pred, y)[0, 1]),
        "spearman": float(np.corrcoef(_ranks(pred), _ranks(y))[0, 1]),
        "n": len(y),
    }


def predict(net: ARS1CNN, tokens: torch.Tensor, batch: int = 4096) -> np.ndarray:
    net.eval()
    out = []
    with torch.no_grad():
        for s in range(0, tokens.shape[0], batch):
            out.append(net(torch.nn.functional.one_hot(tokens[s : s + batch].long(), 4).float().transpose(1, 2)))
    return torch.cat(out).numpy()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="use only this many variants (quick checks)")
    ap.add_argument("--out", type=Path, default=WEIGHTS / "ars1-oracle.safetensors")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.time()

    lib = load_ars1()
    n = len(lib) if args.limit is None else min(args.limit, len(lib))
    order = np.random.default_rng(args.seed).permutation(len(lib))[:n]
    tokens = torch.cat(
        [
            DNA.encode([lib.sequences[i] for i in order[s : s + 50_000]], length=150).to(torch.uint8)
            for s in range(0, n, 50_000)
        ]
    )
    y_raw = lib.enrichment()[order]
    depth = (lib.library_ct + lib.selected_ct)[order]
    n_train, n_val = int(0.9 * n), int(0.05 * n)
    tr, va, te = slice(0, n_train), slice(n_train, n_train + n_val), slice(n_train + n_val, n)
    mean, std = float(y_raw[tr].mean()), float(y_raw[tr].std())
    y = torch.tensor((y_raw - mean) / std, dtype=torch.float32)

    net = ARS1CNN(length=150)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    total_steps = args.epochs * ((n_train + args.batch_size - 1) // args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total_steps, pct_start=0.05)
    gen = torch.Generator().manual_seed(args.seed)
    best, best_state, history = -np.inf, None, []
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(n_train, generator=gen)
        bar = tqdm(range(0, n_train, args.batch_size), desc=f"oracle epoch {epoch + 1}/{args.epochs}")
        for s in bar:
            idx = perm[s : s + args.batch_size]
            x = torch.nn.functional.one_hot(tokens[idx].long(), 4).float().transpose(1, 2)
            loss = torch.nn.functional.mse_loss(net(x), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.set_postfix(mse=f"{loss.item():.3f}", refresh=False)
        val = correlations(predict(net, tokens[va]), y_raw[va])
        history.append(val)
        print(f"epoch {epoch + 1}: validation {val}", flush=True)
        if val["pearson"] > best:
            best, best_state = val["pearson"], {k: v.clone() for k, v in net.state_dict().items()}
    assert best_state is not None  # at least one epoch ran
    net.load_state_dict(best_state)
    pred_te = predict(net, tokens[te])
    deep = depth[te] >= 10
    meta = {
        "data": f"ARS1 library, {ars1_path().name} in the logomaker wheel",
        "target": "log((selected_ct+1)/(library_ct+1)), standardised",
        "target_mean": mean,
        "target_std": std,
        "seed": args.seed,
        "epochs": args.epochs,
        "split": {"train": n_train, "validation": n_val, "test": n - n_train - n_val},
        "test_all": correlations(pred_te, y_raw[te]),
        "test_depth_ge_10": correlations(pred_te[deep], y_raw[te][deep]),
        "test_pearson": correlations(pred_te, y_raw[te])["pearson"],
        "test_spearman": correlations(pred_te, y_raw[te])["spearman"],
        "validation_per_epoch": history,
        "wall_time_s": time.time() - start,
        "torch": str(torch.__version__),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_oracle(net, args.out, **meta)  # X.safetensors + X.json with the whole record
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
