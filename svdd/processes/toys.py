"""Toy processes where everything can be computed exactly: for tests, demos and sanity checks.

- `MaskedToy`: masked diffusion over all length-L sequences of V tokens, whose denoiser is the
  exact posterior of a given data distribution; `UniformToy`: the same for uniform-noise
  diffusion. `ExactChain` enumerates either reverse chain: the pretrained distribution, the soft
  values v_t(x) = α log E[exp(r(x0)/α) | x_t] and the tilted target p_pre(x)·exp(r(x)/α)/Z.
- `GaussianMixtureDiffusion`: 1-D Gaussian-mixture data under a DDPM noise schedule, with the
  analytic posterior-mean denoiser and a DDIM(eta) transition (eta = 1: DDPM-like, 0: deterministic).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch

from .. import rng
from ..rng import GeneratorLike
from .masked import MaskedDiffusion
from .uniform import UniformDiffusion

# -- masked discrete toy ---------------------------------------------------------------------


def all_sequences(vocab_size: int, length: int) -> torch.Tensor:
    """Every sequence of `length` tokens from 0..vocab_size-1, Long[V**L, L], in lexicographic order."""
    return torch.tensor(list(itertools.product(range(vocab_size), repeat=length)), dtype=torch.long)


class PosteriorDenoiser:
    """The exact denoiser of a distribution over sequences: logits of p(x0_l = v | x_t).

    `probs` [V**L] gives the data probability of each sequence of `all_sequences(V, L)`.
    """

    def __init__(self, probs: torch.Tensor, vocab_size: int, length: int):
        self.sequences = all_sequences(vocab_size, length)
        if probs.shape != (self.sequences.shape[0],):
            raise ValueError(f"probs must have shape ({self.sequences.shape[0]},); got {tuple(probs.shape)}")
        self.probs = (probs / probs.sum()).to(torch.float64)
        self.vocab_size = vocab_size
        self.calls = 0

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t Long[B, L] -> logits float64 [B, L, V] (t unused: the posterior is time-free)."""
        self.calls += x_t.shape[0]
        masked = x_t == self.vocab_size
        agrees = (self.sequences.unsqueeze(0) == x_t.unsqueeze(1)) | masked.unsqueeze(1)  # [B, S, L]
        weight = agrees.all(dim=-1).to(torch.float64) * self.probs  # [B, S]
        onehot = torch.nn.functional.one_hot(self.sequences, self.vocab_size).to(torch.float64)  # [S, L, V]
        marginals = torch.einsum("bs,slv->blv", weight, onehot)
        total = marginals.sum(-1, keepdim=True)
        # a state no data sequence agrees with (unreachable) gets a uniform prediction
        marginals = torch.where(total > 0, marginals / total.clamp_min(1e-300), 1.0 / self.vocab_size)
        return marginals.log()  # -inf for tokens the data never has there


class MaskedToy(MaskedDiffusion):
    """Masked diffusion whose denoiser is the exact posterior of `probs` over all V**L sequences."""

    def __init__(self, probs: torch.Tensor, *, vocab_size: int = 3, length: int = 3, num_steps: int = 3):
        super().__init__(
            PosteriorDenoiser(probs, vocab_size, length), vocab_size=vocab_size, length=length, num_steps=num_steps
        )


class UniformPosteriorDenoiser(PosteriorDenoiser):
    """The exact denoiser of a distribution over sequences under uniform noise: logits of
    p(x0_l = v | x_t) ∝ Σ_{x0: x0_l = v} p(x0) Π_j q(x_t_j | x0_j), q = (1 - t)·δ + t/V.

    `probs` [V**L] gives the data probability of each sequence of `all_sequences(V, L)`.
    """

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t Long[B, L], t float[B] -> logits float64 [B, L, V]."""
        self.calls += x_t.shape[0]
        a = (1.0 - t.to(torch.float64)).reshape(-1, 1, 1)  # [B, 1, 1]
        same = (self.sequences.unsqueeze(0) == x_t.unsqueeze(1)).to(torch.float64)  # [B, S, L]
        likelihood = (a * same + (1.0 - a) / self.vocab_size).prod(-1)  # q(x_t | x0) [B, S]
        weight = likelihood * self.probs
        onehot = torch.nn.functional.one_hot(self.sequences, self.vocab_size).to(torch.float64)  # [S, L, V]
        marginals = torch.einsum("bs,slv->blv", weight, onehot)
        return (marginals / marginals.sum(-1, keepdim=True)).log()


class UniformToy(UniformDiffusion):
    """Uniform-noise diffusion whose denoiser is the exact posterior of `probs` over all V**L sequences."""

    def __init__(self, probs: torch.Tensor, *, vocab_size: int = 3, length: int = 3, num_steps: int = 3):
        super().__init__(
            UniformPosteriorDenoiser(probs, vocab_size, length),
            vocab_size=vocab_size,
            length=length,
            num_steps=num_steps,
        )


class ExactChain:
    """Exact enumeration of a small discrete process's reverse chain: a `MaskedDiffusion` over all
    (V+1)**L states, or a `UniformDiffusion` over all V**L states."""

    def __init__(self, process: MaskedDiffusion | UniformDiffusion):
        self.uniform = isinstance(process, UniformDiffusion)
        if isinstance(process, MaskedDiffusion) and (process.unmasking != "random" or process.block_length):
            raise ValueError(
                "ExactChain enumerates the random-order unmasking rule; this process decodes with "
                f"unmasking={process.unmasking!r}, block_length={process.block_length!r}"
            )
        if process.seed is not None and (self.uniform or process.seed_positions is None):
            raise ValueError(
                "ExactChain needs a deterministic prior or the uniform one; a seeded process draws its "
                "start per sample (seed a masked process with positions=... instead)"
            )
        self.process = process
        v, length = process.vocab_size, process.length
        tokens = v if self.uniform else v + 1
        self.states = torch.tensor(list(itertools.product(range(tokens), repeat=length)), dtype=torch.long)
        self.clean = all_sequences(v, length)
        self._base = tokens ** torch.arange(length - 1, -1, -1)
        kernel = self._uniform_kernel if self.uniform else self._kernel
        self.kernels = [kernel(t) for t in process.timesteps]  # each [S, S], rows sum to 1

    def _uniform_kernel(self, t: float) -> torch.Tensor:
        p = self.process
        assert isinstance(p, UniformDiffusion)
        with torch.no_grad():
            probs = p.step_distribution(self.states, t, p.model(self.states, t))  # [S, L, V]
        idx = self.states.unsqueeze(0).expand(self.states.shape[0], -1, -1)  # [S, S, L]: target tokens
        per_pos = torch.gather(probs.unsqueeze(1).expand(-1, idx.shape[1], -1, -1), 3, idx.unsqueeze(-1))
        return per_pos.squeeze(-1).prod(-1)

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """State index Long[B] of states x Long[B, L] (rows of `self.states`)."""
        return (x.cpu() * self._base).sum(-1)

    def _kernel(self, t: float) -> torch.Tensor:
        p = self.process
        assert isinstance(p, MaskedDiffusion)
        s = p.next_time(t)
        with torch.no_grad():
            probs = torch.softmax(p.model(self.states, t).to(torch.float64), -1)  # [S, L, V]
        x, y = self.states.unsqueeze(1), self.states.unsqueeze(0)  # [S, 1, L], [1, S, L]
        masked = x == p.mask_index
        idx = y.clamp_max(p.vocab_size - 1).expand(x.shape[0], -1, -1)
        token_prob = torch.gather(probs.unsqueeze(1).expand(-1, y.shape[1], -1, -1), 3, idx.unsqueeze(-1)).squeeze(
            -1
        )  # [S, S, L]
        per_pos = torch.where(
            masked,
            torch.where(y == p.mask_index, torch.full_like(token_prob, s / t), (1 - s / t) * token_prob),
            (x == y).to(torch.float64),
        )
        return per_pos.prod(-1)

    def _clean_vector(self, values: torch.Tensor, fill: float) -> torch.Tensor:
        """Spread clean-sequence values [V**L] onto all states (non-clean states get `fill`)."""
        full = torch.full((self.states.shape[0],), fill, dtype=torch.float64)
        full[self.code(self.clean)] = values.to(torch.float64)
        return full

    def pretrained(self) -> torch.Tensor:
        """p_pre over the clean sequences, float64 [V**L]."""
        if self.uniform:
            dist = torch.full((self.states.shape[0],), 1.0 / self.states.shape[0], dtype=torch.float64)
        else:
            dist = torch.zeros(self.states.shape[0], dtype=torch.float64)
            dist[self.code(self.process.prior(1))] = 1.0
        for kernel in self.kernels:
            dist = dist @ kernel
        return dist[self.code(self.clean)]

    def target(self, rewards: torch.Tensor, alpha: float) -> torch.Tensor:
        """p_pre(x)·exp(r(x)/α)/Z over the clean sequences; at α = 0, p_pre restricted to the best
        reachable sequences."""
        pre = self.pretrained()
        if alpha == 0:
            best = rewards[pre > 0].max()
            tilted = torch.where((rewards == best) & (pre > 0), pre, torch.zeros_like(pre))
        else:
            tilted = pre * torch.exp((rewards - rewards.max()) / alpha)
        return tilted / tilted.sum()

    def soft_values(self, rewards: torch.Tensor, alpha: float) -> dict[float, torch.Tensor]:
        """v_t over all states for every time the sampler scores: {t: float64 [S]}, including t = 0.

        α > 0: v_t(x) = α log E[exp(r(x0)/α) | x_t]; α = 0: the best reward reachable from x_t.
        Unreachable combinations get -inf.
        """
        times = [*list(self.process.timesteps), 0.0]
        if alpha == 0:
            v = self._clean_vector(rewards, -math.inf)
            table = {0.0: v}
            for t, kernel in zip(reversed(times[:-1]), reversed(self.kernels)):
                reach = kernel > 0
                v = torch.where(reach, v.unsqueeze(0), torch.full_like(kernel, -math.inf)).max(-1).values
                table[t] = v
            return table
        top = rewards.max()
        e = self._clean_vector(torch.exp((rewards - top) / alpha), 0.0)
        table = {0.0: alpha * e.log() + top}
        for t, kernel in zip(reversed(times[:-1]), reversed(self.kernels)):
            e = kernel @ e
            table[t] = alpha * e.log() + top
        return table

    def value_function(
        self, rewards: torch.Tensor, alpha: float
    ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """fn(x Long[B, L], t float[B]) -> exact soft values [B], for `svdd.LearnedValue`."""
        table = self.soft_values(rewards, alpha)

        keys = torch.tensor(list(table), dtype=torch.float64)

        def exact_value(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            nearest = int((keys - float(t.reshape(-1)[0])).abs().argmin())  # t may be float32
            return table[list(table)[nearest]][self.code(x)]

        return exact_value

    def distribution_of(self, samples: Sequence[tuple[int, ...]]) -> torch.Tensor:
        """Empirical distribution float64 [V**L] of decoded samples (tuples of token ids)."""
        codes = self.code(torch.tensor(list(samples), dtype=torch.long))
        clean_codes = self.code(self.clean)
        counts = torch.bincount(codes, minlength=self.states.shape[0]).to(torch.float64)
        return counts[clean_codes] / len(samples)


def total_variation(p: torch.Tensor, q: torch.Tensor) -> float:
    """Total-variation distance 0.5·Σ|p - q| between two distributions on the same support."""
    return 0.5 * (p - q).abs().sum().item()


# -- continuous toy --------------------------------------------------------------------------


class GaussianMixtureDiffusion:
    """1-D Gaussian-mixture data, x0 ~ Σ_j w_j N(μ_j, σ_j²), under a DDPM-style schedule.

    States are float [B, 1]. `model` returns the exact ε-prediction (from the analytic posterior
    mean E[x0 | x_t]); `transition` is a DDIM step with noise level `eta` (1: stochastic, DDPM-like
    variance; 0: deterministic). `decode` gives floats.
    """

    def __init__(
        self,
        weights: Sequence[float] = (0.5, 0.5),
        means: Sequence[float] = (-2.0, 2.0),
        stds: Sequence[float] = (0.5, 0.5),
        *,
        num_steps: int = 50,
        eta: float = 1.0,
    ):
        self.weights = torch.tensor(weights, dtype=torch.float64)
        self.means = torch.tensor(means, dtype=torch.float64)
        self.stds = torch.tensor(stds, dtype=torch.float64)
        betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
        self.alphas_cumprod = torch.cumprod(1 - betas, 0)
        self.timesteps = list(range(999, -1, -(1000 // num_steps)))[:num_steps]
        self._prev = {t: (self.timesteps[k + 1] if k + 1 < num_steps else -1) for k, t in enumerate(self.timesteps)}
        self.eta = eta
        self.calls = 0

    def _abar(self, t: int) -> torch.Tensor:
        return self.alphas_cumprod[t] if t >= 0 else torch.tensor(1.0, dtype=torch.float64)

    def posterior_mean(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """E[x0 | x_t] float64 [B, 1] under the mixture."""
        a = self._abar(t)
        var = a * self.stds**2 + (1 - a)  # [J]
        xt = x.to(torch.float64)  # [B, 1]
        log_resp = torch.log(self.weights) - 0.5 * torch.log(var) - 0.5 * (xt - a.sqrt() * self.means) ** 2 / var
        resp = torch.softmax(log_resp, dim=-1)  # [B, J]
        cond = self.means + a.sqrt() * self.stds**2 / var * (xt - a.sqrt() * self.means)  # [B, J]
        return (resp * cond).sum(-1, keepdim=True)

    def prior(self, n: int, generator: GeneratorLike = None) -> torch.Tensor:
        return rng.randn((n, 1), generator, dtype=torch.float64)

    def model(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """ε-prediction float64 [B, 1]."""
        self.calls += x.shape[0]
        a = self._abar(t)
        return (x - a.sqrt() * self.posterior_mean(x, t)) / (1 - a).sqrt()

    def denoised(self, x: torch.Tensor, t: int, out: torch.Tensor) -> torch.Tensor:
        a = self._abar(t)
        return (x - (1 - a).sqrt() * out) / a.sqrt()

    def transition(self, x: torch.Tensor, t: int, out: torch.Tensor, generator: GeneratorLike = None) -> torch.Tensor:
        a, a_prev = self._abar(t), self._abar(self._prev[t])
        x0 = self.denoised(x, t, out)
        sigma = self.eta * ((1 - a_prev) / (1 - a) * (1 - a / a_prev)).sqrt()
        direction = (1 - a_prev - sigma**2).clamp_min(0).sqrt() * out
        noise = rng.randn(x.shape, generator, dtype=x.dtype)
        return a_prev.sqrt() * x0 + direction + sigma * noise

    def decode(self, x0: torch.Tensor) -> list[float]:
        return x0[:, 0].tolist()

    def renoise(
        self, x0: torch.Tensor, level: float, generator: GeneratorLike = None
    ) -> tuple[torch.Tensor, list[int]]:
        """Forward-noise clean x0 [B, 1] to the timestep t nearest level·1000 (ties to the noisier):
        x_t = sqrt(ā_t)·x0 + sqrt(1 - ā_t)·ε. Returns (x_t, the timesteps left, from t on)."""
        k = min(range(len(self.timesteps)), key=lambda i: (abs(self.timesteps[i] - level * 1000), i))
        a = self._abar(self.timesteps[k])
        noise = rng.randn(x0.shape, generator, dtype=torch.float64)
        return a.sqrt() * x0.to(torch.float64) + (1 - a).sqrt() * noise, self.timesteps[k:]
