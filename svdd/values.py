"""Soft value estimates: how the samplers score intermediate states.

`PosteriorMean(reward)` (SVDD-PM, no training): v(x_t) = r(decode(x0_hat(x_t))), where x0_hat is
the process's `denoised` estimate from a model call on x_t itself.
`LearnedValue(fn)` (SVDD-MC): v(x_t) = fn(x_t, t), any torch module or plain callable that maps
raw states [n, ...] and their times, float [n], to values [n], e.g. a network regressed on r(x_0)
from rollouts of the pretrained model (`svdd.value_training`).

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

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from .rewards import reward_name
from .rng import GeneratorLike


class ValueCalls(Protocol):
    """The counted, timed calls a value may make (`svdd.calls.Calls`, or the scheduler's own).

    Shapes: x [n, ...] states at time t; `out` is `model(x, t)`; objects are what `decode` returns.
    """

    def model(self, x: torch.Tensor, t: Any) -> Any: ...

    def denoised(self, x: torch.Tensor, t: Any, out: Any) -> torch.Tensor: ...

    def decode(self, x0: torch.Tensor) -> list[Any]: ...

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
    """

    needs_model_output: bool

    def estimate(self, x: torch.Tensor, t: Any, out: Any, calls: ValueCalls,
                 generator: GeneratorLike) -> torch.Tensor: ...

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
            f"(see svdd.values.Value); got {type(value).__name__}, which lacks {', '.join(missing)} "
            "(wrap a network or function fn(x, t) as svdd.LearnedValue(fn))"
        )
    return value


class PosteriorMean:
    """SVDD-PM: score a state by the reward of its denoised estimate.

    Costs one model call per scored state; the samplers reuse that call's output for the next
    transition of the state they keep, so an SVDD-PM step costs M model calls per sample.
    """

    needs_model_output = True
    rowwise = True  # the estimate of a batch is the estimates of its rows (svdd.sample(overlap=True))

    def __init__(self, reward: Callable[[list[Any]], Any]):
        if not callable(reward):
            raise TypeError(f"PosteriorMean needs a callable reward; got {type(reward).__name__}")
        self.reward = reward

    def estimate(self, x: torch.Tensor, t: Any, out: Any, calls: ValueCalls,
                 generator: GeneratorLike) -> torch.Tensor:
        """r(decode(x0_hat(x))) float64 [n] for states x [n, ...] with their model output `out`."""
        return calls.score(self.reward, calls.decode(calls.denoised(x, t, out)))

    def clean_reward(self, objective: Callable) -> Callable:
        return self.reward

    def __repr__(self) -> str:
        return f"PosteriorMean({reward_name(self.reward)})"


class LearnedValue:
    """SVDD-MC: score a state with `fn(x: Tensor[n, ...], t: float Tensor[n]) -> values [n]`.

    `t` holds the state's timestep (the value from `process.timesteps`) for every row, the same
    form `svdd.value_training.fit_value` trains with.

    `fn` may be a `torch.nn.Module` (run under `torch.no_grad`) or any callable returning a
    tensor, array or list of n floats. `max_batch` bounds how many states one call sees.
    """

    needs_model_output = False

    def __init__(self, fn: Callable[[torch.Tensor, Any], Any], *, max_batch: int | None = None,
                 name: str | None = None):
        if not callable(fn):
            raise TypeError(f"LearnedValue needs a callable fn(x, t); got {type(fn).__name__}")
        if max_batch is not None and (not isinstance(max_batch, int) or max_batch < 1):
            raise ValueError(f"max_batch must be a positive int or None; got {max_batch!r}")
        self.fn = fn
        self.max_batch = max_batch
        self._name = name

    @property
    def name(self) -> str:
        """`name` if given, else the function's name (`svdd.rewards.reward_name`)."""
        return self._name if self._name is not None else reward_name(self.fn)

    def estimate(self, x: torch.Tensor, t: Any, out: Any, calls: ValueCalls,
                 generator: GeneratorLike) -> torch.Tensor:
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
    """`raw` (tensor, array or list of n floats, or [n, 1]) as CPU float64 [n]; clear errors otherwise."""
    if isinstance(raw, torch.Tensor):
        values = raw.detach().to("cpu", torch.float64)
    else:
        try:
            values = torch.as_tensor(np.asarray(raw, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"value function {name!r} returned {type(raw).__name__}; expected a tensor, "
                f"array or list of {n} floats"
            ) from exc
    if values.dim() == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.shape != (n,):
        raise ValueError(
            f"value function {name!r} returned shape {tuple(values.shape)} for {n} states; "
            f"expected ({n},)"
        )
    return values
