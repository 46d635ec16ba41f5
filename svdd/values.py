"""Soft value estimates: how the samplers score intermediate states.

`PosteriorMean(reward)` (SVDD-PM, no training): v(x_t) = r(decode(x0_hat(x_t))), where x0_hat is
the process's `denoised` estimate from a model call on x_t itself.
`LearnedValue(fn)` (SVDD-MC): v(x_t) = fn(x_t, t), any torch module or plain callable that maps
raw states [n, ...] and their times, float [n], to values [n], e.g. a network regressed on r(x_0)
from rollouts of the pretrained model (`svdd.value_training`).

Clean states x_0 (the candidates of the last step) are scored by a reward, not a network: the
soft value at time 0 is the reward itself (`PosteriorMean` uses its reward, `LearnedValue` the
objective passed to `svdd.sample`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .rewards import reward_name


class PosteriorMean:
    """SVDD-PM: score a state by the reward of its denoised estimate.

    Costs one model call per scored state; the samplers reuse that call's output for the next
    transition of the state they keep, so an SVDD-PM step costs M model calls per sample.
    """

    needs_model_output = True

    def __init__(self, reward: Callable[[list[Any]], Any]):
        if not callable(reward):
            raise TypeError(f"PosteriorMean needs a callable reward; got {type(reward).__name__}")
        self.reward = reward

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

    def __call__(self, x: torch.Tensor, t: Any) -> torch.Tensor:
        """Values float64 [n] for states x [n, ...] at time t (NaN allowed)."""
        n = x.shape[0]
        step = self.max_batch or max(n, 1)
        parts = []
        with torch.no_grad():
            for start in range(0, n, step):
                chunk = x[start : start + step]
                times = torch.full((chunk.shape[0],), float(t), device=chunk.device)
                parts.append(_as_values(self.fn(chunk, times), chunk.shape[0], self.name))
        if not parts:
            return torch.empty(0, dtype=torch.float64)
        return torch.cat(parts)

    def __repr__(self) -> str:
        return f"LearnedValue({self.name})"


def _as_values(raw: Any, n: int, name: str) -> torch.Tensor:
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
