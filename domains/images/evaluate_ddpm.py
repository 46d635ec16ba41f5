"""The pretrained DDPM's quality bar: do its samples look like clothing to the classifier?

Draws `--n` pretrained samples with `--steps` DDPM inference steps and reports the fraction whose
top class the shipped classifier assigns probability >= 0.8 (the issue's bar: at least 70%), the
class histogram and the median JPEG compressibility. 1 CPU thread. Writes
`benchmarks/results/images_pretrained_quality.json`.

    python -m svdd.domains.images.evaluate_ddpm --steps 100 --n 256 --seed 123
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import svdd

from .data import CLASS_NAMES
from .pretrained import DDPM_DIR, load_pretrained
from .rewards import ClassifierReward, JPEGCompressibility

OUT = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "images_pretrained_quality.json"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    res = svdd.sample(
        load_pretrained(num_steps=args.steps),
        JPEGCompressibility(),
        method="pretrained",
        num_samples=args.n,
        num_candidates=1,
        generator=torch.Generator().manual_seed(args.seed),
        max_batch=256,
    )
    probs = np.exp(ClassifierReward(0).log_probs(res.samples))
    top = probs.max(1)
    report = {
        "frac_top_prob_ge_0.8": float((top >= 0.8).mean()),
        "median_top_prob": float(np.median(top)),
        "class_counts": dict(zip(CLASS_NAMES, np.bincount(probs.argmax(1), minlength=10).tolist())),
        "jpeg_median": float(np.median(res.rewards)),
        "n": args.n,
        "inference_steps": args.steps,
        "seed": args.seed,
        "ddpm_train_steps": json.loads((DDPM_DIR / "training.json").read_text())["step"],
        "seconds": round(time.time() - t0, 1),
        "torch": torch.__version__,
        "command": f"python -m svdd.domains.images.evaluate_ddpm --steps {args.steps} --n {args.n} --seed {args.seed}",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
