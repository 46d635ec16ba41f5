"""Images benchmark: SVDD on the shipped Fashion-MNIST DDPM, JPEG compressibility and a class reward.

For each reward: pretrained samples, Best-of-N (N·M pretrained samples, keep the top N: the same
number of UNet calls as SVDD-PM within ~2%), SVDD-PM, and (JPEG only) SVDD-MC with the shipped
value network. Same seed and inference steps for all. The pretrained row pools N·M samples so
that its 90th percentile is a stable reference. Also measures the pretrained model's quality bar
(the fraction of samples the classifier assigns its top class with probability >= 0.8).
Writes benchmarks/results/images.{json,csv} and images_grid.png.

    OMP_NUM_THREADS=1 python benchmarks/images.py --n 64 --m 8 --steps 50 --seed 0 --class shirt
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

import svdd
from svdd.domains.images import (CLASS_NAMES, ClassifierReward, JPEGCompressibility, load_pretrained,
                            load_value, value_metadata)

RESULTS = Path(__file__).resolve().parent / "results"


def stats(rewards: np.ndarray) -> dict:
    ok = rewards[np.isfinite(rewards)]
    return {"median": float(np.median(ok)), "mean": float(ok.mean()), "p10": float(np.quantile(ok, 0.1)),
            "p90": float(np.quantile(ok, 0.9)), "max": float(ok.max()), "valid": ok.size / rewards.size,
            "n": int(rewards.size)}


def quality(images: list, clf: ClassifierReward) -> dict:
    """The issue's bar: share of samples whose top class has probability >= 0.8, and class counts."""
    p = np.exp(clf.log_probs(images))
    top = p.max(1)
    counts = np.bincount(p.argmax(1), minlength=len(CLASS_NAMES))
    return {"frac_top_prob_ge_0.8": float((top >= 0.8).mean()), "median_top_prob": float(np.median(top)),
            "n": len(images), "class_counts": dict(zip(CLASS_NAMES, counts.tolist()))}


def run(process, reward, method, n, m, seed, value=None):
    t0 = time.perf_counter()
    res = svdd.sample(process, reward, method=method, value=value, num_samples=n, num_candidates=m,
                      generator=torch.Generator().manual_seed(seed), max_batch=512, progress=True)
    wall = time.perf_counter() - t0
    return res, wall


def grid(rows: list[tuple[str, list]], path: Path, per_row: int = 16) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(rows), 1, figsize=(per_row * 0.55, len(rows) * 0.95 + 0.3))
    for ax, (title, images) in zip(np.atleast_1d(axes), rows):
        tiles = [img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy() for img in images[:per_row]]
        strip = np.concatenate([np.pad(t, 1, constant_values=1.0) for t in tiles], axis=1)
        ax.imshow(strip, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=8, loc="left")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--m", type=int, default=8)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--class", dest="class_", default="shirt")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    n, m, seed = args.n, args.m, args.seed

    process = load_pretrained(num_steps=args.steps)
    jpeg, clf = JPEGCompressibility(), ClassifierReward(args.class_)
    rows, table, grids = [], {}, []

    # pretrained pool of N·M samples, scored by both rewards
    res, wall = run(process, jpeg, "pretrained", n * m, 1, seed)
    pool = res.samples
    pool_r = {jpeg.name: res.rewards, clf.name: clf(pool)}
    q = quality(pool, clf)
    grids.append((f"pretrained (median {jpeg.name} {np.median(pool_r[jpeg.name]):.3f}, "
                  f"{clf.name} {np.median(pool_r[clf.name]):.3f})", pool))
    for reward in (jpeg, clf):
        rows.append({"reward": reward.name, "method": "pretrained", **stats(pool_r[reward.name]),
                     "model_calls": res.stats["model_calls"], "wall_time_s": round(wall, 1),
                     "note": f"pool of N*M={n * m} pretrained samples"})

    for reward in (jpeg, clf):
        methods = [("best_of_n", None), ("svdd", None)]
        if reward is jpeg:
            methods.append(("svdd", svdd.LearnedValue(load_value("jpeg").fn, max_batch=512)))
        for method, value in methods:
            label = {"best_of_n": "best_of_n", "svdd": "svdd_pm" if value is None else "svdd_mc"}[method]
            res, wall = run(process, reward, method, n, m, seed, value=value)
            s = stats(res.rewards)
            rows.append({"reward": reward.name, "method": label, **s, "model_calls": res.stats["model_calls"],
                         "value_calls": res.stats.get("value_calls"), "reward_calls": res.stats.get("reward_calls"),
                         "wall_time_s": round(wall, 1), "note": ""})
            grids.append((f"{label} / {reward.name} (median {s['median']:.3f})", res.samples))
            if label == "svdd_pm":
                q_guided = quality(res.samples, clf)
                rows[-1]["note"] = f"classifier top-prob>=0.8: {q_guided['frac_top_prob_ge_0.8']:.2f}"
            print(rows[-1], flush=True)

    for reward in (jpeg, clf):
        by = {r["method"]: r for r in rows if r["reward"] == reward.name}
        table[reward.name] = {
            "svdd_pm_median_above_pretrained_p90": by["svdd_pm"]["median"] > by["pretrained"]["p90"],
            "svdd_pm_median_above_best_of_n_median": by["svdd_pm"]["median"] > by["best_of_n"]["median"],
            "model_calls_svdd_pm_over_best_of_n": by["svdd_pm"]["model_calls"] / by["best_of_n"]["model_calls"],
        }

    import diffusers
    meta = {
        "command": "OMP_NUM_THREADS=1 python benchmarks/images.py " + " ".join(sys.argv[1:]),
        "args": {k: str(v) for k, v in vars(args).items()}, "num_samples": n, "num_candidates": m,
        "inference_steps": args.steps, "seed": seed, "class": clf.class_name,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "diffusers": diffusers.__version__, "numpy": np.__version__},
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        "pretrained_quality": q, "value_net": {k: value_metadata("jpeg")[k] for k in
                                                ("num_train_rollouts", "val_times", "val_correlation")},
        "checks": table, "rows": rows,
    }
    (args.out / "images.json").write_text(json.dumps(meta, indent=2) + "\n")
    with open(args.out / "images.csv", "w", newline="") as fh:
        keys = ["reward", "method", "median", "p90", "mean", "p10", "max", "valid", "n", "model_calls",
                "value_calls", "reward_calls", "wall_time_s", "note"]
        w = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    grid(grids, args.out / "images_grid.png")
    print(json.dumps({"checks": table, "pretrained_quality": q}, indent=2))


if __name__ == "__main__":
    main()
