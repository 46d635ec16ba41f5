"""Searching the initial noise of a continuous process (Ma et al., "Inference-Time Scaling for
Diffusion Models beyond Scaling Denoising Steps", arXiv 2501.09732): the searches image users
compare guided samplers against.

- `random_search`: each sample is the best (by reward) of M full pretrained generations from M
  fresh initial noises. Unlike `best_of_n`, which keeps the top N of one pool of N·M, every sample
  keeps the best of its own M, so the N results stay N independent searches.
- `zero_order`: each sample starts from a pivot noise and a generation from it; every iteration
  draws M neighbours of the pivot within `radius`, generates from each, and moves the pivot to the
  best neighbour when that one beats the best reward so far.

A neighbour of x_T is (x_T + radius·z)/sqrt(1 + radius²) with z a fresh prior draw, so it has the
prior's distribution for any zero-mean Gaussian prior (randn·init_noise_sigma). The chain after
x_T is the process's own: deterministic for an ODE sampler (then x_T alone fixes the sample, as in
the paper), fresh noise at every step for a stochastic one.

Cost with N samples, M candidates, K steps: random_search N·M·K model calls and N·M reward calls;
zero_order (1 + iterations·M)·N·K model calls and (1 + iterations·M)·N reward calls.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..rng import GeneratorLike, repeat_generators
from .calls import Calls
from .outcome import Outcome, no_options, plain_time, ranked


def random_search(
    calls: Calls, *, num_samples: int, num_candidates: int, alpha: float, generator: GeneratorLike, **options: Any
) -> Outcome:
    """Each of the N samples is the best of M pretrained generations from fresh initial noises."""
    no_options("random_search", options)
    n, m = num_samples, num_candidates
    gens = repeat_generators(generator, m)
    x0, trace = _generate(calls, _noise(calls, n * m, gens), gens, f"random_search (N*M={n * m})")
    rewards, objects = calls.score_clean(x0)
    best = _best_of_groups(rewards, m)
    return Outcome(x0[best], trace, rewards[best], [objects[i] for i in best.tolist()])


def zero_order(
    calls: Calls,
    *,
    num_samples: int,
    num_candidates: int,
    alpha: float,
    generator: GeneratorLike,
    iterations: int = 3,
    radius: float = 0.5,
    **options: Any,
) -> Outcome:
    """Zero-order search around a pivot noise per sample: `iterations` rounds of M neighbours within
    `radius` (see the module), the pivot moving to the best neighbour when it beats the best so far."""
    no_options("zero_order", options)
    n, m = num_samples, num_candidates
    pivot = _noise(calls, n, generator)
    best_x0, trace = _generate(calls, pivot, generator, "zero_order (pivots)")
    best_r, best_obj = calls.score_clean(best_x0)
    gens = repeat_generators(generator, m)
    for it in range(iterations):
        z = _noise(calls, n * m, gens)
        neighbours = (pivot.repeat_interleave(m, dim=0) + radius * z) / math.sqrt(1.0 + radius * radius)
        x0, _ = _generate(calls, neighbours, gens, f"zero_order (round {it + 1}/{iterations})")
        rewards, objects = calls.score_clean(x0)
        pick = _best_of_groups(rewards, m)
        better = ranked(rewards[pick]) > ranked(best_r)
        rows = better.nonzero().flatten()
        pivot[rows] = neighbours[pick[rows]]
        best_x0[rows] = x0[pick[rows]]
        best_r[rows] = rewards[pick[rows]]
        for i in rows.tolist():
            best_obj[i] = objects[int(pick[i])]
        trace.append({"t": 0, "round": it + 1, "moved": int(better.sum()), "best_median": float(best_r.median())})
    return Outcome(best_x0, trace, best_r, best_obj)


def _noise(calls: Calls, rows: int, generator: GeneratorLike) -> torch.Tensor:
    """`rows` prior draws, refused unless the prior is continuous noise."""
    x = calls.prior(rows, generator)
    if not x.is_floating_point():
        raise TypeError(
            "noise search perturbs the initial noise of a continuous process; this process's prior is "
            f"{x.dtype} tokens (use best_of_n or svdd for discrete processes)"
        )
    return x


def _generate(
    calls: Calls, x: torch.Tensor, generator: GeneratorLike, desc: str
) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """The pretrained chain from x_T [R, ...] -> x_0 [R, ...] (row i's noise from generator[i])."""
    trace: list[dict[str, Any]] = []
    for _, t, _ in calls.steps(desc):
        x = calls.transition(x, t, calls.model(x, t), generator)
        trace.append({"t": plain_time(t)})
    return x, trace


def _best_of_groups(values: torch.Tensor, m: int) -> torch.Tensor:
    """Index Long[n] of the best value in each group of m consecutive rows (NaN ranks last)."""
    key = ranked(values).view(-1, m)
    return torch.arange(key.shape[0], device=key.device) * m + key.argmax(dim=1).to(key.device)
