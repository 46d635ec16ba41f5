"""Counted, timed and checked calls into a process, a reward and a value function.

Every sampler goes through one `Calls` object, so the compute counters in `Result.stats` mean
the same thing for every method: `model_calls` counts item-level denoiser evaluations (rows),
`reward_calls` the objects handed to a reward, `value_calls` the intermediate states scored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from . import batched
from .rewards import evaluate
from .rng import GeneratorLike
from .values import LearnedValue, PosteriorMean


class Calls:
    """The sampler's gateway to `process`, `reward` and `value`, chunking model calls by `model_chunk`."""

    def __init__(self, process: Any, reward: Callable, value: PosteriorMean | LearnedValue,
                 max_batch: int | None, progress: bool = False, model_chunk: int | None = None):
        self.process = process
        self.progress = progress
        self._bar: Any = None
        self.reward = reward
        self.value = value
        self.max_batch = max_batch  # bounds the candidates held at once (svdd, svdd_r, best_of_n)
        self.model_chunk = model_chunk or max_batch  # most rows per process.model call
        self.stats: dict[str, Any] = {
            "model_calls": 0,
            "model_batches": 0,
            "reward_calls": 0,
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

    # -- progress ----------------------------------------------------------------------------

    def progress_bar(self, steps: Iterable[int], desc: str) -> Iterable[int]:
        """`steps` wrapped in a tqdm bar (a widget in Jupyter) when progress is on."""
        if not self.progress:
            return steps
        self._bar = tqdm(steps, desc=desc, leave=False, dynamic_ncols=True)
        return self._bar

    def show(self, entry: dict[str, Any]) -> None:
        """Put the current step's value statistics on the progress bar."""
        if self._bar is not None and not np.isnan(entry["value_median"]):
            self._bar.set_postfix(value_median=f"{entry['value_median']:.4g}", refresh=False)

    # -- the process -------------------------------------------------------------------------

    def model(self, x: torch.Tensor, t: Any) -> Any:
        """`process.model` on x [B, ...] in chunks of at most `model_chunk` rows -> out (batch B)."""
        n = x.shape[0]
        step = self.model_chunk or max(n, 1)
        outs = []
        start_time = time.perf_counter()
        for start in range(0, n, step):
            chunk = x[start : start + step]
            out = self.process.model(chunk, t)
            got = batched.rows(out)
            if got is not None and got != chunk.shape[0]:
                raise ValueError(
                    f"{type(self.process).__name__}.model returned a batch of {got} for "
                    f"{chunk.shape[0]} inputs; outputs must be batch-first with one row per input"
                )
            outs.append(out)
            self.stats["model_batches"] += 1
        self.stats["model_calls"] += n
        self.stats["model_time_s"] += time.perf_counter() - start_time
        return batched.cat(outs) if outs else None

    def prior(self, n: int, generator: GeneratorLike) -> torch.Tensor:
        start_time = time.perf_counter()
        x = self.process.prior(n, generator)
        self.stats["prior_time_s"] += time.perf_counter() - start_time
        _check_rows(x, n, f"{type(self.process).__name__}.prior")
        return x

    def transition(self, x: torch.Tensor, t: Any, out: Any, generator: GeneratorLike) -> torch.Tensor:
        start_time = time.perf_counter()
        x_prev = self.process.transition(x, t, out, generator)
        self.stats["transition_time_s"] += time.perf_counter() - start_time
        _check_rows(x_prev, x.shape[0], f"{type(self.process).__name__}.transition")
        if x_prev.shape[1:] != x.shape[1:]:
            raise ValueError(
                f"{type(self.process).__name__}.transition changed the state shape from "
                f"{tuple(x.shape[1:])} to {tuple(x_prev.shape[1:])}"
            )
        return x_prev

    def decode(self, x0: torch.Tensor) -> list[Any]:
        start_time = time.perf_counter()
        objects = list(self.process.decode(x0))
        self.stats["decode_time_s"] += time.perf_counter() - start_time
        if len(objects) != x0.shape[0]:
            raise ValueError(
                f"{type(self.process).__name__}.decode returned {len(objects)} objects for "
                f"{x0.shape[0]} states"
            )
        return objects

    # -- rewards and values ------------------------------------------------------------------

    def score(self, reward: Callable, objects: list[Any]) -> torch.Tensor:
        """reward(objects) as float64 [n], counted and timed (NaN for invalid objects)."""
        start_time = time.perf_counter()
        values = evaluate(reward, objects)
        self.stats["reward_time_s"] += time.perf_counter() - start_time
        self.stats["reward_calls"] += len(objects)
        return torch.from_numpy(np.asarray(values, dtype=np.float64))

    def score_clean(self, x0: torch.Tensor, reward: Callable | None = None) -> tuple[torch.Tensor, list[Any]]:
        """Reward of clean states x0 [n, ...] -> (values float64 [n], decoded objects)."""
        objects = self.decode(x0)
        return self.score(reward or self.reward, objects), objects

    @property
    def clean_reward(self) -> Callable:
        """The reward that scores clean candidates: PM's own reward, else the objective."""
        return self.value.reward if isinstance(self.value, PosteriorMean) else self.reward

    def value_of(self, x: torch.Tensor, t: Any, out: Any) -> torch.Tensor:
        """Soft value estimate float64 [n] of intermediate states x [n, ...] at time t.

        `out` is `model(x, t)` for PM (None for a learned value).
        """
        self.stats["value_calls"] += x.shape[0]
        if isinstance(self.value, PosteriorMean):
            start_time = time.perf_counter()
            x0_hat = self.process.denoised(x, t, out)
            self.stats["denoise_time_s"] += time.perf_counter() - start_time
            _check_rows(x0_hat, x.shape[0], f"{type(self.process).__name__}.denoised")
            return self.score(self.value.reward, self.decode(x0_hat))
        start_time = time.perf_counter()
        values = self.value(x, t)
        self.stats["value_time_s"] += time.perf_counter() - start_time
        return values


def _check_rows(x: Any, n: int, where: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where} must return a torch.Tensor; got {type(x).__name__}")
    if x.dim() == 0 or x.shape[0] != n:
        raise ValueError(f"{where} returned shape {tuple(x.shape)}; expected {n} rows on dim 0")
