"""Train the Fashion-MNIST classifier behind `ClassifierReward`.

Data: Debian `dataset-fashion-mnist` (60k train / 10k test), padded to 32x32, scaled to [-1, 1].
Seed 0, 1 CPU thread. Writes `weights/classifier.safetensors` and `weights/classifier.json`
(config, test accuracy).

    python -m svdd.domains.images.train_classifier [--epochs 4]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from svdd.processes.weights import save_net

from .classifier import CLASSIFIER_PATH, FashionCNN
from .data import DATA_DIR, load_fashion_mnist, to_model_space


def evaluate(net: FashionCNN, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(x[i : i + batch]).argmax(1) for i in range(0, len(x), batch)])
    return (pred == y).float().mean().item()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    x_tr, y_tr = load_fashion_mnist("train")
    x_te, y_te = load_fashion_mnist("test")
    x_tr, x_te = to_model_space(x_tr), to_model_space(x_te)
    y_tr, y_te = torch.from_numpy(y_tr), torch.from_numpy(y_te)

    net = FashionCNN()
    steps = args.epochs * (len(x_tr) // args.batch_size)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps)
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(len(x_tr), generator=gen)
        bar = tqdm(range(len(x_tr) // args.batch_size), desc=f"epoch {epoch}", mininterval=10)
        for i in bar:
            idx = perm[i * args.batch_size : (i + 1) * args.batch_size]
            xb = x_tr[idx]
            # light augmentation: horizontal flips (clothing is left/right symmetric enough)
            flip = torch.rand(len(xb), generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            loss = F.cross_entropy(net(xb), y_tr[idx], label_smoothing=0.0)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        print(f"epoch {epoch}: test accuracy {evaluate(net, x_te, y_te):.4f}", flush=True)
    acc = evaluate(net, x_te, y_te)
    meta = {
        "test_accuracy": acc,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "data": f"Debian dataset-fashion-mnist ({DATA_DIR})",
        "train_seconds": round(time.time() - t0, 1),
        "torch": torch.__version__,
        "command": "python -m svdd.domains.images.train_classifier "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
    }
    save_net(net, CLASSIFIER_PATH, nets={"FashionCNN": FashionCNN}, **meta)
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
