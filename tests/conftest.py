"""Shared fixtures: small toy processes whose behaviour is known exactly.

The repository root goes on sys.path, so tests can import the `benchmarks` package of a clone
(the benchmarks are not installed).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from svdd.processes.toys import ExactChain, GaussianMixtureDiffusion, MaskedToy, all_sequences

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WEIGHTS = torch.tensor([1.0, 0.7, 0.4], dtype=torch.float64)


def weighted_sum(seqs):
    """Reward of token tuples: 1.0·x0 + 0.7·x1 + 0.4·x2 (distinct for every sequence)."""
    return [1.0 * s[0] + 0.7 * s[1] + 0.4 * s[2] for s in seqs]


def toy_probs() -> torch.Tensor:
    """Data over the 27 sequences of length 3 with tokens {0, 1, 2}: never a 2 in the first
    position (so the globally best sequence (2, 2, 2) is unreachable), otherwise uneven."""
    seqs = all_sequences(3, 3)
    probs = 1.0 + seqs[:, 1].to(torch.float64) * 0.5 + (seqs[:, 2] == 0).to(torch.float64)
    probs[seqs[:, 0] == 2] = 0.0
    return probs


@pytest.fixture
def masked_toy() -> MaskedToy:
    return MaskedToy(toy_probs(), vocab_size=3, length=3, num_steps=3)


@pytest.fixture
def chain(masked_toy) -> ExactChain:
    return ExactChain(masked_toy)


@pytest.fixture
def toy_rewards() -> torch.Tensor:
    return (all_sequences(3, 3).to(torch.float64) * WEIGHTS).sum(-1)


@pytest.fixture
def mixture() -> GaussianMixtureDiffusion:
    return GaussianMixtureDiffusion(num_steps=20)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def brightness(images) -> list[float]:
    """Mean pixel value of each image (a reward for the diffusers tests)."""
    return [float(img.mean()) for img in images]


class RowCounter:
    """Counts a module's forward passes and the rows through them (a forward hook)."""

    def __init__(self, module):
        self.calls = self.rows = 0
        self.handle = module.register_forward_hook(self)

    def __call__(self, module, args, output):
        self.calls += 1
        self.rows += (output if isinstance(output, torch.Tensor) else output[0]).shape[0]

    def remove(self):
        self.handle.remove()


def random_denoiser(x, t):
    """Logits [B, L, 4] over 4 tokens that depend on the input (deterministic): a stand-in DNA model."""
    g = torch.Generator().manual_seed(int(x.sum()) % 1000 + x.shape[0])
    return torch.randn(x.shape[0], x.shape[1], 4, generator=g) * 2


def count_threes(seqs):
    """Reward of token tuples: how many 3s."""
    return [float(sum(token == 3 for token in s)) for s in seqs]


class Delegating:
    """A process that forwards every protocol member to `process` (subclass it to watch or drop one)."""

    def __init__(self, process):
        self.process = process
        self.timesteps = process.timesteps

    def prior(self, n, generator=None):
        return self.process.prior(n, generator)

    def model(self, x, t):
        return self.process.model(x, t)

    def transition(self, x, t, out, generator=None):
        return self.process.transition(x, t, out, generator)

    def denoised(self, x, t, out):
        return self.process.denoised(x, t, out)

    def decode(self, x0):
        return self.process.decode(x0)


def requested(stats):
    """Objects the sampler asked the reward for: those scored plus those answered by the reward cache."""
    return stats["reward_calls"] + stats["reward_cache_hits"]
