"""Uniform-noise discrete diffusion (D3PM-uniform / SEDD-uniform style) as a `DenoisingProcess`.

Tokens are ids 0..V-1 and there is no mask: the forward process replaces each token, independently,
by a uniformly random one. At time t in [0, 1] a token is still its clean value with probability
a(t) = 1 - t and uniform noise otherwise, q(x_t | x0) = a(t)·δ(x0) + (1 - a(t))/V, so x_1 is
uniform noise. Every token can change at every reverse step.

Denoiser contract: `denoiser(x_t: Long[B, L], t: Tensor[B]) -> logits [B, L, V]` over x0.

Reverse step t -> s < t, per position, with the denoiser's π = p(x0 | x_t) (D3PM's x0
parameterisation; b = a(t)/a(s) is the forward keep probability from s to t):

    p(x_s = k | x_t = j) ∝ q(x_t = j | x_s = k) · Σ_x0 π(x0) q(x_s = k | x0) / q(x_t = j | x0)
                         = (b·δ(j, k) + (1 - b)/V) · (a(s)·w(k) + (1 - a(s))/V · Σ w),
    w(x0) = π(x0) / q(x_t = j | x0).

At s = 0 this is π itself, so samples are drawn from the denoiser at the last step. With the
exact posterior of a data distribution as denoiser, the chain reproduces the data as K grows.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .. import rng
from ..rng import GeneratorLike
from .masked import _check_positions, denoiser_logits, hamming, linear_timesteps, token_process_args


class UniformDiffusion:
    """A uniform-noise discrete diffusion model over sequences of `length` tokens from `vocab_size`.

    Args:
        denoiser: `(x_t Long[B, L], t float[B]) -> logits [B, L, V]` over the clean tokens.
        vocab_size: V.
        length: L.
        num_steps: K reverse steps (timesteps 1, 1 - 1/K, ..., 1/K).
        decode: `tokens Long[B, L] -> list of B objects`; default tuples of ints.
        fixed: {position: token} held in every sample (never noised, never changed).
        device: where states live.

    `from_seed(seed, noise_level=... | positions=...)` gives a copy that edits a seed.
    """

    def __init__(
        self,
        denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        *,
        vocab_size: int,
        length: int,
        num_steps: int = 128,
        decode: Callable[[torch.Tensor], Sequence[Any]] | None = None,
        fixed: dict[int, int] | None = None,
        device: torch.device | str | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        vocab_size, length, num_steps, self.device = token_process_args(denoiser, vocab_size, length, num_steps, device)
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be at least 2 for uniform noise to mean anything; got {vocab_size}")
        self.denoiser = denoiser
        self.vocab_size = vocab_size
        self.length = length
        if fixed is not None and not isinstance(fixed, dict):
            raise TypeError(f"fixed must be a dict {{position: token}}; got {type(fixed).__name__}")
        self._decode = decode
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.fixed = torch.full((length,), -1, dtype=torch.long, device=self.device)
        for pos, tok in (fixed or {}).items():
            if isinstance(pos, bool) or not isinstance(pos, int) or not -length <= pos < length:
                raise ValueError(f"fixed position {pos!r} is outside the {length} positions")
            if isinstance(tok, bool) or not isinstance(tok, int) or not 0 <= tok < vocab_size:
                raise ValueError(f"fixed[{pos}] must be a token id in 0..{vocab_size - 1}; got {tok!r}")
            self.fixed[pos % length] = tok
        self.full_num_steps = num_steps
        self.seed: torch.Tensor | None = None
        self.seed_positions: torch.Tensor | None = None
        self._set_schedule(1.0, num_steps)

    def _set_schedule(self, start: float, num_steps: int) -> None:
        self.num_steps = num_steps
        self.timesteps, self._next = linear_timesteps(start, num_steps)

    def next_time(self, t: float) -> float:
        """The time the reverse step from t lands on (0.0 after the last timestep)."""
        try:
            return self._next[t]
        except KeyError:
            raise ValueError(f"{t!r} is not one of this process's timesteps") from None

    def _hold(self, x: torch.Tensor) -> torch.Tensor:
        """x Long[B, L] with the fixed positions (and a seed's kept positions) restored."""
        x = torch.where(self.fixed >= 0, self.fixed, x)
        if self.seed is not None and self.seed_positions is not None:
            keep = torch.ones(self.length, dtype=torch.bool, device=x.device)
            keep[self.seed_positions] = False
            x = torch.where(keep, self.seed, x)
        return x

    # -- the DenoisingProcess protocol -------------------------------------------------------

    def prior(self, n: int, generator: GeneratorLike = None) -> torch.Tensor:
        """x at timesteps[0], Long[n, L]: uniform random tokens (fixed positions held); for a process
        made by `from_seed`, the seed noised to the start level."""
        if self.seed is None:
            u = rng.rand((n, self.length), generator, device=self.device)
            return self._hold((u * self.vocab_size).long().clamp_max(self.vocab_size - 1))
        return self._hold(self.add_noise(self.seed.expand(n, self.length), self.timesteps[0], generator))

    def model(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """Denoiser logits float[B, L, V] for x Long[B, L] at time t."""
        return denoiser_logits(self.denoiser, x, t, self.vocab_size)

    def step_distribution(self, x: torch.Tensor, t: float, out: torch.Tensor) -> torch.Tensor:
        """p(x_s = k | x_t) float64 [B, L, V] for x Long[B, L] at t, s = next_time(t) (see the module)."""
        s = self.next_time(t)
        a_t, a_s = 1.0 - t, 1.0 - s
        v = self.vocab_size
        pi = torch.softmax(out.to(torch.float64), dim=-1)
        if torch.isnan(pi).any():
            raise ValueError(f"the denoiser's logits give no distribution at t={t} (NaN, all -inf, or +inf logits)")
        here = torch.nn.functional.one_hot(x, v).to(torch.float64)  # δ(j, ·) [B, L, V]
        w = pi / (a_t * here + (1.0 - a_t) / v).clamp_min(1e-300)
        b = a_t / a_s if a_s > 0 else 0.0
        probs = (b * here + (1.0 - b) / v) * (a_s * w + (1.0 - a_s) / v * w.sum(-1, keepdim=True))
        return probs / probs.sum(-1, keepdim=True)

    def transition(self, x: torch.Tensor, t: float, out: torch.Tensor, generator: GeneratorLike = None) -> torch.Tensor:
        """One reverse step x_t Long[B, L] -> x_s Long[B, L]: every position drawn from
        `step_distribution` (inverse CDF of one uniform per position); fixed positions held."""
        return self._hold(self._draw(self.step_distribution(x, t, out), generator))

    def _draw(self, probs: torch.Tensor, generator: GeneratorLike) -> torch.Tensor:
        u = rng.rand(probs.shape[:-1], generator, device=probs.device)
        cdf = probs.cumsum(dim=-1)
        return (cdf < u.unsqueeze(-1) * cdf[..., -1:]).sum(dim=-1).clamp_max(self.vocab_size - 1)

    def sample_x0(self, x: torch.Tensor, t: float, out: torch.Tensor, generator: GeneratorLike = None) -> torch.Tensor:
        """One draw x0 Long[B, L] ~ p(x0 | x_t), every position from softmax(out) independently."""
        return self._hold(self._draw(torch.softmax(out.to(torch.float64), dim=-1), generator))

    def denoised(self, x: torch.Tensor, t: float, out: torch.Tensor) -> torch.Tensor:
        """x0_hat Long[B, L]: the argmax of the logits at every position (fixed positions held)."""
        return self._hold(out.argmax(dim=-1))

    def decode(self, x0: torch.Tensor) -> list[Any]:
        """Clean tokens Long[B, L] -> objects (the `decode` given at construction, else tuples)."""
        if self._decode is not None:
            return list(self._decode(x0))
        return [tuple(row) for row in x0.tolist()]

    # -- forward process ---------------------------------------------------------------------

    def add_noise(self, x0: torch.Tensor, t: float | torch.Tensor, generator: GeneratorLike = None) -> torch.Tensor:
        """Forward noising: each token of x0 Long[B, L] becomes uniform noise with probability t
        (a float, or float[B] per row); fixed positions are never noised."""
        level = torch.as_tensor(t, dtype=torch.float64, device=x0.device).reshape(-1, 1)
        u = rng.rand(x0.shape, generator, device=x0.device)
        noise = (rng.rand(x0.shape, generator, device=x0.device) * self.vocab_size).long()
        return torch.where(u < level, noise.clamp_max(self.vocab_size - 1), x0)

    def renoise(
        self, x0: torch.Tensor, level: float, generator: GeneratorLike = None
    ) -> tuple[torch.Tensor, list[float]]:
        """Clean states x0 Long[B, L] noised to the timestep nearest `level`, for iterative
        refinement. Returns (x_t Long[B, L], the timesteps left to walk, from t on)."""
        if x0.dim() != 2 or x0.shape[1] != self.length:
            raise ValueError(f"renoise needs clean states [B, {self.length}]; got {tuple(x0.shape)}")
        k = min(range(self.num_steps), key=lambda i: (abs(self.timesteps[i] - level), i))
        return self._hold(self.add_noise(x0, self.timesteps[k], generator)), self.timesteps[k:]

    # -- design from a seed ------------------------------------------------------------------

    def from_seed(
        self,
        seed: torch.Tensor | Sequence[int],
        *,
        noise_level: float = 0.3,
        positions: Sequence[int] | torch.Tensor | None = None,
        num_steps: int | None = None,
    ) -> UniformDiffusion:
        """This model started from `seed` noised to `noise_level` in (0, 1] (a fresh draw per sample);
        with `positions`, only those positions are noised and may change.

        The timesteps start at `noise_level` and descend to noise_level/num_steps (default
        num_steps: ceil(noise_level·K), the full chain's step size). `hamming_to_seed(states)`
        measures how far samples moved.
        """
        try:
            seed_t = torch.as_tensor(seed)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"seed must be integer tokens of shape ({self.length},); got {seed!r}") from None
        if seed_t.is_floating_point() or seed_t.dtype == torch.bool or seed_t.shape != (self.length,):
            raise ValueError(
                f"seed must be integer tokens of shape ({self.length},); "
                f"got {seed_t.dtype} of shape {tuple(seed_t.shape)}"
            )
        if (seed_t < 0).any() or (seed_t >= self.vocab_size).any():
            raise ValueError(f"seed must hold token ids 0..{self.vocab_size - 1}")
        if isinstance(noise_level, bool) or not isinstance(noise_level, (int, float)) or not 0 < noise_level <= 1:
            raise ValueError(f"noise_level must be a number in (0, 1]; got {noise_level!r}")
        if num_steps is None:
            num_steps = max(1, math.ceil(noise_level * self.full_num_steps - 1e-9))
        elif isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f"num_steps must be a positive int or None; got {num_steps!r}")
        seeded = copy.copy(self)
        seeded._set_schedule(float(noise_level), num_steps)
        seeded.seed = seed_t.to(dtype=torch.long, device=self.device)
        seeded.seed_positions = (
            _check_positions(positions, self.length).to(self.device) if positions is not None else None
        )
        return seeded

    def hamming_to_seed(self, x0: torch.Tensor) -> torch.Tensor:
        """Number of positions where each state of x0 Long[B, L] differs from the seed: Long[B]."""
        if self.seed is None:
            raise ValueError("hamming_to_seed needs a process made by from_seed; this one has no seed")
        return hamming(x0, self.seed)
