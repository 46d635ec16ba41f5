"""Masked (absorbing-state) discrete diffusion, MDLM style, as a `DenoisingProcess`.

Tokens are ids 0..V-1 and the mask is id V. The forward process masks each token
independently: at time t in [0, 1] a token is still clean with probability a(t) = 1 - t
(log-linear schedule). The reverse step from t to s < t keeps every unmasked token (carry-over),
keeps a masked token masked with probability s/t, and otherwise unmasks it to a token drawn from
the denoiser's p(x0 | x_t) ("subs" parameterisation: the mask is never predicted). The step to
s = 0 unmasks everything, so samples never contain the mask.

Denoiser contract: `denoiser(x_t: Long[B, L], t: Tensor[B]) -> logits[B, L, V]` over the V
real tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from . import rng
from .rng import GeneratorLike


class MaskedDiffusion:
    """A masked diffusion model over sequences of `length` tokens from a vocabulary of `vocab_size`.

    Args:
        denoiser: `(x_t Long[B, L], t float[B]) -> logits [B, L, V]`.
        vocab_size: V, the number of real tokens; the mask token id is V.
        length: L, the sequence length.
        num_steps: K, the number of reverse steps (timesteps 1, 1 - 1/K, ..., 1/K).
        decode: `tokens Long[B, L] -> list of B objects`; default: `tokenizer.decode` when a
            tokenizer is given, else tuples of ints.
        tokenizer: optional object with `encode(objects, length=L) -> Long[B, L]` and
            `decode(tokens) -> list`, for turning the user's own sequences into states.
        metadata: optional record of how the model was made (data, seed, training settings).
    """

    def __init__(
        self,
        denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        *,
        vocab_size: int,
        length: int,
        num_steps: int = 128,
        decode: Callable[[torch.Tensor], Sequence[Any]] | None = None,
        device: torch.device | str | None = None,
        tokenizer: Any = None,
        metadata: dict[str, Any] | None = None,
    ):
        for name, v in (("vocab_size", vocab_size), ("length", length), ("num_steps", num_steps)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        self.denoiser = denoiser
        self.vocab_size = vocab_size
        self.mask_index = vocab_size
        self.length = length
        self.num_steps = num_steps
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.timesteps = [1.0 - k / num_steps for k in range(num_steps)]
        self._next = {t: (self.timesteps[k + 1] if k + 1 < num_steps else 0.0) for k, t in enumerate(self.timesteps)}
        self.tokenizer = tokenizer
        self.metadata: dict[str, Any] = dict(metadata or {})
        if decode is None and tokenizer is not None:
            decode = tokenizer.decode
        self._decode = decode

    # -- the DenoisingProcess protocol -------------------------------------------------------

    def prior(self, n: int, generator: GeneratorLike = None) -> torch.Tensor:
        """All-mask sequences Long[n, L] (deterministic)."""
        return torch.full((n, self.length), self.mask_index, dtype=torch.long, device=self.device)

    def model(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """Denoiser logits float[B, L, V] for x Long[B, L] at time t."""
        logits = self.denoiser(x, torch.full((x.shape[0],), float(t), device=x.device))
        expected = (x.shape[0], self.length, self.vocab_size)
        if tuple(logits.shape) != expected:
            raise ValueError(f"denoiser returned logits of shape {tuple(logits.shape)}; expected {expected}")
        return logits

    def next_time(self, t: float) -> float:
        """The time the reverse step from t lands on (0.0 after the last timestep)."""
        try:
            return self._next[t]
        except KeyError:
            raise ValueError(f"{t!r} is not one of this process's timesteps") from None

    def transition(self, x: torch.Tensor, t: float, out: torch.Tensor, generator: GeneratorLike = None) -> torch.Tensor:
        """One reverse step x_t Long[B, L] -> x_s Long[B, L], s = next_time(t).

        Each masked token stays masked with probability s/t, else takes a token drawn from
        softmax(out) (float64). Unmasked tokens never change.
        """
        s = self.next_time(t)
        masked = x == self.mask_index
        u_keep = rng.rand(x.shape, generator, device=x.device)
        u_token = rng.rand(x.shape, generator, device=x.device)
        probs = torch.softmax(out.to(torch.float64), dim=-1)
        cdf = probs.cumsum(dim=-1)
        tokens = (cdf < u_token.unsqueeze(-1) * cdf[..., -1:]).sum(dim=-1).clamp_max(self.vocab_size - 1)
        unmask = masked & (u_keep >= s / t)
        return torch.where(unmask, tokens, x)

    def denoised(self, x: torch.Tensor, t: float, out: torch.Tensor) -> torch.Tensor:
        """x0_hat Long[B, L]: argmax of the logits at masked positions, unmasked tokens copied."""
        return torch.where(x == self.mask_index, out.argmax(dim=-1), x)

    def decode(self, x0: torch.Tensor) -> list[Any]:
        """Clean tokens Long[B, L] -> objects (the `decode` given at construction, else tuples)."""
        if (x0 == self.mask_index).any():
            raise ValueError("decode got masked tokens; only clean sequences can be decoded")
        if self._decode is not None:
            return list(self._decode(x0))
        return [tuple(row) for row in x0.tolist()]

    # -- forward process ---------------------------------------------------------------------

    def add_mask(self, x0: torch.Tensor, t: torch.Tensor, generator: GeneratorLike = None) -> torch.Tensor:
        """Forward noising: mask each token of x0 Long[B, L] with probability t[B] (float in [0, 1])."""
        u = rng.rand(x0.shape, generator, device=x0.device)
        return torch.where(u < t.to(torch.float64).unsqueeze(-1), torch.full_like(x0, self.mask_index), x0)
