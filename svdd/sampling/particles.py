"""Particle populations split into independent groups (for smc and fk).

A population of P particles is cut into G groups of P/G consecutive particles. Each group is its
own sequential Monte Carlo run: its weights are normalised, its ESS measured and its particles
resampled within the group only, so groups never exchange particles (FK steering runs one group
per returned sample; `smc` runs one group of all N·M particles unless `groups` is given).
"""

from __future__ import annotations

import torch

from ..rng import GeneratorLike, select_generators
from .outcome import ranked
from .selection import effective_sample_size, resample


def group_rows(groups: int, size: int) -> list[slice]:
    """The particle rows of each of `groups` groups of `size` consecutive particles."""
    return [slice(g * size, (g + 1) * size) for g in range(groups)]


def group_generators(generator: GeneratorLike, groups: int, num_samples: int) -> list[GeneratorLike]:
    """The generator each group resamples with when the N samples are split evenly into groups.

    One torch.Generator (or None) is shared by every group, which then draw from it in turn; with
    one generator per sample, a group resamples with the generator of its first sample, so the
    group's particles depend on its own samples' generators alone.
    """
    per_group = num_samples // groups
    return [select_generators(generator, slice(g * per_group, (g + 1) * per_group)) for g in range(groups)]


def group_ess(log_w: torch.Tensor, groups: int) -> torch.Tensor:
    """Effective sample size of each group's normalised weights: log_w float64 [P] -> float64 [G]."""
    size = log_w.shape[0] // groups
    return torch.tensor([effective_sample_size(log_w[rows]) for rows in group_rows(groups, size)], dtype=torch.float64)


def resample_within(
    log_w: torch.Tensor,
    groups: int,
    scheme: str,
    generators: list[GeneratorLike],
    num: int,
    which: torch.Tensor | None = None,
) -> torch.Tensor:
    """Ancestors of a grouped population: log_w float64 [P] -> LongTensor [G·num] (indices into P).

    Group g draws `num` ancestors among its own particles by `scheme` (see
    `svdd.sampling.selection.resample`) with `generators[g]`; its ancestors fill rows g·num .. g·num+num-1.
    `which` (bool [G]) resamples only those groups; the others keep their particles in place
    (identity ancestors; then `num` must be the group size).
    """
    size = log_w.shape[0] // groups
    parts = []
    for g, rows in enumerate(group_rows(groups, size)):
        if which is not None and not bool(which[g]):
            if num != size:
                raise ValueError(f"a group kept in place must keep its {size} particles; asked for {num}")
            parts.append(torch.arange(rows.start, rows.stop))
        else:
            parts.append(resample(log_w[rows], scheme, generators[g], num=num) + rows.start)
    return torch.cat(parts)


def each_group_is_one_state(x: torch.Tensor, groups: int) -> bool:
    """True when, within every group, all particles of x [P, ...] are the same state.

    Then a deterministic value is one number per group, which the group's normalised weights cancel:
    scoring such a population (the all-mask start of a masked process) spends P value (reward)
    calls and changes nothing.
    """
    flat = x.reshape(groups, x.shape[0] // groups, -1)
    return bool((flat == flat[:, :1]).all())


def best_per_group(values: torch.Tensor, groups: int) -> torch.Tensor:
    """Index LongTensor [G] of the highest value in each group of values float64 [P] (+inf first,
    then finite, -inf, NaN last; ties go to the first particle)."""
    size = values.shape[0] // groups
    return torch.arange(groups) * size + ranked(values).view(groups, size).argmax(dim=1)
