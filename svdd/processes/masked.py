"""Masked (absorbing-state) discrete diffusion, MDLM style, as a `DenoisingProcess`.

Tokens are ids 0..V-1 and the mask is id V. The forward process masks each token
independently: at time t in [0, 1] a token is still clean with probability a(t) = 1 - t
(log-linear schedule). The reverse step from t to s < t keeps every unmasked token (carry-over),
keeps a masked token masked with probability s/t, and otherwise unmasks it to a token drawn from
the denoiser's p(x0 | x_t) ("subs" parameterisation: the mask is never predicted). The step to
s = 0 unmasks everything, so samples never contain the mask.

Denoiser contract: `denoiser(x_t: Long[B, L], t: Tensor[B]) -> logits[B, L, V]` over the V
real tokens. Third-party models (a Hugging Face `*ForMaskedLM`, MDLM or LLaDA checkpoints, any
callable over its own vocabulary) are wrapped into this contract by `MaskedDiffusion.from_masked_lm`
(`svdd.processes.masked_lm`).

Design from a seed: `process.from_seed(seed, mask_fraction=0.3)` (or `positions=[...]`) is the
same model started from `seed` with those positions masked; every sampler then edits only them.

Decoding rules (`unmasking=`, `block_length=`, `threshold=`): which masked positions a reverse step
commits. "random" (the default) is the MDLM step above, whose positions are unmasked in a random
order. "confidence" is LLaDA's low-confidence remasking: a token is drawn for every masked
position and the step commits the ones the model is most sure of (the drawn token's probability),
as many as an even schedule asks (`threshold` commits every one above it too). `block_length`
decodes semi-autoregressively (BD3-LM, LLaDA): the sequence is cut into L / block_length blocks,
decoded left to right with K / (number of blocks) steps each, and a step changes only its block.
The timesteps stay 1 - k/K: under an even schedule the fraction of masked tokens after k steps is
still k/K, so the denoiser sees the same time in every rule.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .. import rng
from ..rng import GeneratorLike
from .masked_lm import MaskedLMDenoiser, check_int, masked_lm_denoiser

UNMASKING = ("random", "confidence")


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
        unmasking: which masked positions a step commits: "random" (MDLM: each masked token is
            unmasked with probability 1 - s/t, so positions open in a random order) or
            "confidence" (LLaDA's low-confidence remasking: draw a token for every masked position
            of the current block, commit the `quota` whose drawn token is most probable, ties to
            the lower position, and leave the rest masked).
        block_length: None (one block, the whole sequence) or a divisor of L: decode block by block,
            left to right, K / (L / block_length) steps per block (K must be a multiple of the
            number of blocks). A step changes only its block; later blocks stay masked.
        threshold: "confidence" only: also commit every masked position of the block whose drawn
            token has probability >= threshold, a number in (0, 1] (Fast-dLLM's parallel decoding).

    With "confidence", a step with r steps left in its block and n masked positions in it commits
    quota = ceil(n / r) of them (LLaDA's `get_num_transfer_tokens`: the block's masks spread
    evenly over its steps, the remainder first), so a block is clean after its last step. With
    "random" and blocks, a masked token of the block stays masked with probability (r - 1) / r.

    `from_seed(seed, mask_fraction=... | positions=...)` gives a copy that edits a seed;
    `from_masked_lm(model, ...)` wraps a third-party masked model.
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
        unmasking: str = "random",
        block_length: int | None = None,
        threshold: float | None = None,
    ):
        vocab_size, length, num_steps, self.device = token_process_args(denoiser, vocab_size, length, num_steps, device)
        check_decoding(unmasking, threshold)
        if block_length is not None and (
            isinstance(block_length, bool)
            or not isinstance(block_length, int)
            or not 1 <= block_length <= length
            or length % block_length
        ):
            raise ValueError(
                f"block_length must be None (one block) or a positive divisor of the length L = {length}; "
                f"got {block_length!r}"
            )
        self.unmasking = unmasking
        self.block_length = block_length
        self.threshold = None if threshold is None else float(threshold)
        self.denoiser = denoiser
        self.vocab_size = vocab_size
        self.mask_index = vocab_size
        self.length = length
        self.full_num_steps = num_steps
        self._set_schedule(1.0, num_steps)
        self.tokenizer = tokenizer
        self.metadata: dict[str, Any] = dict(metadata or {})
        if decode is None and tokenizer is not None:
            decode = tokenizer.decode
        self._decode = decode
        self.seed: torch.Tensor | None = None  # set by from_seed
        self.seed_positions: torch.Tensor | None = None
        self.seed_mask_count = 0

    @property
    def num_blocks(self) -> int:
        """The number of blocks decoded in turn (1 without `block_length`)."""
        return 1 if self.block_length is None else self.length // self.block_length

    def _set_schedule(self, start: float, num_steps: int) -> None:
        """Timesteps start·(1 - k/K) for k = 0..K-1, and the time each step lands on."""
        if num_steps % self.num_blocks:
            raise ValueError(
                f"num_steps must be a multiple of the number of blocks, {self.num_blocks} (length {self.length} / "
                f"block_length {self.block_length}), so every block gets the same steps; got {num_steps}"
            )
        self.num_steps = num_steps
        self.timesteps, self._next = linear_timesteps(start, num_steps)
        self._index = {t: k for k, t in enumerate(self.timesteps)}

    @staticmethod
    def from_masked_lm(
        model: Callable[..., Any],
        *,
        mask_token_id: int,
        token_ids: Any,
        length: int,
        num_steps: int = 128,
        decode: Callable[[torch.Tensor], Sequence[Any]] | None = None,
        unmasking: str = "random",
        block_length: int | None = None,
        threshold: float | None = None,
        **options: Any,
    ) -> MaskedLMDiffusion:
        """Wrap a third-party masked / any-order model (a `transformers` `*ForMaskedLM` or a callable
        returning logits over its own vocabulary) as a `MaskedDiffusion` (log-linear schedule,
        K = num_steps) whose states are the model's free positions re-indexed to the native contract.

        `options`: `fixed`, `time`, `num_train_timesteps`, `time_keyword`, `subs`, `logits_over`,
        `pad_token_id`, `tokenizer`, `device`; every argument is described in
        `svdd.processes.masked_lm.masked_lm_denoiser`. `unmasking`, `block_length` and `threshold`
        choose the decoding rule as in `MaskedDiffusion`; blocks cut the F free positions (in state
        order), so with a fixed prompt only the generated part is decoded block by block, as LLaDA does.

        Returns a `MaskedLMDiffusion`: states Long[B, F], `to_model_ids`, `encode`, and everything
        `MaskedDiffusion` has (`from_seed`, `add_mask`, ...).
        """
        check_int("num_steps", num_steps, 1)
        check_decoding(unmasking, threshold)
        denoiser, decode_states = masked_lm_denoiser(
            model, mask_token_id=mask_token_id, token_ids=token_ids, length=length, decode=decode, **options
        )
        return MaskedLMDiffusion(
            denoiser,
            vocab_size=len(denoiser.token_ids),
            length=int(denoiser.free.numel()),
            num_steps=num_steps,
            decode=decode_states,
            device=denoiser.template.device,
            unmasking=unmasking,
            block_length=block_length,
            threshold=threshold,
        )

    # -- the DenoisingProcess protocol -------------------------------------------------------

    def prior(self, n: int, generator: GeneratorLike = None) -> torch.Tensor:
        """x at timesteps[0], Long[n, L]: all-mask sequences (deterministic), or for a process made
        by `from_seed` the seed with its chosen positions masked (a fresh random subset per row when
        it was made with `mask_fraction`, drawn from `generator`)."""
        if self.seed is None:
            return torch.full((n, self.length), self.mask_index, dtype=torch.long, device=self.device)
        x = self.seed.expand(n, self.length).clone()
        if self.seed_positions is not None:
            x[:, self.seed_positions] = self.mask_index
            return x
        u = rng.rand((n, self.length), generator, device=self.device)
        chosen = u.argsort(dim=1)[:, : self.seed_mask_count]  # a uniform random subset per row
        return x.scatter_(1, chosen, self.mask_index)

    def model(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """Denoiser logits float[B, L, V] for x Long[B, L] at time t."""
        return denoiser_logits(self.denoiser, x, t, self.vocab_size)

    def next_time(self, t: float) -> float:
        """The time the reverse step from t lands on (0.0 after the last timestep)."""
        try:
            return self._next[t]
        except KeyError:
            raise ValueError(f"{t!r} is not one of this process's timesteps") from None

    def transition(self, x: torch.Tensor, t: float, out: torch.Tensor, generator: GeneratorLike = None) -> torch.Tensor:
        """One reverse step x_t Long[B, L] -> x_s Long[B, L], s = next_time(t).

        "random" without blocks: each masked token stays masked with probability s/t, else takes
        a token drawn from softmax(out) (float64). With blocks, only the current block's masked
        tokens may open, each with probability 1/r (r: the block's steps left, counting this one).
        "confidence": a token is drawn for every masked position of the current block and the
        quota ceil(n/r) of them with the most probable drawn tokens are committed (plus, with a
        `threshold`, every one whose token has probability >= threshold). Unmasked tokens never
        change. Every rule draws the same uniforms float64 [B, L] from `generator`, two per step
        (keep, then token; "confidence" leaves the first unused), so the rules share one stream layout.
        """
        s = self.next_time(t)
        masked = x == self.mask_index
        u_keep = rng.rand(x.shape, generator, device=x.device)
        u_token = rng.rand(x.shape, generator, device=x.device)
        if self.unmasking == "random" and self.block_length is None:  # MDLM's step, as it always was
            tokens = self._draw_tokens(out, u_token, masked, t)
            unmask = masked & (u_keep >= s / t)
            return torch.where(unmask, tokens, x)
        block, steps_left = self.block_at(t)
        open_ = masked & block.to(x.device)  # Bool[B, L]: the masked positions this step may commit
        probs = self._probabilities(out, open_, t)
        tokens = self._inverse_cdf(probs, u_token)
        if self.unmasking == "random":
            unmask = open_ & (u_keep >= (steps_left - 1) / steps_left)
        else:
            confidence = probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)  # float64 [B, L]
            unmask = self.most_confident(confidence, open_, steps_left)
        return torch.where(unmask, tokens, x)

    def block_at(self, t: float) -> tuple[torch.Tensor, int]:
        """The block the step from timestep t decodes, as Bool[L] (every position without
        `block_length`), and the steps left in it, this one included (1 at its last step)."""
        b, steps_left = self._step_in_block(t)
        if self.block_length is None:
            return torch.ones(self.length, dtype=torch.bool, device=self.device), steps_left
        return torch.arange(self.length, device=self.device) // self.block_length == b, steps_left

    def _step_in_block(self, t: float) -> tuple[int, int]:
        """(the index b of the block the step from t decodes, the steps left in it with this one)."""
        self.next_time(t)  # a clear error for a time that is not a timestep
        per_block = self.num_steps // self.num_blocks
        k = self._index[t]
        return k // per_block, per_block - k % per_block

    def most_confident(self, confidence: torch.Tensor, open_: torch.Tensor, steps_left: int) -> torch.Tensor:
        """Bool[B, L]: the positions of `open_` Bool[B, L] a confidence step commits, given each
        position's confidence float[B, L] (the probability of its drawn token): per row the
        quota = ceil(n / steps_left) most confident of its n open positions (ties to the lower
        position), and with a `threshold` every open position at or above it."""
        quota = (open_.sum(-1) + steps_left - 1) // steps_left  # Long[B]
        score = torch.where(open_, confidence.to(torch.float64), -1.0)  # closed positions rank last
        order = torch.sort(score, dim=-1, descending=True, stable=True).indices
        positions = torch.arange(score.shape[-1], device=score.device).expand_as(order)
        rank = torch.empty_like(order).scatter_(-1, order, positions)  # rank[b, l]: 0 = most confident
        commit = open_ & (rank < quota.unsqueeze(-1))
        if self.threshold is not None:
            commit |= open_ & (confidence >= self.threshold)
        return commit

    def _draw_tokens(self, out: torch.Tensor, u: torch.Tensor, masked: torch.Tensor, t: float) -> torch.Tensor:
        """A token Long[B, L] from softmax(out) float[B, L, V] at every position, by inverse CDF of
        the uniforms u float64 [B, L]. Raises where a `masked` position's logits give no
        distribution (NaN, all -inf, or +inf logits), instead of silently drawing token 0."""
        return self._inverse_cdf(self._probabilities(out, masked, t), u)

    def _probabilities(self, out: torch.Tensor, masked: torch.Tensor, t: float) -> torch.Tensor:
        """softmax(out) float64 [B, L, V]; a ValueError where a `masked` Bool[B, L] position's
        logits give no distribution."""
        probs = torch.softmax(out.to(torch.float64), dim=-1)
        broken = torch.isnan(probs).any(dim=-1) & masked
        if broken.any():
            raise ValueError(
                f"the denoiser's logits give no distribution at {int(broken.sum())} masked positions "
                f"at t={t} (NaN, all -inf, or +inf logits)"
            )
        return probs

    def _inverse_cdf(self, probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The token Long[B, L] of probs float64 [B, L, V] at uniforms u float64 [B, L]."""
        cdf = probs.cumsum(dim=-1)
        return (cdf < u.unsqueeze(-1) * cdf[..., -1:]).sum(dim=-1).clamp_max(self.vocab_size - 1)

    def sample_x0(self, x: torch.Tensor, t: float, out: torch.Tensor, generator: GeneratorLike = None) -> torch.Tensor:
        """One draw x0 Long[B, L] ~ p(x0 | x_t) from the denoiser's posterior: every masked position
        drawn from softmax(out) independently, unmasked tokens copied (`denoised` takes the argmax)."""
        masked = x == self.mask_index
        tokens = self._draw_tokens(out, rng.rand(x.shape, generator, device=x.device), masked, t)
        return torch.where(masked, tokens, x)

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

    def renoise(
        self, x0: torch.Tensor, level: float, generator: GeneratorLike = None
    ) -> tuple[torch.Tensor, list[float]]:
        """Clean states x0 Long[B, L] taken part-way back along the chain, for iterative refinement.

        `level` in (0, 1] is rounded to the nearest of this process's timesteps t (ties to the
        noisier); each row gets max(1, round(t·L)) of its positions re-masked, a fresh uniformly random
        subset from `generator` (row i from generator[i] with a list), chosen among the positions
        this process may change (a process made by `from_seed(positions=...)`: only those).
        With `block_length`, the state matches the block chain at t instead: every changeable
        position of the later blocks is re-masked, and in t's block a random subset of
        max(1, round(n·r/S)) of its n changeable positions (r of its S steps left), so the prefix
        before t's block is kept.
        Returns (x_t Long[B, L], the timesteps left to walk, from t on).
        """
        if x0.dim() != 2 or x0.shape[1] != self.length:
            raise ValueError(f"renoise needs clean states [B, {self.length}]; got {tuple(x0.shape)}")
        k = min(range(self.num_steps), key=lambda i: (abs(self.timesteps[i] - level), i))
        t = self.timesteps[k]
        editable = self.seed_positions if self.seed_positions is not None else torch.arange(self.length)
        editable = editable.to(x0.device)
        u = rng.rand((x0.shape[0], int(editable.numel())), generator, device=x0.device)
        if self.block_length is None:
            count = min(max(1, round(t * self.length)), int(editable.numel()))
            chosen = editable[u.argsort(dim=1)[:, :count]]  # a uniform random subset per row
            return x0.clone().scatter_(1, chosen, self.mask_index), self.timesteps[k:]
        b, steps_left = self._step_in_block(t)
        of_editable = editable // self.block_length  # the block of each changeable position
        x_t = x0.clone()
        x_t[:, editable[of_editable > b]] = self.mask_index
        here = editable[of_editable == b]
        if here.numel():
            count = min(max(1, round(here.numel() * steps_left / (self.num_steps // self.num_blocks))), here.numel())
            chosen = here[u[:, of_editable == b].argsort(dim=1)[:, :count]]
            x_t.scatter_(1, chosen, self.mask_index)
        return x_t, self.timesteps[k:]

    # -- design from a seed ------------------------------------------------------------------

    def from_seed(
        self,
        seed: torch.Tensor | Sequence[int],
        *,
        mask_fraction: float | None = None,
        positions: Sequence[int] | torch.Tensor | None = None,
        num_steps: int | None = None,
    ) -> MaskedDiffusion:
        """This model started from `seed` with some positions masked: a process that edits a seed.

        Args:
            seed: clean tokens Long[L] in this process's state space (ids 0..V-1; for a process made
                by `from_masked_lm`, `process.encode(model_ids)` gives them).
            mask_fraction: mask round(mask_fraction·L) positions (at least one), a fresh uniformly
                random subset for every sample, drawn from the sampler's generator.
            positions: or mask exactly these positions (indices 0..L-1 into the state; for a process
                made by `from_masked_lm`, into its free positions, `process.free_positions`) in every sample.
            num_steps: reverse steps; default ceil(t0·K) for this process's K, the step size of the
                full chain (with `block_length`: rounded up to a multiple of the number of blocks,
                which an explicit num_steps must be too).

        Every other position keeps the seed's token in every sample (the reverse process never
        changes an unmasked token). The timesteps start at the matching noise level
        t0 = (number masked) / L and descend to t0/num_steps, so the denoiser sees the time that
        fits the fraction of masked tokens. Works with every sampler (pretrained, best_of_n, svdd,
        svdd_r, smc). `hamming_to_seed(states)` measures how far samples moved. The decoding rule
        (`unmasking`, `block_length`, `threshold`) is kept; with blocks, every block is walked in
        turn (its steps change nothing where it has no masked position).
        """
        try:
            seed_t = torch.as_tensor(seed)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"seed must be integer tokens of shape ({self.length},); got {seed!r}") from None
        if seed_t.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8) or seed_t.shape != (self.length,):
            raise ValueError(
                f"seed must be integer tokens of shape ({self.length},); got {seed_t.dtype} "
                f"of shape {tuple(seed_t.shape)}"
            )
        if (seed_t < 0).any() or (seed_t >= self.vocab_size).any():
            raise ValueError(
                f"seed must hold clean token ids 0..{self.vocab_size - 1} (no mask id {self.mask_index}); "
                f"got values in {int(seed_t.min())}..{int(seed_t.max())}"
            )
        if (mask_fraction is None) == (positions is None):
            raise ValueError(
                "from_seed needs exactly one of mask_fraction (a fraction in (0, 1]) or positions "
                f"(indices to mask); got mask_fraction={mask_fraction!r}, positions={positions!r}"
            )
        chosen = None
        if mask_fraction is not None:
            if (
                isinstance(mask_fraction, bool)
                or not isinstance(mask_fraction, (int, float))
                or not 0.0 < mask_fraction <= 1.0
            ):
                raise ValueError(f"mask_fraction must be a number in (0, 1]; got {mask_fraction!r}")
            count = max(1, round(mask_fraction * self.length))
        elif positions is not None:
            chosen = _check_positions(positions, self.length)
            count = int(chosen.numel())
        start = count / self.length
        if num_steps is None:
            num_steps = max(1, math.ceil(start * self.full_num_steps - 1e-9))
            num_steps = self.num_blocks * math.ceil(num_steps / self.num_blocks)
        elif isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f"num_steps must be a positive int or None; got {num_steps!r}")
        seeded = copy.copy(self)
        seeded._set_schedule(start, num_steps)
        seeded.seed = seed_t.to(dtype=torch.long, device=self.device)
        seeded.seed_positions = chosen.to(self.device) if chosen is not None else None
        seeded.seed_mask_count = count
        return seeded

    def hamming_to_seed(self, x0: torch.Tensor) -> torch.Tensor:
        """Number of positions where each state of x0 Long[B, L] differs from the seed: Long[B]."""
        if self.seed is None:
            raise ValueError("hamming_to_seed needs a process made by from_seed; this one has no seed")
        return hamming(x0, self.seed)


def check_decoding(unmasking: Any, threshold: Any) -> None:
    """A ValueError unless `unmasking` is one of UNMASKING and `threshold` is None or, with
    "confidence", a number in (0, 1]. (`block_length` needs the length: `MaskedDiffusion` checks it.)"""
    if unmasking not in UNMASKING:
        raise ValueError(f"unmasking must be one of {', '.join(map(repr, UNMASKING))}; got {unmasking!r}")
    if threshold is None:
        return
    if unmasking != "confidence":
        raise ValueError(
            f"threshold applies to unmasking='confidence' only; got threshold={threshold!r} with {unmasking!r}"
        )
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be None or a number in (0, 1]; got {threshold!r}")


def token_process_args(
    denoiser: Any, vocab_size: Any, length: Any, num_steps: Any, device: Any
) -> tuple[int, int, int, torch.device]:
    """The arguments every token process checks, as (V, L, K, device); one clear error for a bad one."""
    for name, v in (("vocab_size", vocab_size), ("length", length), ("num_steps", num_steps)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be a positive int; got {v!r}")
    if not callable(denoiser):
        raise TypeError(
            f"denoiser must be callable (x_t Long[B, L], t [B]) -> logits [B, L, V]; got {type(denoiser).__name__}"
        )
    try:
        parsed = torch.device(device) if device is not None else torch.device("cpu")
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda:0'; got {device!r}") from None
    return int(vocab_size), int(length), int(num_steps), parsed


def denoiser_logits(denoiser: Callable, x: torch.Tensor, t: float, vocab_size: int) -> torch.Tensor:
    """`denoiser(x, t·1[B])` for tokens x Long[B, L], checked to be logits float[B, L, V]."""
    logits = denoiser(x, torch.full((x.shape[0],), float(t), device=x.device))
    expected = (x.shape[0], x.shape[1], vocab_size)
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"denoiser must return a tensor of logits {expected}; got {type(logits).__name__}")
    if tuple(logits.shape) != expected:
        raise ValueError(f"denoiser returned logits of shape {tuple(logits.shape)}; expected {expected}")
    return logits


def linear_timesteps(start: float, num_steps: int) -> tuple[list[float], dict[float, float]]:
    """Timesteps start·(1 - k/K), k = 0..K-1, and the time each step lands on (0.0 after the last)."""
    timesteps = [start * (1.0 - k / num_steps) for k in range(num_steps)]
    return timesteps, {t: (timesteps[k + 1] if k + 1 < num_steps else 0.0) for k, t in enumerate(timesteps)}


def hamming(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Hamming distance Long[B] between token rows x Long[B, L] and one reference Long[L]."""
    if x.dim() != 2 or reference.shape != x.shape[1:]:
        raise ValueError(
            f"hamming needs x [B, L] and a reference [L]; got {tuple(x.shape)} and {tuple(reference.shape)}"
        )
    return (x != reference.to(x.device)).sum(dim=-1)


def _check_positions(positions: Sequence[int] | torch.Tensor, length: int) -> torch.Tensor:
    """Distinct positions in 0..length-1 as Long[k] (k >= 1), or a ValueError naming the bad ones."""
    try:
        index = torch.as_tensor(positions).reshape(-1)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"positions must be a sequence of ints; got {positions!r}") from None
    if index.numel() == 0:
        raise ValueError("positions is empty; give at least one position to mask")
    if index.is_floating_point() or index.is_complex() or index.dtype == torch.bool:
        raise TypeError(f"positions must be integer indices; got {index.dtype}")
    index = index.long()
    outside = sorted({int(i) for i in index if not 0 <= int(i) < length})
    if outside:
        raise ValueError(f"positions {outside} are outside 0..{length - 1}")
    if index.unique().numel() != index.numel():
        raise ValueError(f"positions must be distinct; got {index.tolist()}")
    return index


class MaskedLMDiffusion(MaskedDiffusion):
    """A `MaskedDiffusion` over the free positions of a foreign masked model (`MaskedDiffusion.from_masked_lm`).

    Attributes read from its `MaskedLMDenoiser`: `model_length` L, `free_positions` Long[F] (model
    positions of the state's columns), `template` Long[L] (fixed ids; `mask_token_id` at free
    positions), `token_ids` Long[V], `mask_token_id`.
    """

    denoiser: MaskedLMDenoiser

    @property
    def model_length(self) -> int:
        return len(self.denoiser.template)

    @property
    def free_positions(self) -> torch.Tensor:
        return self.denoiser.free

    @property
    def template(self) -> torch.Tensor:
        return self.denoiser.template

    @property
    def token_ids(self) -> torch.Tensor:
        return self.denoiser.token_ids

    @property
    def mask_token_id(self) -> int:
        return self.denoiser.mask_token_id

    def to_model_ids(self, x: torch.Tensor) -> torch.Tensor:
        """States Long[B, F] -> the model's input ids Long[B, L] (masked states get `mask_token_id`)."""
        return self.denoiser.to_model_ids(x.to(self.device))

    def encode(self, model_ids: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """Model ids Long[L] or Long[B, L] (e.g. a tokenized seed) -> states Long[F] or Long[B, F]."""
        return self.denoiser.encode(model_ids)
