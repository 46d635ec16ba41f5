"""Beam search over the denoising tree with one global active set (TreeG's active set, DSearch's beam).

A active states each branch into B children per step (B = num_candidates); the children are
scored by the soft value and the best A of all A·B survive, wherever they come from, so the
budget goes to the branches whose values are highest rather than evenly to every sample
(SVDD keeps one child per sample: A = N independent beams of width 1). At the last step the
A·B clean children are scored by the reward and N are returned.
"""

from __future__ import annotations

from typing import Any

import torch

from .. import batched
from ..rng import GeneratorLike, batch_generator, rand
from .calls import Calls
from .outcome import Outcome, Scored, no_options, ranked


def beam(
    calls: Calls,
    *,
    num_samples: int,
    num_candidates: int,
    alpha: float,
    generator: GeneratorLike,
    beam_width: int | None = None,
    **options: Any,
) -> Outcome:
    """Beam search: A = `beam_width` (default N) active states, B = M children each per step, the
    best A of the A·B children survive (by value; at alpha > 0 A are drawn without replacement with
    probability ∝ exp(v/α), by Gumbel top-k), N = num_samples of the last A·B clean children returned.

    Identical children (common in masked processes, where a step may unmask nothing) count once:
    distinct states survive first, copies only fill places no distinct state is left for.
    Cost, as svdd with A samples: PM A model calls on the first step, then A·B per step (the
    survivors' outputs are reused), A·B value (PM: reward) calls per step; MC A model calls and A·B
    value calls per step, A·B reward calls on the last. Rows are coupled, so the random draws come
    from one stream (`svdd.rng.batch_generator`: the first generator of a per-sample list), and
    all A·B children are held at once (model calls are still chunked by `max_batch`).
    """
    no_options("beam", options)
    width, b = beam_width or num_samples, num_candidates
    gen = batch_generator(generator)
    x, out = calls.prior(width, gen), None
    trace: list[dict[str, Any]] = []
    active = Scored(x, torch.full((width,), torch.nan, dtype=torch.float64))
    for k, t, t_next in calls.steps(f"beam (A={width}, B={b})"):
        if out is None:
            out = calls.model(x, t)
        if k == 0 and b > 1:
            calls.refuse_deterministic(x, t, out)
        # B children of every active state, x_{t-1} ~ p_pre(. | x_t)
        children = calls.transition(batched.repeat_rows(x, b), t, batched.repeat_rows(out, b), gen)
        child_out = calls.model(children, t_next) if t_next is not None and calls.needs_model_output else None
        values, objects = calls.evaluate(children, t_next, child_out, gen)
        # the best A of all A·B children (N of the clean ones) survive, wherever their parent was
        keep = survivors(children, values, width if t_next is not None else num_samples, alpha, gen)
        active = Scored(children, values, child_out, objects).take(keep)
        x, out = active.states, active.out
        calls.record(trace, t, active.values, distinct=distinct_count(x))
    rewards = active.values if calls.clean_values_are_rewards else None
    return Outcome(active.states, trace, rewards, active.objects)


def survivors(
    states: torch.Tensor, values: torch.Tensor, count: int, alpha: float, generator: GeneratorLike
) -> torch.Tensor:
    """Indices LongTensor [count] of the states [C, ...] that survive, best first.

    Ranked by value (NaN last) at alpha 0, by value/alpha plus Gumbel noise otherwise (a draw of
    `count` without replacement, ∝ exp(v/α)); among identical states only the best-ranked one counts
    until no distinct state is left.
    """
    key = ranked(values)
    if alpha > 0:
        u = rand((values.shape[0],), generator, dtype=torch.float64).clamp(1e-300, 1.0)
        key = key / alpha - torch.log(-torch.log(u))
    order = torch.argsort(key, descending=True, stable=True)
    first = first_of_each_state(states[order.to(states.device)])
    return torch.cat([order[first], order[~first]])[:count]


def first_of_each_state(states: torch.Tensor) -> torch.Tensor:
    """Bool [C]: True where a row of states [C, ...] is the first occurrence of its state."""
    _, which = torch.unique(states.reshape(states.shape[0], -1), dim=0, return_inverse=True)
    which = which.cpu()
    positions = torch.arange(states.shape[0])
    first = torch.full((int(which.max()) + 1,), states.shape[0]).scatter_reduce(0, which, positions, "amin")
    return first[which] == positions


def distinct_count(states: torch.Tensor) -> int:
    """Number of distinct states among the rows of states [C, ...]."""
    return int(torch.unique(states.reshape(states.shape[0], -1), dim=0).shape[0])
