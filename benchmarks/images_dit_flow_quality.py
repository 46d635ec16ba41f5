"""Sample quality of the shipped transformer flow-matching model (`domains/images/weights/dit_flow`).

Loads the folder with the standard `diffusers.DiTPipeline.from_pretrained`, draws `--n-per-class`
samples for each Fashion-MNIST class (class-conditional, DPM-Solver flow scheduler, `--steps`
steps) at each of `--guidance-scales`, and scores them with the shipped Fashion-MNIST classifier
(`ClassifierReward.log_probs`): accuracy of the conditioned class (argmax == class), mean
log p(class), the fraction whose top class has probability >= 0.8 and the median top probability
(the DDPM's quality bar in `images_pretrained_quality.json`, quoted for comparison: its samples
are unconditional, so only those two columns compare), and median JPEG compressibility.
Reference rows: the classifier on the real test images, and on the test images passed through the
pipeline's VAE (the ceiling any latent model can reach). 1 CPU thread.

Writes benchmarks/results/images_dit_flow.{md,json,png} (the grid: one row per class, 10 samples,
at the first guidance scale).

    python -m benchmarks.images_dit_flow_quality --n-per-class 50 --steps 20 --guidance-scales 2 1 4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from svdd.domains.images.data import CLASS_NAMES, DATA_DIR
from svdd.domains.images.rewards import ClassifierReward, JPEGCompressibility
from svdd.domains.images.train_dit_flow import DIT_FLOW_DIR

RESULTS = Path(__file__).resolve().parent / "results"
DDPM_QUALITY = RESULTS / "images_pretrained_quality.json"


def score(images: torch.Tensor, labels: np.ndarray, clf: ClassifierReward, jpeg: JPEGCompressibility) -> dict:
    """Classifier metrics of images float [n, 1, H, W] in [0, 1] conditioned on `labels`."""
    lp = clf.log_probs(images)  # [n, 10]
    top = np.exp(lp.max(axis=1))
    per_class = {
        CLASS_NAMES[c]: float((lp[labels == c].argmax(axis=1) == c).mean()) for c in np.unique(labels) if c >= 0
    }
    return {
        "n": len(labels),
        "accuracy": float((lp.argmax(axis=1) == labels).mean()),
        "mean_log_p_class": float(lp[np.arange(len(labels)), labels].mean()),
        "frac_top_prob_ge_0.8": float((top >= 0.8).mean()),
        "median_top_prob": float(np.median(top)),
        "jpeg_median_kb": float(-np.median(jpeg(images))),
        "per_class_accuracy": per_class,
    }


def save_grid(images: torch.Tensor, path: Path, per_row: int = 10, pad: int = 2) -> None:
    """Tile images float [n, 1, H, W] in [0, 1] (row-major, `per_row` per row) into one grey PNG."""
    from PIL import Image

    n, _, h, w = images.shape
    rows = (n + per_row - 1) // per_row
    canvas = np.ones((rows * (h + pad) + pad, per_row * (w + pad) + pad), dtype=np.uint8) * 255
    for i, x in enumerate(images[:, 0].clamp(0, 1).mul(255).round().byte().numpy()):
        r, c = divmod(i, per_row)
        canvas[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = x
    Image.fromarray(canvas, mode="L").resize((canvas.shape[1] * 3, canvas.shape[0] * 3), Image.NEAREST).save(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=Path, default=DIT_FLOW_DIR)
    p.add_argument("--n-per-class", type=int, default=50)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance-scales", type=float, nargs="+", default=[2.0, 1.0, 4.0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--n-test", type=int, default=1000, help="test images for the real / VAE reference rows")
    p.add_argument("--out", type=Path, default=RESULTS / "images_dit_flow")
    args = p.parse_args()
    torch.set_num_threads(1)
    from diffusers import DiTPipeline

    command = "python -m benchmarks.images_dit_flow_quality " + " ".join(sys.argv[1:])
    pipe = DiTPipeline.from_pretrained(args.weights)
    pipe.set_progress_bar_config(disable=True)
    meta = json.loads((args.weights / "training.json").read_text())
    clf, jpeg = ClassifierReward(0), JPEGCompressibility()
    labels = np.repeat(np.arange(len(CLASS_NAMES)), args.n_per_class)

    rows, grid_images = [], None
    for gs in args.guidance_scales:
        t0 = time.time()
        gen = torch.Generator().manual_seed(args.seed)
        chunks = [
            pipe(
                class_labels=labels[s : s + args.batch].tolist(),
                guidance_scale=gs,
                num_inference_steps=args.steps,
                generator=gen,
                output_type="pt",
            ).images
            for s in range(0, len(labels), args.batch)
        ]
        images = torch.cat(chunks)
        seconds = time.time() - t0
        row = {
            "guidance_scale": gs,
            "steps": args.steps,
            "seconds": round(seconds, 1),
            **score(images, labels, clf, jpeg),
        }
        rows.append(row)
        print(f"guidance {gs}: accuracy {row['accuracy']:.3f}, mean log p {row['mean_log_p_class']:.3f}", flush=True)
        if grid_images is None:
            grid_images = images.view(len(CLASS_NAMES), args.n_per_class, *images.shape[1:])[:, :10].flatten(0, 1)

    refs = []
    try:
        from svdd.domains.images.data import load_fashion_mnist, to_model_space

        images_u8, y = load_fashion_mnist("test")
        x = to_model_space(images_u8[: args.n_test])
        y = y[: args.n_test]
        refs.append({"name": "real test images", **score((x + 1) / 2, y, clf, jpeg)})
        with torch.no_grad():
            rec = pipe.vae.decode(pipe.vae.encode(x).latent_dist.mean).sample
        refs.append({"name": "test images through the VAE", **score(((rec + 1) / 2).clamp(0, 1), y, clf, jpeg)})
    except FileNotFoundError as exc:
        print(f"reference rows skipped: {exc}", flush=True)
    ddpm = json.loads(DDPM_QUALITY.read_text()) if DDPM_QUALITY.exists() else None

    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_grid(grid_images, args.out.with_suffix(".png"))
    record = {
        "command": command,
        "weights": str(args.weights),
        "n_per_class": args.n_per_class,
        "seed": args.seed,
        "rows": rows,
        "references": refs,
        "ddpm_unconditional": ddpm,
        "training": {k: meta.get(k) for k in ("step", "train_seconds", "params", "scaling_factor")},
        "vae_test_recon_mse": meta.get("vae", {}).get("test_recon_mse"),
        "torch": torch.__version__,
    }
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")

    md = [
        "# Transformer flow-matching model on Fashion-MNIST: sample quality",
        "",
        f"    {command}",
        "",
        f"Pipeline: `DiTPipeline.from_pretrained({args.weights.name}/)` (DiT {meta.get('params')} parameters, "
        f"{meta.get('step')} training steps, {meta.get('train_seconds', 0) / 60:.0f} CPU-min; tiny AutoencoderKL "
        f"{meta.get('vae', {}).get('params')} parameters, test reconstruction MSE "
        f"{meta.get('vae', {}).get('test_recon_mse')} on the [-1, 1] scale). "
        f"{args.n_per_class} samples per class x 10 classes, DPM-Solver++ (flow) with {args.steps} steps, seed "
        f"{args.seed}. Classifier: the shipped Fashion-MNIST CNN (`ClassifierReward`). Data for the "
        f"reference rows: {DATA_DIR} test split, first {args.n_test}.",
        "",
        "| samples | guidance | n | accuracy (conditioned class) | mean log p(class) | top prob >= 0.8 "
        "| median top prob | median JPEG kB | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        md.append(
            f"| DiT flow, class-conditional | {r['guidance_scale']:g} | {r['n']} | {r['accuracy']:.3f} "
            f"| {r['mean_log_p_class']:.3f} | {r['frac_top_prob_ge_0.8']:.3f} | {r['median_top_prob']:.3f} "
            f"| {r['jpeg_median_kb']:.3f} | {r['seconds']} |"
        )
    for r in refs:
        md.append(
            f"| {r['name']} (true label) | - | {r['n']} | {r['accuracy']:.3f} | {r['mean_log_p_class']:.3f} "
            f"| {r['frac_top_prob_ge_0.8']:.3f} | {r['median_top_prob']:.3f} | {r['jpeg_median_kb']:.3f} | - |"
        )
    if ddpm:
        md.append(
            f"| DDPM (weights/ddpm), unconditional, {ddpm['inference_steps']} steps, from "
            f"`{DDPM_QUALITY.name}` | - | {ddpm['n']} | - | - | {ddpm['frac_top_prob_ge_0.8']:.3f} "
            f"| {ddpm['median_top_prob']:.3f} | {-ddpm['jpeg_median']:.3f} | {ddpm['seconds']} |"
        )
    first = rows[0]
    md += [
        "",
        f"Per-class accuracy at guidance {first['guidance_scale']:g}: "
        + ", ".join(f"{k} {v:.2f}" for k, v in first["per_class_accuracy"].items())
        + ".",
        "",
        f"Grid `{args.out.with_suffix('.png').name}`: one row per class (t-shirt at the top to ankle boot), "
        f"the first 10 samples of each at guidance {first['guidance_scale']:g}.",
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(md))
    print(f"wrote {args.out.with_suffix('.md')}", flush=True)


if __name__ == "__main__":
    main()
