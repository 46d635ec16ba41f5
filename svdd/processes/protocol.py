"""The denoising-process protocol: what an adapter must provide for the samplers.

Shapes: `x` is a batch-first tensor `[B, ...]` (float latents for continuous models,
`Long[B, L]` tokens for masked discrete models). `t` is one element of `timesteps`, shared by
the whole batch. `out` is whatever `model` returns (a tensor or a tuple/dict/dataclass of
batch-first tensors; see `svdd.batched`). `generator` is a `svdd.rng.GeneratorLike`: None,
one `torch.Generator`, or a list of B generators (row i draws only from `generator[i]`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch

from ..rng import GeneratorLike


@runtime_checkable
class DenoisingProcess(Protocol):
    """A pretrained diffusion model seen as a Markov chain x_T -> ... -> x_0.

    `timesteps` is the descending sequence t_1 > t_2 > ... > t_K the sampler walks.
    `transition(x, t_k, ...)` moves a state at t_k to t_{k+1}, and the state returned from
    the last timestep t_K is a clean sample x_0.
    """

    timesteps: Sequence[Any]

    def prior(self, n: int, generator: GeneratorLike = None) -> torch.Tensor:
        """n draws from the prior: x at `timesteps[0]`, shape [n, ...]."""
        ...

    def model(self, x: torch.Tensor, t: Any) -> Any:
        """One denoiser evaluation on x [B, ...] at time t -> out (batch-first).

        The expensive call: the samplers count its rows and batch it by `max_batch`.
        Must be deterministic: the same x and t give the same out.
        """
        ...

    def transition(self, x: torch.Tensor, t: Any, out: Any, generator: GeneratorLike = None) -> torch.Tensor:
        """Draw x_prev ~ p_pre(x_prev | x) at the next timestep, given `out = model(x, t)`.

        Cheap (no model call) and stochastic: children of one parent must differ, or SVDD has
        nothing to choose from. x [B, ...] -> x_prev [B, ...].
        """
        ...

    def denoised(self, x: torch.Tensor, t: Any, out: Any) -> torch.Tensor:
        """The posterior-mean style estimate x0_hat(x) from `out = model(x, t)`, shape of x."""
        ...

    def decode(self, x0: torch.Tensor) -> Sequence[Any]:
        """Clean states [B, ...] -> B objects the reward reads (images, strings, ...)."""
        ...


REQUIRED = ("timesteps", "prior", "model", "transition", "denoised", "decode")
METHODS = REQUIRED[1:]


def check_process(process: Any) -> None:
    """Raise a TypeError (ValueError for an empty schedule) naming the member when `process` lacks
    part of the protocol: a missing member, a method that is not callable, or `timesteps` that is
    not a non-empty sequence (list, tuple, range, 1-D tensor or array)."""
    name = type(process).__name__
    missing = [member for member in REQUIRED if not hasattr(process, member)]
    if missing:
        raise TypeError(
            f"{name} is not a DenoisingProcess: it lacks {', '.join(missing)} "
            f"(a process provides {', '.join(REQUIRED)}; see svdd.processes.protocol.DenoisingProcess)"
        )
    for member in METHODS:
        if not callable(getattr(process, member)):
            raise TypeError(
                f"{name}.{member} must be a method (callable); got {type(getattr(process, member)).__name__}"
            )
    timesteps = process.timesteps
    ndim = getattr(timesteps, "ndim", None)
    if (
        isinstance(timesteps, (str, bytes, dict))
        or not hasattr(timesteps, "__len__")
        or not hasattr(timesteps, "__getitem__")
        or ndim == 0
        or (ndim is not None and ndim > 1)
    ):
        shape = f" of shape {tuple(timesteps.shape)}" if hasattr(timesteps, "shape") else ""
        raise TypeError(
            f"{name}.timesteps must be a sequence of timesteps t_1 > ... > t_K (a list, tuple, range or "
            f"1-D tensor); got {type(timesteps).__name__}{shape} {_short(timesteps)}"
        )
    if len(timesteps) < 1:
        raise ValueError(f"{name}.timesteps is empty; it needs at least one step")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
