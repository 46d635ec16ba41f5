"""Images benchmark: SVDD on the shipped Fashion-MNIST DDPM, JPEG compressibility and a class reward.

For each reward: pretrained samples, Best-of-N (N·M pretrained samples, keep the top N: the same
number of UNet calls as SVDD-PM within ~2%), SVDD-PM, and (JPEG only) SVDD-MC with the shipped
value network. Same seed and inference steps for all. The pretrained row pools N·M samples so
that its 90th percentile is a stable reference. Also measures the pretrained model's quality bar
(the fraction of samples the classifier assigns its top class with probability >= 0.8).
Writes benchmarks/results/images.{json,csv} and images_grid.png.

    python -m benchmarks images --n 64 --m 8 --steps 50 --seed 0 --class shirt
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import svdd

from .methods import run_method
from .metrics import reward_quantiles
from .report import RESULTS, finish, provenance, pyplot, save_figure, write_csv, write_json
from .tasks import Task

CSV_FIELDS = ["reward", "method", "median", "p90", "mean", "p10", "max", "valid", "n", "model_calls", "value_calls",
              "reward_calls", "wall_time_s", "note"]


def stats(rewards: np.ndarray) -> dict:
    q = reward_quantiles(rewards)
    ok = rewards[np.isfinite(rewards)]
    return {"median": q["median"], "mean": q["mean"], "p10": float(np.quantile(ok, 0.1)), "p90": q["p90"],
            "max": q["max"], "valid": q["valid"], "n": int(rewards.size)}


def quality(images: list, clf: Any) -> dict:
    """The issue's bar: share of samples whose top class has probability >= 0.8, and class counts."""
    from svdd.domains.images import CLASS_NAMES

    p = np.exp(clf.log_probs(images))
    top = p.max(1)
    counts = np.bincount(p.argmax(1), minlength=len(CLASS_NAMES))
    return {"frac_top_prob_ge_0.8": float((top >= 0.8).mean()), "median_top_prob": float(np.median(top)),
            "n": len(images), "class_counts": dict(zip(CLASS_NAMES, counts.tolist()))}


def run(task: Task, method: str, n: int, m: int, seed: int, **options: Any) -> tuple[svdd.Result, float]:
    t0 = time.perf_counter()
    res = run_method(task, method, num_samples=n, num_candidates=m, seed=seed, max_batch=512, progress=True, **options)
    return res, time.perf_counter() - t0


def grid(rows: list[tuple[str, list]], path: Path, per_row: int = 16) -> None:
    plt = pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(len(rows), 1, figsize=(per_row * 0.55, len(rows) * 0.95 + 0.3))
    for ax, (title, images) in zip(np.atleast_1d(axes), rows):
        tiles = [img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy() for img in images[:per_row]]
        strip = np.concatenate([np.pad(t, 1, constant_values=1.0) for t in tiles], axis=1)
        ax.imshow(strip, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=8, loc="left")
        ax.axis("off")
    save_figure(fig, path, dpi=130)


def main(argv: list[str] | None = None) -> None:
    from svdd.domains.images import value_metadata

    argv = list(argv or [])
    p = argparse.ArgumentParser(prog="python -m benchmarks images", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--m", type=int, default=8)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--class", dest="class_", default="shirt")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    n, m, seed = args.n, args.m, args.seed
    meta = provenance("images", argv, seed=seed, packages=("diffusers",), num_samples=n, num_candidates=m,
                      inference_steps=args.steps, args={k: str(v) for k, v in vars(args).items()})
    jpeg = Task("images_jpeg", steps=args.steps)
    clf = jpeg.with_reward(f"classifier={args.class_}")
    rows, checks = [], {}

    # pretrained pool of N·M samples, scored by both rewards
    res, wall = run(jpeg, "pretrained", n * m, 1, seed)
    pool = res.samples
    pool_r = {jpeg.reward.name: res.rewards, clf.reward.name: clf.reward(pool)}
    q = quality(pool, clf.reward)
    grids = [(f"pretrained (median {jpeg.reward.name} {np.median(pool_r[jpeg.reward.name]):.3f}, "
              f"{clf.reward.name} {np.median(pool_r[clf.reward.name]):.3f})", pool)]
    for task in (jpeg, clf):
        rows.append({"reward": task.reward.name, "method": "pretrained", **stats(pool_r[task.reward.name]),
                     "model_calls": res.stats["model_calls"], "wall_time_s": round(wall, 1),
                     "note": f"pool of N*M={n * m} pretrained samples"})

    for task in (jpeg, clf):
        methods: list[tuple[str, dict]] = [("best_of_n", {}), ("svdd_pm", {})]
        if task is jpeg:
            methods.append(("svdd_mc", {"value": svdd.LearnedValue(task.value.fn, max_batch=512)}))
        for method, options in methods:
            res, wall = run(task, method, n, m, seed, **options)
            s = stats(res.rewards)
            rows.append({"reward": task.reward.name, "method": method, **s, "model_calls": res.stats["model_calls"],
                         "value_calls": res.stats.get("value_calls"), "reward_calls": res.stats.get("reward_calls"),
                         "wall_time_s": round(wall, 1), "note": ""})
            grids.append((f"{method} / {task.reward.name} (median {s['median']:.3f})", res.samples))
            if method == "svdd_pm":
                share = quality(res.samples, clf.reward)["frac_top_prob_ge_0.8"]
                rows[-1]["note"] = f"classifier top-prob>=0.8: {share:.2f}"
            print(rows[-1], flush=True)

    for task in (jpeg, clf):
        by = {r["method"]: r for r in rows if r["reward"] == task.reward.name}
        checks[task.reward.name] = {
            "svdd_pm_median_above_pretrained_p90": by["svdd_pm"]["median"] > by["pretrained"]["p90"],
            "svdd_pm_median_above_best_of_n_median": by["svdd_pm"]["median"] > by["best_of_n"]["median"],
            "model_calls_svdd_pm_over_best_of_n": by["svdd_pm"]["model_calls"] / by["best_of_n"]["model_calls"],
        }
    meta.update({"class": clf.reward.class_name, "pretrained_quality": q,
                 "value_net": {k: value_metadata("jpeg")[k] for k in ("num_train_rollouts", "val_times",
                                                                      "val_correlation")},
                 "checks": checks, "rows": rows})
    write_json(args.out / "images.json", finish(meta))
    write_csv(args.out / "images.csv", rows, CSV_FIELDS)
    grid(grids, args.out / "images_grid.png")
    print(json.dumps({"checks": checks, "pretrained_quality": q}, indent=2))
