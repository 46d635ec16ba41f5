"""What the sampling methods pass around and hand back: `Scored` states and the `Outcome`.

Shared by every method module (`samplers`, `fk`, `beam` of `svdd.sampling`); `samplers` re-exports
both names.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from .. import batched


class Outcome(NamedTuple):
    """What a method hands back to `svdd.sample`.

    states: final x_0 [n, ...]; rewards: objective rewards float64 [n] when the method already
    computed them (else None); samples: decoded objects when already decoded (else None).
    n is num_samples, except for methods that return a whole population (fk with return_all).
    """

    states: torch.Tensor
    trace: list[dict[str, Any]]
    rewards: torch.Tensor | None = None
    samples: list[Any] | None = None


class Scored(NamedTuple):
    """States [n, ...] with their values float64 [n], their model outputs at the next time (or None),
    their decoded objects (clean states; else None) and, from `svdd_step`, the chosen child
    j in [0, M) of each sample, LongTensor [n] (else None)."""

    states: torch.Tensor
    values: torch.Tensor
    out: Any = None
    objects: list[Any] | None = None
    pick: torch.Tensor | None = None

    def take(self, index: torch.Tensor) -> Scored:
        """Rows `index` (LongTensor [k]) of everything."""
        return Scored(
            self.states[index.to(self.states.device)],
            self.values[index.to(self.values.device)],
            batched.take(self.out, index),
            None if self.objects is None else [self.objects[i] for i in index.tolist()],
            None if self.pick is None else self.pick[index.to(self.pick.device)],
        )

    @staticmethod
    def join(parts: list[Scored]) -> Scored:
        """Concatenate along the batch (groups of samples handled one after another)."""
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        return Scored(
            torch.cat([p.states for p in parts]),
            torch.cat([p.values for p in parts]),
            batched.cat([p.out for p in parts]),
            None if first.objects is None else [o for p in parts for o in p.objects or []],
            None if first.pick is None else torch.cat([p.pick for p in parts if p.pick is not None]),
        )


def plain_time(t: Any) -> Any:
    """A timestep as a plain Python number (for traces)."""
    return t.item() if isinstance(t, torch.Tensor) else t


def no_options(method: str, options: dict[str, Any]) -> None:
    """TypeError for options a method does not take (svdd.sample checks them earlier)."""
    if options:
        raise TypeError(
            f"unknown option(s) for method {method!r}: {', '.join(sorted(options))}; "
            f"see the docstring of svdd.sampling.samplers.{method}"
        )


def ranked(values: torch.Tensor) -> torch.Tensor:
    """A sort key float64 [n] following the reward policy: +inf > finite > -inf > NaN (-inf becomes
    the lowest finite float and NaN -inf, so an invalid value never wins, not even over -inf)."""
    key = torch.where(values == -torch.inf, torch.full_like(values, torch.finfo(torch.float64).min), values)
    return torch.where(torch.isnan(key), torch.full_like(key, -torch.inf), key)
