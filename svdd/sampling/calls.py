"""Counted, timed and checked calls into a process, a reward and a value function.

Every sampler goes through one `Calls` object, and `SVDDScheduler` through a subclass, so the
counters mean the same thing everywhere (`Result.stats`, `SVDDScheduler.stats`, run records):
`model_calls` counts item-level denoiser evaluations (rows), `model_batches` the calls they were
made in, `reward_calls` the objects actually handed to a reward and `reward_cache_hits` the objects
scored without it (a duplicate in the same batch, or a cached score: `svdd.sampling.scoring`), so
`reward_calls + reward_cache_hits` is the number of objects scored; `decode_calls` and
`decode_cache_hits` count decoded states the same way; `value_calls` the intermediate states scored,
`fallback_rows` the selections where no candidate had a valid value; each `*_time_s` is the time
spent inside one kind of call (hashing for the caches included). The timings do not overlap, except
with `overlap=True`, where decoding and rewards run on a background thread while the model runs
(`Calls.model_and_evaluate`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import batched
from ..rewards import evaluate
from ..rng import GeneratorLike, select_generators
from .scoring import DecodeCache, RewardCache
from .selection import Selection, select
from .values import Value, as_values


def new_stats() -> dict[str, Any]:
    """The counters, all zero."""
    return {
        "model_calls": 0,
        "model_batches": 0,
        "reward_calls": 0,
        "reward_cache_hits": 0,
        "decode_calls": 0,
        "decode_cache_hits": 0,
        "value_calls": 0,
        "fallback_rows": 0,
        "model_time_s": 0.0,
        "prior_time_s": 0.0,
        "transition_time_s": 0.0,
        "denoise_time_s": 0.0,
        "reward_time_s": 0.0,
        "decode_time_s": 0.0,
        "value_time_s": 0.0,
    }


def trace_entry(t: Any, values: torch.Tensor, **extra: Any) -> dict[str, Any]:
    """One step of a trace: the time and statistics of the values float64 [n] kept there.

    `t`, `value_mean`, `value_median`, `value_max` (over valid values, i.e. not NaN; +inf and -inf
    count, so the mean is NaN when both occur; NaN if none), `invalid` (how many were NaN), then the
    method's extras (`selected`, `ess`, `resampled`, ...).
    """
    valid = values[~torch.isnan(values)]
    return {
        "t": t.item() if isinstance(t, torch.Tensor) else t,
        "value_mean": valid.mean().item() if valid.numel() else float("nan"),
        "value_median": valid.median().item() if valid.numel() else float("nan"),
        "value_max": valid.max().item() if valid.numel() else float("nan"),
        "invalid": int(values.numel() - valid.numel()),
        **extra,
    }


class Calls:
    """The sampler's gateway to `process`, `reward` and `value`, chunking model calls by `model_chunk`.

    `reward_cache`: a `svdd.sampling.scoring.RewardCache` (scores de-duplicated within a batch and cached
    across steps by object key; discrete states' decodes too, in a `DecodeCache` of the same size)
    or None (every object scored and every state decoded as given). `overlap`: run decoding and
    rewards of one model chunk on a background thread while the model runs on the next
    (`model_and_evaluate`); use `close()` (or `with Calls(...)`) to stop that thread.
    """

    alpha: float = 0.0  # the run's temperature (svdd.sample sets it); values that average draws read it

    def __init__(
        self,
        process: Any,
        reward: Callable,
        value: Value,
        max_batch: int | None,
        progress: bool | Mapping[str, Any] = False,
        model_chunk: int | None = None,
        stats: dict[str, Any] | None = None,
        callback: Callable[[dict[str, Any]], None] | None = None,
        reward_cache: RewardCache | None = None,
        overlap: bool = False,
    ):
        self.process = process
        self.reward_cache = reward_cache
        self.decode_cache = None if reward_cache is None else DecodeCache(reward_cache.size)
        self.overlap = overlap
        self._background: ThreadPoolExecutor | None = None
        # a mapping: tqdm options (diffusers' set_progress_bar_config), the bar shown unless disable is true
        self.progress_options = dict(progress) if isinstance(progress, Mapping) else {}
        self.progress = (not self.progress_options.get("disable", False)) if isinstance(progress, Mapping) else progress
        self.progress_options.pop("disable", None)
        self.callback = callback
        self._bar: Any = None
        self.reward = reward
        self.value = value
        self.max_batch = max_batch  # bounds the candidates held at once (svdd, svdd_r, best_of_n)
        self.model_chunk = model_chunk or max_batch  # most rows per process.model call
        self.stats: dict[str, Any] = new_stats() if stats is None else stats  # given: counting on into it

    @contextlib.contextmanager
    def timed(self, key: str) -> Iterator[None]:
        """Add the seconds spent inside the block to `stats[key]`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stats[key] += time.perf_counter() - start

    # -- steps, progress and trace -----------------------------------------------------------

    @property
    def timesteps(self) -> list[Any]:
        return list(self.process.timesteps)

    def steps(self, desc: str) -> Iterator[tuple[int, Any, Any]]:
        """(k, t_k, t_{k+1} or None on the last step), with a progress bar when enabled; after
        each step's work, `callback({"step": k + 1, "num_steps": K, "t": t_k, "desc": desc})`."""
        ts = self.timesteps
        for k in self.progress_bar(range(len(ts)), desc):
            yield k, ts[k], ts[k + 1] if k + 1 < len(ts) else None
            if self.callback is not None:
                self.callback({"step": k + 1, "num_steps": len(ts), "t": ts[k], "desc": desc})

    def progress_bar(self, steps: Iterable[int], desc: str) -> Iterable[int]:
        """`steps` wrapped in a tqdm bar (a widget in Jupyter) when progress is on."""
        if not self.progress:
            return steps
        self._bar = tqdm(steps, **{"desc": desc, "leave": False, "dynamic_ncols": True, **self.progress_options})
        return self._bar

    def record(self, trace: list[dict[str, Any]], t: Any, values: torch.Tensor, **extra: Any) -> None:
        """Append `trace_entry(t, values, **extra)` to `trace` and show its median on the progress bar."""
        entry = trace_entry(t, values, **extra)
        trace.append(entry)
        if self._bar is not None and not np.isnan(entry["value_median"]):
            self._bar.set_postfix(value_median=f"{entry['value_median']:.4g}", refresh=False)

    # -- the process -------------------------------------------------------------------------

    def model(self, x: torch.Tensor, t: Any) -> Any:
        """`process.model` on x [B, ...] in chunks of at most `model_chunk` rows -> out (batch B)."""
        n = x.shape[0]
        step = self.model_chunk or max(n, 1)
        outs = []
        with self.timed("model_time_s"):
            for start in range(0, n, step):
                chunk = x[start : start + step]
                out = self.process.model(chunk, t)
                if out is None:
                    raise TypeError(
                        f"{type(self.process).__name__}.model returned None; it must return the "
                        "denoiser output (a tensor, or a tuple/dict/dataclass of batch-first tensors)"
                    )
                got = batched.rows(out)
                if got is not None and got != chunk.shape[0]:
                    raise ValueError(
                        f"{type(self.process).__name__}.model returned a batch of {got} for "
                        f"{chunk.shape[0]} inputs; outputs must be batch-first with one row per input"
                    )
                outs.append(out)
                self.stats["model_batches"] += 1
            self.stats["model_calls"] += n
        return batched.cat(outs) if outs else None

    def prior(self, n: int, generator: GeneratorLike) -> torch.Tensor:
        with self.timed("prior_time_s"):
            x = self.process.prior(n, generator)
        _check_rows(x, n, f"{type(self.process).__name__}.prior")
        return x

    def transition(self, x: torch.Tensor, t: Any, out: Any, generator: GeneratorLike) -> torch.Tensor:
        """One draw x_prev [B, ...] ~ p_pre(. | x) given `out = model(x, t)`."""
        with self.timed("transition_time_s"):
            x_prev = self.process.transition(x, t, out, generator)
        _check_rows(x_prev, x.shape[0], f"{type(self.process).__name__}.transition")
        if x_prev.shape[1:] != x.shape[1:]:
            raise ValueError(
                f"{type(self.process).__name__}.transition changed the state shape from "
                f"{tuple(x.shape[1:])} to {tuple(x_prev.shape[1:])}"
            )
        return x_prev

    def sample_x0(self, x: torch.Tensor, t: Any, out: Any, generator: GeneratorLike) -> torch.Tensor:
        """Draws x0 [n, ...] ~ p(x0 | x) from the denoiser's posterior (`process.sample_x0`; masked
        processes), one per state x [n, ...] given `out = model(x, t)`, timed as denoising."""
        draw = getattr(self.process, "sample_x0", None)
        if draw is None:
            raise TypeError(
                f"{type(self.process).__name__} has no sample_x0: drawing x0 from the denoiser's posterior "
                "(PosteriorMean(num_x0_samples > 1)) needs a masked process; use num_x0_samples=1"
            )
        with self.timed("denoise_time_s"):
            x0 = draw(x, t, out, generator)
        _check_rows(x0, x.shape[0], f"{type(self.process).__name__}.sample_x0")
        return x0

    def renoise(self, x0: torch.Tensor, level: float, generator: GeneratorLike) -> tuple[torch.Tensor, list[Any]]:
        """`process.renoise`: clean states x0 [n, ...] noised part-way back -> (x_t [n, ...], the
        process's timesteps left from t on), timed with the prior draws."""
        with self.timed("prior_time_s"):
            x_t, timesteps = self.process.renoise(x0, level, generator)
        _check_rows(x_t, x0.shape[0], f"{type(self.process).__name__}.renoise")
        timesteps = list(timesteps)
        if not timesteps:
            raise ValueError(f"{type(self.process).__name__}.renoise returned no timesteps to denoise over")
        return x_t, timesteps

    def denoised(self, x: torch.Tensor, t: Any, out: Any) -> torch.Tensor:
        """The process's estimate x0_hat [n, ...] of states x [n, ...] from `out = model(x, t)`."""
        with self.timed("denoise_time_s"):
            x0_hat = self.process.denoised(x, t, out)
        _check_rows(x0_hat, x.shape[0], f"{type(self.process).__name__}.denoised")
        return x0_hat

    def decode(self, x0: torch.Tensor) -> list[Any]:
        """Objects of clean states x0 [n, ...]: each distinct discrete state decoded once (cached)
        when the calls have a reward cache, else `process.decode(x0)`."""
        with self.timed("decode_time_s"):
            if self.decode_cache is None:
                objects, decoded, hits = self._decode_checked(x0), x0.shape[0], 0
            else:
                objects, decoded, hits = self.decode_cache.decode(x0, self._decode_checked)
        self.stats["decode_calls"] += decoded
        self.stats["decode_cache_hits"] += hits
        return objects

    def _decode_checked(self, x0: torch.Tensor) -> list[Any]:
        decoded = self.process.decode(x0)
        if isinstance(decoded, (str, bytes)) or not hasattr(decoded, "__iter__"):
            raise TypeError(
                f"{type(self.process).__name__}.decode must return a sequence of {x0.shape[0]} "
                f"objects (one per state); got {type(decoded).__name__}"
            )
        objects = list(decoded)
        if len(objects) != x0.shape[0]:
            raise ValueError(
                f"{type(self.process).__name__}.decode returned {len(objects)} objects for {x0.shape[0]} states"
            )
        return objects

    def refuse_deterministic(self, x: torch.Tensor, t: Any, out: Any) -> None:
        """Raise if two draws of `transition` from one continuous state are identical.

        Integer (masked discrete) states are exempt: identical children are normal there when a
        step unmasks nothing. The probe uses its own generator, so the caller's stream is untouched.
        """
        if not x.is_floating_point():
            return
        pair = torch.zeros(2, dtype=torch.long, device=x.device)
        probe_gen = torch.Generator(device=x.device).manual_seed(0)
        draws = self.transition(x[pair], t, batched.take(out, pair), probe_gen)
        if torch.equal(draws[0], draws[1]):
            raise ValueError(
                f"{type(self.process).__name__}.transition is deterministic: two draws from the same "
                "state are identical, so the candidates would all be the same and there is nothing to "
                "choose from. Use a stochastic sampler (DDPM, DDIM with eta > 0, EulerAncestral, "
                "DPMSolver with an SDE algorithm) for svdd, svdd_r and smc."
            )

    # -- rewards, values and selection -------------------------------------------------------

    def score(self, reward: Callable, objects: list[Any]) -> torch.Tensor:
        """reward(objects) as float64 [n], counted and timed (NaN for invalid objects); with a
        reward cache only the distinct uncached objects reach the reward."""
        with self.timed("reward_time_s"):
            if self.reward_cache is None:
                values, scored, hits = evaluate(reward, objects), len(objects), 0
            else:
                values, scored, hits = self.reward_cache.score(reward, objects)
        self.stats["reward_calls"] += scored
        self.stats["reward_cache_hits"] += hits
        return torch.from_numpy(np.asarray(values, dtype=np.float64))

    def score_clean(self, x0: torch.Tensor, reward: Callable | None = None) -> tuple[torch.Tensor, list[Any]]:
        """Reward (the objective unless given) of clean states x0 [n, ...] -> (values float64 [n], objects)."""
        objects = self.decode(x0)
        return self.score(reward or self.reward, objects), objects

    @property
    def clean_reward(self) -> Callable:
        """The reward that scores clean candidates (the value's choice: PM's own reward, MC's objective)."""
        return self.value.clean_reward(self.reward)

    @property
    def clean_values_are_rewards(self) -> bool:
        """True when the clean candidates are scored by the objective itself (their values are the final rewards)."""
        return self.clean_reward is self.reward

    @property
    def needs_model_output(self) -> bool:
        """Whether the value reads the model output of the states it scores (PM)."""
        return bool(self.value.needs_model_output)

    def values(self, x: torch.Tensor, t: Any, out: Any, generator: GeneratorLike) -> torch.Tensor:
        """Soft value estimate float64 [n] of intermediate states x [n, ...] at time t.

        `out` is `model(x, t)` when the value needs it (else None); `generator` is x's random stream.
        """
        self.stats["value_calls"] += x.shape[0]
        raw = self.value.estimate(x, t, out if self.needs_model_output else None, self, generator)
        return as_values(raw, x.shape[0], repr(self.value))

    def evaluate(
        self, x: torch.Tensor, t: Any, out: Any, generator: GeneratorLike
    ) -> tuple[torch.Tensor, list[Any] | None]:
        """(`values(x, t, out, generator)`, None); for clean states x0 (t None: the last step's
        candidates) (their `clean_reward` float64 [n], their decoded objects)."""
        if t is None:
            return self.score_clean(x, self.clean_reward)
        return self.values(x, t, out, generator), None

    def model_and_evaluate(
        self, x: torch.Tensor, t: Any, generator: GeneratorLike
    ) -> tuple[Any, torch.Tensor, list[Any] | None]:
        """(`model(x, t)` when the value needs it, else None; then `evaluate(x, t, out, generator)`).

        With `overlap` and a row-wise value (`value.rowwise`, e.g. `PosteriorMean`) the model runs on
        one `model_chunk` of x after another while a background thread estimates the values of the
        chunks already done (decode and reward), so the reward work hides behind the model's. The
        chunks are the ones `model` uses anyway, so outputs, values, samples and counts are the
        same as without overlap.
        """
        if t is None:
            return (None, *self.evaluate(x, None, None, generator))
        if not self.needs_model_output:
            return None, self.values(x, t, None, generator), None
        n, chunk = x.shape[0], self.model_chunk
        if not (self.overlap and chunk and n > chunk and getattr(self.value, "rowwise", False)):
            out = self.model(x, t)
            return out, self.values(x, t, out, generator), None
        if self._background is None:
            self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="svdd-rewards")
        grad = torch.is_grad_enabled()
        outs: list[Any] = []
        futures: list[Future] = []
        try:
            for start in range(0, n, chunk):
                rows = slice(start, min(start + chunk, n))
                out = self.model(x[rows], t)
                outs.append(out)
                futures.append(
                    self._background.submit(self._estimate, grad, x[rows], t, out, select_generators(generator, rows))
                )
        finally:
            wait(futures)  # never leave the thread working on this step (an error in the model)
        self.stats["value_calls"] += n
        values = torch.cat([f.result() for f in futures])
        return batched.cat(outs), values, None

    def _estimate(self, grad: bool, x: torch.Tensor, t: Any, out: Any, generator: GeneratorLike) -> torch.Tensor:
        """The value's estimate of states x [n, ...] on the background thread, in the caller's grad mode."""
        with torch.set_grad_enabled(grad):
            return as_values(self.value.estimate(x, t, out, self, generator), x.shape[0], repr(self.value))

    def close(self) -> None:
        """Stop the background thread of `overlap` (if one was started)."""
        if self._background is not None:
            self._background.shutdown(wait=True)
            self._background = None

    def __enter__(self) -> Calls:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def reward_tensor(self, x0_hat: torch.Tensor) -> torch.Tensor:
        """A differentiable reward's `tensor(x0_hat)` [n] (dps guidance), counted as value calls."""
        with self.timed("value_time_s"):
            r = self.reward.tensor(x0_hat)  # type: ignore[attr-defined]  # dps checked it has one
        self.stats["value_calls"] += x0_hat.shape[0]
        return r

    def select(self, values: torch.Tensor, alpha: float, generator: GeneratorLike) -> Selection:
        """`svdd.sampling.selection.select` on values [g, M], counting the rows with no valid candidate."""
        choice = select(values, alpha, generator)
        self.stats["fallback_rows"] += choice.fallback_rows
        return choice


def _check_rows(x: Any, n: int, where: str) -> None:
    if not isinstance(x, torch.Tensor):
        hint = " (convert it with torch.as_tensor)" if isinstance(x, np.ndarray) else ""
        raise TypeError(
            f"{where} must return a torch.Tensor of shape [{n}, ...] (batch first); got {type(x).__name__}{hint}"
        )
    if x.dim() == 0 or x.shape[0] != n:
        raise ValueError(f"{where} returned shape {tuple(x.shape)}; expected {n} rows on dim 0")
