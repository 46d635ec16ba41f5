"""Reward-guided image generation with diffusers, three ways (all offline, CPU friendly).

    python examples/images_guided.py                  # the shipped Fashion-MNIST DDPM if present
    python examples/images_guided.py --tiny           # a tiny random UNet (smoke test, noise images)

1. `svdd.sample` on `DiffusersProcess` (exact SVDD-PM: M UNet rows per sample and step),
   compared with plain ancestral sampling and Best-of-N at about the same UNet budget;
2. the drop-in scheduler: `pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=...)`;
3. `SVDDPipeline(unet, scheduler)(reward=...)`.

The reward is JPEG compressibility (the SVDD paper's image reward) from `svdd.domains.images` when
available, else the mean brightness of the image.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from diffusers import DDPMPipeline, DDPMScheduler

import svdd
from svdd.diffusers import DiffusersProcess, SVDDPipeline, SVDDScheduler
from svdd.diffusers.tiny import tiny_unet


def brightness(images):
    """Mean pixel value of each image in [0, 1] (higher = brighter)."""
    return np.array([float(img.mean()) for img in images])


def load(tiny: bool):
    """(pipeline, reward, description): the shipped model and JPEG reward when available."""
    if not tiny:
        try:
            from svdd.domains.images import JPEGCompressibility, load_pipeline

            return load_pipeline(), JPEGCompressibility(), "shipped Fashion-MNIST DDPM, JPEG compressibility"
        except (ImportError, FileNotFoundError, OSError) as exc:
            print(f"(no shipped image model: {exc}; using a tiny random UNet)")
    pipe = DDPMPipeline(unet=tiny_unet(), scheduler=DDPMScheduler())
    pipe.set_progress_bar_config(disable=True)
    return pipe, brightness, "tiny random UNet, mean brightness"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="use a tiny random UNet instead of the shipped DDPM")
    parser.add_argument("--num-samples", type=int, default=8)
    parser.add_argument("--num-candidates", type=int, default=8)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe, reward, what = load(args.tiny)
    n, m, k = args.num_samples, args.num_candidates, args.steps
    print(f"{what}; N={n} samples, M={m} candidates, {k} steps, seed {args.seed}")

    # 1. the adapter + svdd.sample
    process = DiffusersProcess.from_pipeline(pipe, num_inference_steps=k)
    for method in ("pretrained", "best_of_n", "svdd"):
        start = time.perf_counter()
        res = svdd.sample(
            process,
            reward,
            method=method,
            num_samples=n,
            num_candidates=m,
            generator=torch.Generator().manual_seed(args.seed),
            progress=False,
        )
        print(
            f"  svdd.sample {method:<10} reward median {np.median(res.rewards):8.4f}  "
            f"mean {res.rewards.mean():8.4f}  UNet rows {res.stats['model_calls']:6d}  "
            f"{time.perf_counter() - start:5.1f} s"
        )

    # 2. the drop-in scheduler inside the unmodified pipeline
    base_scheduler = pipe.scheduler
    pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=reward, num_candidates=m)
    start = time.perf_counter()
    images = pipe(
        batch_size=n, num_inference_steps=k, generator=torch.Generator().manual_seed(args.seed), output_type="np"
    ).images
    scores = np.asarray(reward(list(torch.from_numpy(images).permute(0, 3, 1, 2))))
    rows = pipe.scheduler.stats["model_calls"] + pipe.scheduler.stats["pipeline_unet_rows"]
    print(
        f"  SVDDScheduler in {type(pipe).__name__}: reward median {np.median(scores):8.4f}  "
        f"UNet rows {rows:6d}  {time.perf_counter() - start:5.1f} s"
    )
    pipe.scheduler.detach()
    pipe.scheduler = base_scheduler

    # 3. the explicit pipeline
    out = SVDDPipeline(unet=pipe.unet, scheduler=base_scheduler)(
        reward=reward,
        batch_size=n,
        num_candidates=m,
        num_inference_steps=k,
        generator=torch.Generator().manual_seed(args.seed),
        output_type="np",
        progress=False,
    )
    print(f"  SVDDPipeline: reward median {np.median(out.result.rewards):8.4f}, images {out.images.shape}")


if __name__ == "__main__":
    main()
