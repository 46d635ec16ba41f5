"""Guided vs pretrained sampling on the toy processes shipped with svdd.

Run with `make demo`. Two toys whose pretrained model is exact:
- a 1-D Gaussian mixture (modes at -2 and +2) under a 50-step DDPM-like sampler, reward
  r(x) = -(x - 3)^2, which prefers the far side of the right mode;
- a masked discrete diffusion over length-3 sequences of 3 tokens, reward = a weighted token sum.
"""

from __future__ import annotations

import torch

import svdd
from svdd.toys import GaussianMixtureDiffusion, MaskedToy, all_sequences


def near_three(xs: list[float]) -> list[float]:
    """Reward of 1-D samples: -(x - 3)^2."""
    return [-(x - 3.0) ** 2 for x in xs]


def weighted_sum(seqs: list[tuple[int, ...]]) -> list[float]:
    """Reward of token sequences: 1.0·x0 + 0.7·x1 + 0.4·x2."""
    return [1.0 * s[0] + 0.7 * s[1] + 0.4 * s[2] for s in seqs]


def compare(name: str, process, reward, num_samples: int, num_candidates: int) -> None:
    print(f"\n{name}: N={num_samples}, M={num_candidates}")
    print(f"  {'method':<11}{'median':>9}{'p90':>9}{'model calls':>13}{'reward calls':>14}")
    for method, alpha in (("pretrained", 0.0), ("best_of_n", 0.0), ("smc", 0.1), ("svdd", 0.0)):
        res = svdd.sample(process, reward, method=method, num_samples=num_samples,
                          num_candidates=num_candidates, alpha=alpha,
                          generator=torch.Generator().manual_seed(0), progress=False)
        s = res.summary()
        print(f"  {method:<11}{s['median']:>9.3f}{s['p90']:>9.3f}"
              f"{res.stats['model_calls']:>13}{res.stats['reward_calls']:>14}")


def main() -> None:
    print("svdd demo: pretrained vs reward-guided sampling (higher reward is better)")
    compare("Gaussian mixture, reward -(x-3)^2", GaussianMixtureDiffusion(num_steps=50), near_three, 256, 8)
    probs = torch.ones(27, dtype=torch.float64)
    probs[all_sequences(3, 3)[:, 0] == 2] = 0.2  # a first token of 2 is rarer in the data
    compare("Masked sequences, reward 1.0*x0 + 0.7*x1 + 0.4*x2", MaskedToy(probs, num_steps=3),
            weighted_sum, 512, 8)


if __name__ == "__main__":
    main()
