"""`make demo`: pretrained vs reward-guided sampling on models shipped with svdd (CPU, offline).

- DNA: the masked diffusion model on ARS1 variants, reward = the ARS1 activity oracle;
- images: the Fashion-MNIST DDPM (a UNet) and the Fashion-MNIST DiT flow model (a transformer
  trained by flow matching on a tiny VAE's latents, a diffusers `DiTPipeline`), reward = log p(shirt)
  under the shipped classifier.

For each: the median and 90th percentile reward of pretrained samples, Best-of-N and SVDD-PM
at about the same number of model calls, so the comparison is compute-matched.
"""

from __future__ import annotations

import time

import torch

import svdd
from svdd.domains import images, sequences


def compare(name: str, process, reward, num_samples: int, num_candidates: int) -> None:
    print(f"\n{name}: N={num_samples}, M={num_candidates}, {len(process.timesteps)} steps")
    print(f"  {'method':<11}{'median':>9}{'p90':>9}{'model calls':>13}{'seconds':>9}")
    for method in ("pretrained", "best_of_n", "svdd"):
        start = time.perf_counter()
        res = svdd.sample(
            process,
            reward,
            method=method,
            num_samples=num_samples,
            num_candidates=num_candidates,
            generator=torch.Generator().manual_seed(0),
            progress=False,
        )
        s = res.summary()
        print(
            f"  {method:<11}{s['median']:>9.3f}{s['p90']:>9.3f}{res.stats['model_calls']:>13}"
            f"{time.perf_counter() - start:>9.1f}"
        )


def main() -> None:
    print("svdd demo: pretrained vs reward-guided sampling (higher reward is better)")
    compare(
        "DNA (ARS1 variants), reward ARS1Activity",
        sequences.load_pretrained("dna-ars1"),
        sequences.ARS1Activity(),
        32,
        8,
    )
    compare(
        "Images (Fashion-MNIST DDPM), reward log p(shirt)",
        images.load_pretrained(num_steps=20),
        images.ClassifierReward("shirt"),
        8,
        4,
    )
    compare(
        "Images (Fashion-MNIST DiT flow model), reward log p(shirt)",
        images.load_pretrained("fashion-mnist-dit-flow", num_steps=20),
        images.ClassifierReward("shirt"),
        8,
        4,
    )


if __name__ == "__main__":
    main()
