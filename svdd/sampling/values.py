"""Soft value estimates: how the samplers score intermediate states.

`PosteriorMean(reward)` (SVDD-PM, no training): v(x_t) = r(decode(x0_hat(x_t))), where x0_hat is
the process's `denoised` estimate from a model call on x_t itself.
`LearnedValue(fn)` (SVDD-MC): v(x_t) = fn(x_t, t), any torch module or plain callable that maps
raw states [n, ...] and their times, float [n], to values [n], e.g. a network regressed on r(x_0)
from rollouts of the pretrained model (`svdd.sampling.value_training`).

Clean states x_0 (the candidates of the last step) are scored by a reward, not a network: the
soft value at time 0 is the reward itself (`PosteriorMean` uses its reward, `LearnedValue` the
objective passed to `svdd.sample`).

Any object with the three members of `Value` can be passed as `value=` to `svdd.sample` and
`SVDDScheduler`; the samplers never ask which class it is. For example, a value that scores a
state by the reward of its denoised estimate minus a length penalty:

    class PenalisedPM:
        needs_model_output = True                       # the sampler calls the model on x first

        def __init__(self, reward, weight):
            self.reward, self.weight = reward, weight

        def estimate(self, x, t, out, calls, generator):
            objects = calls.decode(calls.denoised(x, t, out))
            scores = calls.score(self.reward, objects)   # float64 [n], counted and timed
            return scores - self.weight * torch.tensor([len(o) for o in objects], dtype=torch.float64)

        def clean_reward(self, objective):
            return self.reward                          # scores the clean candidates of the last step

    svdd.sample(process, reward, value=PenalisedPM(reward, 0.01))
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from .. import batched
from ..rewards import RewardError, _as_scores, reward_name
from ..rng import GeneratorLike, repeat_generators


class ValueCalls(Protocol):
    """The counted, timed calls a value may make (`svdd.sampling.calls.Calls`, or the scheduler's own).

    Shapes: x [n, ...] states at time t; `out` is `model(x, t)`; objects are what `decode` returns.
    """

    def model(self, x: torch.Tensor, t: Any) -> Any: ...

    def denoised(self, x: torch.Tensor, t: Any, out: Any) -> torch.Tensor: ...

    def decode(self, x0: torch.Tensor) -> list[Any]: ...

    def sample_x0(self, x: torch.Tensor, t: Any, out: Any, generator: GeneratorLike) -> torch.Tensor: ...

    def score(self, reward: Callable, objects: list[Any]) -> torch.Tensor: ...

    def timed(self, key: str) -> AbstractContextManager[None]: ...


@runtime_checkable
class Value(Protocol):
    """What the samplers need from a soft value estimate.

    needs_model_output: True when `estimate` reads the model output on the states it scores; the
        sampler then calls the model on every candidate (PM: M rows per sample and step) and
        reuses the winner's output for its next transition.
    estimate(x, t, out, calls, generator): values float64 [n] (NaN: invalid) of the states x [n, ...]
        at time t; `out` is `model(x, t)` when `needs_model_output`, else None. Use `calls` for
        model, denoising, decoding and reward calls (so they are counted and timed) and
        `calls.timed("value_time_s")` around any other work; `generator` is the candidates' random
        stream (one per row when a per-sample list is given) for values that draw.
    clean_reward(objective): the reward that scores clean candidates at time 0, given the
        objective passed to `svdd.sample`.
    Optional: `rowwise = True` declares that estimating a batch gives the estimates of its rows,
        whatever the batch (no draws, nothing shared between rows); `svdd.sample(overlap=True)` then
        estimates a step's candidates chunk by chunk on a background thread while the model runs.
    Optional: `with_x0_samples(S) -> Value` declares that the value can score a state by S draws
        x0 ~ p(x0 | x_t) (`calls.sample_x0`) and returns that variant; `num_x0_samples` says how
        many it draws now (1 when absent). `fk(num_x0_samples=S)` and `svdd.sample` ask for these
        members, never for a class, so a user's own value can take posterior draws too.
    """

    needs_model_output: bool

    def estimate(
        self, x: torch.Tensor, t: Any, out: Any, calls: ValueCalls, generator: GeneratorLike
    ) -> torch.Tensor: ...

    def clean_reward(self, objective: Callable) -> Callable: ...


def as_value(value: Any, reward: Callable | None) -> Value:
    """`value` checked against the `Value` protocol; None means `PosteriorMean(reward)`."""
    if value is None and reward is not None:
        return PosteriorMean(reward)
    missing = [name for name in ("needs_model_output", "estimate", "clean_reward") if not hasattr(value, name)]
    if missing or not isinstance(value, Value):
        raise TypeError(
            "value must be None, svdd.PosteriorMean(reward), svdd.LearnedValue(fn) or an object with "
            "needs_model_output, estimate(x, t, out, calls, generator) and clean_reward(objective) "
            f"(see svdd.sampling.values.Value); got {type(value).__name__}, which lacks {', '.join(missing)} "
            "(wrap a network or function fn(x, t) as svdd.LearnedValue(fn))"
        )
    return value


class PosteriorMean:
    """SVDD-PM: score a state by the reward of its denoised estimate.

    Costs one model call per scored state; the samplers reuse that call's output for the next
    transition of the state they keep, so an SVDD-PM step costs M model calls per sample.

    `num_x0_samples` = S > 1 (masked processes, which draw x0 with `sample_x0`): score a state by
    S draws x0 ~ p(x0 | x_t) from the denoiser's posterior (unmasked tokens copied) instead of its
    argmax, reduced by the soft value's log-mean-exp at the run's temperature α,
    α·log((1/S)·Σ_s exp(r_s/α)), or by the mean at α = 0 (the α → 0 limit of the soft value is the
    max, which overrates a state by its luckiest draw; the mean is the plain posterior mean).
    An invalid draw (NaN reward) counts as exp(-inf) = 0 in the log-mean-exp and is left out of the
    mean; a state whose draws are all invalid scores NaN. Cost: S reward calls per scored state
    (one model call, as S = 1). S = 1 (the default) is the argmax estimate, exactly as before.
    """

    needs_model_output = True

    def __init__(self, reward: Callable[[list[Any]], Any], *, num_x0_samples: int = 1):
        if not callable(reward):
            raise TypeError(f"PosteriorMean needs a callable reward; got {type(reward).__name__}")
        if isinstance(num_x0_samples, bool) or not isinstance(num_x0_samples, (int, np.integer)) or num_x0_samples < 1:
            raise ValueError(f"num_x0_samples must be an integer >= 1; got {num_x0_samples!r}")
        self.reward = reward
        self.num_x0_samples = int(num_x0_samples)

    def estimate(self, x: torch.Tensor, t: Any, out: Any, calls: ValueCalls, generator: GeneratorLike) -> torch.Tensor:
        """r(decode(x0_hat(x))) float64 [n] for states x [n, ...] with their model output `out`
        (with S draws: the log-mean-exp at `calls.alpha`, or the mean at 0, of r over the draws)."""
        s = self.num_x0_samples
        if s == 1:
            return calls.score(self.reward, calls.decode(calls.denoised(x, t, out)))
        # S draws per state: rows i·S .. i·S+S-1 are state i's, drawn from state i's generator
        draws = calls.sample_x0(
            batched.repeat_rows(x, s), t, batched.repeat_rows(out, s), repeat_generators(generator, s)
        )
        rewards = calls.score(self.reward, calls.decode(draws)).view(x.shape[0], s)
        return soft_mean(rewards, float(getattr(calls, "alpha", 0.0)))

    @property
    def rowwise(self) -> bool:
        """True when a batch's estimates are its rows' estimates (svdd.sample(overlap=True) may then
        score model chunks apart): with S > 1 draws from one generator, chunking would reorder them."""
        return self.num_x0_samples == 1

    def clean_reward(self, objective: Callable) -> Callable:
        return self.reward

    def with_x0_samples(self, num_x0_samples: int) -> PosteriorMean:
        """The same value scoring each state by `num_x0_samples` posterior draws of x0."""
        return PosteriorMean(self.reward, num_x0_samples=num_x0_samples)

    def __repr__(self) -> str:
        extra = f", num_x0_samples={self.num_x0_samples}" if self.num_x0_samples > 1 else ""
        return f"PosteriorMean({reward_name(self.reward)}{extra})"


def soft_mean(rewards: torch.Tensor, alpha: float) -> torch.Tensor:
    """Per row of rewards float64 [n, S]: α·log mean exp(r/α) at α > 0 (NaN entries count as 0 in the
    mean of exp), the mean of the non-NaN entries at α = 0; NaN for a row with no valid entry."""
    valid = ~torch.isnan(rewards)
    if alpha > 0:
        z = torch.where(valid, rewards / alpha, torch.full_like(rewards, -torch.inf))
        soft = alpha * (torch.logsumexp(z, dim=1) - np.log(rewards.shape[1]))
    else:
        soft = torch.where(valid, rewards, torch.zeros_like(rewards)).sum(1) / valid.sum(1).clamp_min(1)
    return torch.where(valid.any(dim=1), soft, torch.full_like(soft, torch.nan))


class LearnedValue:
    """SVDD-MC: score a state with `fn(x: Tensor[n, ...], t: float Tensor[n]) -> values [n]`.

    `t` holds the state's timestep (the value from `process.timesteps`) for every row, the same
    form `svdd.sampling.value_training.fit_value` trains with.

    `fn` may be a `torch.nn.Module` (run under `torch.no_grad`) or any callable returning a
    tensor, array or list of n floats. `max_batch` bounds how many states one call sees.
    """

    needs_model_output = False

    def __init__(
        self, fn: Callable[[torch.Tensor, Any], Any], *, max_batch: int | None = None, name: str | None = None
    ):
        if not callable(fn):
            raise TypeError(f"LearnedValue needs a callable fn(x, t); got {type(fn).__name__}")
        if max_batch is not None and (
            isinstance(max_batch, bool) or not isinstance(max_batch, numbers.Integral) or max_batch < 1
        ):
            raise ValueError(f"max_batch must be a positive int or None; got {max_batch!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None; got {name!r}")
        self.fn = fn
        self.max_batch = None if max_batch is None else int(max_batch)
        self._name = name

    @property
    def name(self) -> str:
        """`name` if given, else the function's name (`svdd.rewards.reward_name`)."""
        return self._name if self._name is not None else reward_name(self.fn)

    def estimate(self, x: torch.Tensor, t: Any, out: Any, calls: ValueCalls, generator: GeneratorLike) -> torch.Tensor:
        """fn(x, t) float64 [n], timed as `value_time_s` (no model call: `out` is None)."""
        with calls.timed("value_time_s"):
            return self(x, t)

    def clean_reward(self, objective: Callable) -> Callable:
        return objective

    def __call__(self, x: torch.Tensor, t: Any) -> torch.Tensor:
        """Values float64 [n] for states x [n, ...] at time t (NaN allowed)."""
        n = x.shape[0]
        step = self.max_batch or max(n, 1)
        parts = []
        with torch.no_grad():
            for start in range(0, n, step):
                chunk = x[start : start + step]
                times = torch.full((chunk.shape[0],), float(t), device=chunk.device)
                parts.append(as_values(self.fn(chunk, times), chunk.shape[0], self.name))
        if not parts:
            return torch.empty(0, dtype=torch.float64)
        return torch.cat(parts)

    def __repr__(self) -> str:
        return f"LearnedValue({self.name})"


def as_values(raw: Any, n: int, name: str) -> torch.Tensor:
    """`raw` (tensor, array or list of n floats, or [n, 1]) as CPU float64 [n]; clear errors otherwise.

    Values follow the reward policy (`svdd.rewards`): NaN or None marks an invalid state, +-inf are
    valid, and a number beyond float range is +-inf.
    """
    expected = f"expected a real tensor, array or list of {n} floats"
    if isinstance(raw, torch.Tensor):
        if raw.is_complex():
            raise TypeError(f"value function {name!r} returned a complex tensor; {expected}")
        values = raw.detach().to("cpu", torch.float64)
    elif raw is None or isinstance(raw, (str, bytes, dict)):
        raise TypeError(f"value function {name!r} returned {type(raw).__name__}; {expected}")
    else:
        try:
            values = torch.from_numpy(_as_scores(raw, n, name).copy())
        except RewardError:
            try:  # [n, 1]
                values = torch.as_tensor(np.asarray(raw, dtype=np.float64))
            except (TypeError, ValueError, OverflowError) as exc:
                raise TypeError(f"value function {name!r} returned {type(raw).__name__}; {expected}") from exc
    if values.dim() == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.shape != (n,):
        raise ValueError(
            f"value function {name!r} returned shape {tuple(values.shape)} for {n} states; expected ({n},)"
        )
    return values


def draws_x0(value: Any) -> bool:
    """True when `value` can score states by posterior draws of x0 (it has `with_x0_samples`)."""
    return callable(getattr(value, "with_x0_samples", None))
