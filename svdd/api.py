"""`svdd.sample`: one entry point for every method, with its arguments checked up front."""

from __future__ import annotations

import contextlib
import math
import numbers
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np
import torch

from .processes.protocol import check_process
from .result import Result
from .rewards import is_differentiable, reward_name
from .rng import GeneratorLike, check_generator
from .sampling.calls import Calls
from .sampling.options import check_options
from .sampling.samplers import METHODS
from .sampling.scoring import DEFAULT_CACHE_SIZE, RewardCache
from .sampling.values import Value, as_value, draws_x0

CPU_MODEL_CHUNK = 64  # rows per model call under max_batch="auto" without CUDA
MAX_CANDIDATES = 2**31 - 1  # most num_samples·num_candidates: rows past it overflow torch's int32 indexing


def sample(
    process: Any,
    reward: Callable[[list[Any]], Any],
    method: str = "svdd",
    value: Value | None = None,
    num_samples: int = 64,
    num_candidates: int = 10,
    alpha: float = 0.0,
    generator: GeneratorLike = None,
    max_batch: int | str | None = "auto",
    progress: bool | Mapping[str, Any] = True,
    callback: Callable[[dict[str, Any]], None] | None = None,
    reward_cache: int | RewardCache | None = DEFAULT_CACHE_SIZE,
    overlap: bool = False,
    **options: Any,
) -> Result:
    """Draw `num_samples` samples from `process`, steered toward high `reward`.

    Args:
        process: a `svdd.DenoisingProcess` (prior, timesteps, model, transition, denoised, decode).
        reward: the objective, `list[obj] -> array[float]` (maximized; NaN marks an invalid
            object). It scores the final samples (`Result.rewards`).
        method: "pretrained", "best_of_n", "svdd", "svdd_r", "smc", "fk", "beam", "refine", "dps", or
            the noise searches "random_search" and "zero_order" (continuous processes)
            (see svdd.sampling.samplers for each one's cost).
        value: how intermediate states are scored: `svdd.PosteriorMean(reward)` (PM, the default),
            `svdd.LearnedValue(fn)` (MC), or any object with the members of `svdd.sampling.values.Value`.
        num_samples: N, the number of samples returned.
        num_candidates: M, children per sample and step (svdd, svdd_r, refine; children per active
            state for beam); samples per returned one (best_of_n); particles per returned one (smc;
            fk: particles per group, N groups).
        alpha: temperature of the target p_pre(x)·exp(r(x)/alpha). 0 selects by argmax. smc and
            fk need alpha > 0 (fk's λ is 1/alpha).
        generator: None, a torch.Generator, or a list of N generators (one per sample: sample i's
            randomness then depends on generator[i] alone, for the methods where rows don't
            interact: pretrained, svdd, dps, refine; for smc with groups=N and fk, group i's
            particles depend on generator[i] alone; beam uses the first generator of a list).
        max_batch: "auto" (the default): model calls in chunks of `CPU_MODEL_CHUNK` rows when no
            CUDA device is present (a CPU runs a denoiser 2-3x slower per row on batches of
            hundreds of rows than on ~64, benchmarks/results/performance_chunk.md), unchunked
            otherwise; samples are the same as with None. None: no chunking at all.
            An int: most rows per model call; svdd, svdd_r and best_of_n also hold the candidates
            of only max(1, max_batch // M) samples at a time, so peak memory is bounded by this
            knob rather than by M (smc and fk hold their N·M particles, beam its A·B children, by
            design). With a per-sample generator list the samples do not depend on it; with one
            generator a max_batch below N·M makes those methods draw their random numbers group by
            group (same distribution, other samples). Model-call counts never depend on it.
        progress: show a tqdm progress bar over the denoising steps; a dict gives tqdm options
            (e.g. diffusers' `pipe._progress_bar_config`: `{"disable": True}`, `{"position": 1}`).
        callback: called after every denoising step with {"step": k (1..K), "num_steps": K,
            "t": the step's time, "desc": the sampling pass}; methods that run several passes
            (best_of_n over candidate groups under an int max_batch, refine) count each pass from 1.
        reward_cache: how many distinct objects' scores (and discrete states' decodes) to remember
            across the steps of this call, 65,536 by default (at most about 30 MB for SMILES or
            sequence strings); each batch is de-duplicated too, so the reward sees every distinct object of
            a step once (`stats["reward_calls"]`, the rest in `stats["reward_cache_hits"]`). A
            `svdd.RewardCache` shares its scores across calls; 0 or None scores every object as
            given. Samples do not change for a reward that is a function of the object alone; set
            `cacheable = False` on a reward that is random on purpose. See `svdd.sampling.scoring`.
        overlap: decode and score the candidates of one model chunk on a background thread while
            the model runs on the next (svdd, svdd_r with a row-wise value such as PM; a step's
            candidates must span more than one model chunk, e.g. N·M > 64 on a CPU under
            max_batch="auto"; the last chunk's reward work still follows the model). Same samples
            and counts; the reward is then called from that thread (one call at a time), so leave
            it off for a reward that must run on the main thread (signal-based timeouts) or is not
            safe to run beside the model; the `*_time_s` timers then overlap. It pays only where a
            second core is free (molecules QED, N = 16, M = 8: wall 7.5 -> 7.0 s; N = 32: 14.5 ->
            11.9 s, benchmarks/results/performance_wall.md); without one it gains nothing.
            With torch using several threads, the two threads share them.
        **options: method options: `resample_fraction` (svdd_r), `select_steps` (svdd,
            svdd_r, refine), `select_start` (svdd, svdd_r), `resampling`, `ess_threshold` (smc, fk), `groups` (smc),
            `potential`, `resample_every`, `resample_window`, `num_x0_samples`, `return_all` (fk),
            `beam_width` (beam), `iterations`, `renoise`, `initial` (refine), `guidance_scale` (dps).

    Returns:
        `svdd.Result` with `samples`, `rewards` [N], `states`, `trace`, `stats`, `config`; with
        fk's `return_all=True` they hold all N·M particles (group by group) instead of N samples.
    """
    checked = check_arguments(
        process,
        reward,
        method=method,
        value=value,
        num_samples=num_samples,
        num_candidates=num_candidates,
        alpha=alpha,
        generator=generator,
        max_batch=max_batch,
        options=options,
    )
    value, alpha, options = checked.value, checked.alpha, checked.options
    num_samples, num_candidates = int(num_samples), int(num_candidates)  # numpy integers too
    max_batch, model_chunk = checked.max_batch, checked.model_chunk

    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable(dict) or None; got {type(callback).__name__}")
    if not isinstance(progress, (bool, numbers.Integral, Mapping)):
        raise TypeError(f"progress must be True, False or a dict of tqdm options; got {progress!r}")
    cache = reward_cache_of(reward_cache)
    if not isinstance(overlap, bool):
        raise TypeError(f"overlap must be True or False; got {overlap!r}")
    calls = Calls(
        process,
        reward,
        value,
        max_batch,
        progress=progress,
        model_chunk=model_chunk,
        callback=callback,
        reward_cache=cache,
        overlap=overlap,
    )
    calls.alpha = float(alpha)  # the temperature of values that average several draws
    start = time.perf_counter()
    with torch.no_grad(), calls, _naming_memory_failures(num_samples, num_candidates, max_batch):
        outcome = METHODS[method](
            calls,
            num_samples=num_samples,
            num_candidates=num_candidates,
            alpha=float(alpha),
            generator=generator,
            **options,
        )
        samples = outcome.samples
        if samples is None:
            samples = calls.decode(outcome.states)
        rewards = outcome.rewards
        if rewards is None:
            rewards = calls.score(reward, samples)
    calls.stats["wall_time_s"] = time.perf_counter() - start
    config = {
        "method": method,
        "num_samples": num_samples,
        "num_candidates": num_candidates,
        "alpha": float(alpha),
        "value": repr(value),
        "reward": reward_name(reward),
        "max_batch": max_batch,
        "model_chunk": calls.model_chunk,
        "num_steps": len(process.timesteps),
        "reward_cache": 0 if cache is None else cache.size,
        "overlap": overlap,
        **options,
    }
    return Result(
        samples=list(samples),
        rewards=np.asarray(rewards, dtype=np.float64),
        states=outcome.states,
        trace=outcome.trace,
        stats=calls.stats,
        config=config,
    )


@contextlib.contextmanager
def _naming_memory_failures(num_samples: int, num_candidates: int, max_batch: int | None) -> Iterator[None]:
    """Let an allocation failure say which arguments set the memory: torch's CPU allocator error
    becomes a MemoryError naming them; a CUDA out-of-memory error keeps its type and gets a note."""
    try:
        yield
    except RuntimeError as exc:
        text = str(exc)
        if not (
            isinstance(exc, torch.OutOfMemoryError)
            or "can't allocate memory" in text
            or "out of memory" in text.lower()
        ):
            raise
        advice = (
            f"out of memory while sampling num_samples={num_samples} x num_candidates={num_candidates} "
            f"= {num_samples * num_candidates} candidates with max_batch={max_batch!r}: lower "
            "num_candidates or num_samples, or set max_batch (an int) to hold fewer candidates at once"
        )
        if isinstance(exc, torch.OutOfMemoryError):
            if hasattr(exc, "add_note"):
                exc.add_note(advice)
            raise
        raise MemoryError(f"{advice} ({text.splitlines()[0] if text else type(exc).__name__})") from exc


def reward_cache_of(reward_cache: Any) -> RewardCache | None:
    """`svdd.sample`'s `reward_cache` as a cache: an int n >= 1 -> a fresh RewardCache(n), a
    RewardCache as is, 0 or None -> None (no de-duplication, no cache)."""
    if reward_cache is None or isinstance(reward_cache, RewardCache):
        return reward_cache
    if isinstance(reward_cache, bool) or not isinstance(reward_cache, (int, np.integer)) or reward_cache < 0:
        raise ValueError(
            "reward_cache must be an integer >= 0 (entries; 0 turns the cache off), None or a "
            f"svdd.RewardCache; got {reward_cache!r}"
        )
    return RewardCache(int(reward_cache)) if reward_cache else None


def _check_count(name: str, v: Any, limit: int = 2**31 - 1) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {v!r}")
    if v > limit:
        raise ValueError(f"{name} must be at most {limit}; got {v!r}")


class CheckedArguments(NamedTuple):
    """`svdd.sample`'s arguments after `check_arguments`: the value object (PM on the reward when
    None was given), alpha as a float, the rows bound for candidates (`max_batch`) and for one
    model call (`model_chunk`), and the method options normalised."""

    value: Any
    alpha: float
    max_batch: int | None
    model_chunk: int | None
    options: dict[str, Any]


def check_arguments(
    process: Any,
    reward: Any,
    *,
    method: str = "svdd",
    value: Any = None,
    num_samples: int = 64,
    num_candidates: int = 10,
    alpha: Any = 0.0,
    generator: GeneratorLike = None,
    max_batch: int | str | None = "auto",
    options: dict[str, Any] | None = None,
) -> CheckedArguments:
    """Every check `svdd.sample` makes before sampling, without sampling: raises a ValueError or
    TypeError naming the argument, the value given and what is accepted. `svdd generate` calls it
    before it writes anything."""
    check_process(process)
    if not callable(reward):
        raise TypeError(f"reward must be callable list[obj] -> array[float]; got {type(reward).__name__}")
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    _check_count("num_samples", num_samples)
    _check_count("num_candidates", num_candidates)
    if num_samples * num_candidates > MAX_CANDIDATES:
        raise ValueError(
            f"num_samples x num_candidates = {num_samples} x {num_candidates} = {num_samples * num_candidates} "
            f"candidates is more than svdd handles (at most {MAX_CANDIDATES}, torch's int32 row indexing); "
            "lower num_candidates or num_samples"
        )
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0 (0 selects by argmax); got {alpha!r}")
    alpha = float(alpha)
    model_chunk = None
    if isinstance(max_batch, str):
        if max_batch != "auto":
            raise ValueError(f"max_batch must be 'auto', None or an integer >= 1; got {max_batch!r}")
        max_batch, model_chunk = None, (None if torch.cuda.is_available() else CPU_MODEL_CHUNK)
    elif max_batch is not None:
        _check_count("max_batch", max_batch)
        max_batch = int(max_batch)
    check_generator(generator, num_samples)
    value = as_value(value, reward)
    options = check_options(
        method,
        METHODS[method],
        dict(options or {}),
        len(process.timesteps),
        num_samples=int(num_samples),
        num_candidates=int(num_candidates),
    )
    if method == "smc" and alpha <= 0:
        raise ValueError("smc needs alpha > 0: its weights are exp((v_{t-1} - v_t)/alpha)")
    if method == "fk" and alpha <= 0:
        raise ValueError("fk needs alpha > 0: its potentials are exp(λ·r) with λ = 1/alpha")
    _check_process_hooks(process, method, value, options)
    if method == "dps" and (not is_differentiable(reward) or not hasattr(reward, "tensor")):
        raise TypeError(
            f"dps needs a differentiable reward with a tensor(x0) method, such as "
            f"svdd.rewards.TorchReward(fn); {reward_name(reward)!r} is a black box. "
            "Use method='svdd' for black-box rewards."
        )
    return CheckedArguments(value, alpha, max_batch, model_chunk, options)


def _check_process_hooks(process: Any, method: str, value: Any, options: dict[str, Any]) -> None:
    """The process members a method or value needs beyond the protocol, and fk's value for num_x0_samples."""
    name = type(process).__name__
    if method == "refine" and not callable(getattr(process, "renoise", None)):
        raise TypeError(
            f"refine needs a process with renoise(x0, level, generator) -> (x_t, timesteps) "
            f"(MaskedDiffusion, DiffusersProcess and the toys have one); {name} has none"
        )
    if method in ("random_search", "zero_order"):
        start = process.prior(1)
        if not (isinstance(start, torch.Tensor) and start.is_floating_point()):
            raise TypeError(
                f"method={method!r} searches the initial noise of a continuous process; {name}.prior gives "
                f"{getattr(start, 'dtype', type(start).__name__)} states (use best_of_n or svdd for discrete processes)"
            )
    fk_draws = options.get("num_x0_samples") if method == "fk" else None
    if fk_draws is not None and not draws_x0(value):
        raise TypeError(
            f"num_x0_samples applies to the posterior-mean value (value=None or svdd.PosteriorMean) or a value "
            f"that scores posterior draws of x0 (with_x0_samples(S)); got value={value!r}"
        )
    draws = max(fk_draws or 1, getattr(value, "num_x0_samples", 1) if draws_x0(value) else 1)
    if draws > 1 and not callable(getattr(process, "sample_x0", None)):
        raise TypeError(
            f"num_x0_samples > 1 draws x0 from the denoiser's posterior with process.sample_x0 "
            f"(masked processes); {name} has none: use num_x0_samples=1"
        )
