"""The sampling methods, one function each with one signature.

    method(calls, *, num_samples, num_candidates, alpha, generator, **options) -> Outcome

`calls` (svdd.sampling.calls.Calls) holds the process, the reward, the value estimate and the counters;
the methods make every model, transition, value and reward call through it.
With N = num_samples, M = num_candidates and K denoising steps, the cost per step (model calls
count item-level denoiser rows; reward calls are objects handed to the reward, before any
de-duplication; PM = `PosteriorMean(reward)`, whose value is one reward call per state scored
(S with `num_x0_samples=S`), MC = `LearnedValue`, whose value calls make no reward calls):

| method     | model calls per step            | reward calls per step (PM)       | what it does                    |
|------------|---------------------------------|----------------------------------|---------------------------------|
| pretrained | N                               | N once, on the final samples     | ancestral sampling              |
| best_of_n  | N·M                             | N·M once, on the final pool      | N·M samples, keep the top N     |
| svdd       | PM N·M (N at the first); MC N   | N·M (MC: N·M at the last only)   | M children each, keep one       |
| svdd_r     | as svdd                         | as svdd                          | + resample the worst fraction   |
| smc        | N·M (P = N·M particles)         | N·M (+ N·M at the start [1])     | weights exp(Δv/α), resampling   |
| fk         | N·M (N groups of M)             | S·N·M per scored step [2]        | FK potentials, best per group   |
| beam       | PM A·B (A at the first); MC A   | A·B (MC: A·B at the last only)   | best A of A·B children survive  |
| refine     | svdd's, then per iteration [3]  | svdd's, then K'·N·M per iteration | re-noise, svdd again, keep gains |
| dps        | N (with gradients)              | none (value calls: N)            | gradient of r through x0_hat    |
| random_search | N·M                          | N·M once, on the final pool      | best of M noises per sample     |
| zero_order | (1 + I·M)·N over I rounds [4]   | (1 + I·M)·N                      | search around a pivot noise     |

[1] smc scores its start states only when they can differ (not the all-mask start: every group
    starting from one state has one value, which its normalised weights cancel).
[2] fk scores at its scored steps (every step by default; `resample_every`, `resample_window`), S
    draws per particle with `num_x0_samples=S`, the all-mask start never; plus N·M on the clean
    particles at the end.
[3] refine: the first pass as svdd (or N reward calls on `initial` states), then per iteration
    N + (K'-1)·N·M model calls, K' being the steps left after re-noising.
[4] zero_order and random_search (`svdd.sampling.search`) search the initial noise of a continuous
    process: full generations, so their model calls are per generation, not per step; I = iterations.
beam: A = beam_width (default N), B = num_candidates, so with A = N it costs exactly svdd's budget.

Value calls (states scored) equal the PM reward calls with S = 1, less the clean candidates of
the last step. Options that add cost: svdd/svdd_r `select_start=True` draws M start states per
sample (PM: N·M model calls at the first step instead of N, N·M value calls); `select_steps` makes
the unselected steps cost N model calls and no value calls.

`svdd_step` is one SVDD selection step; `svdd` and `svdd.diffusers.SVDDScheduler` both run it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import torch

from .. import batched
from ..rewards import is_differentiable, reward_name
from ..rng import GeneratorLike, repeat_generators, select_generators
from .beam import beam
from .calls import Calls
from .fk import fk
from .outcome import Outcome, Scored, no_options, plain_time, ranked
from .particles import each_group_is_one_state, group_ess, group_generators, resample_within
from .search import random_search, zero_order
from .selection import RESAMPLING_METHODS, accumulate_log_weights, log_weight_increment, resample, tilted_log_weights

__all__ = [
    "METHODS",
    "Outcome",
    "Scored",
    "beam",
    "best_of_n",
    "candidate_groups",
    "dps",
    "fk",
    "pretrained",
    "random_search",
    "refine",
    "selection_steps",
    "smc",
    "svdd",
    "svdd_r",
    "svdd_step",
    "zero_order",
]


# -- SVDD ------------------------------------------------------------------------------------------


def svdd_step(
    calls: Calls, x: torch.Tensor, t: Any, t_next: Any, out: Any, m: int, alpha: float, generator: GeneratorLike
) -> Scored:
    """One SVDD selection step for g samples x [g, ...] at time t, with their model outputs `out`.

    Draws M children per sample from the pretrained transition (one call on the g·M repeated rows;
    child j of sample i draws from sample i's generator), scores them at t_next by the soft value
    (clean children, t_next None, by the reward), keeps one per sample (argmax at alpha 0, else a
    draw from softmax(v / alpha)) and returns the winners [g, ...] with their values, model
    outputs at t_next (PM with M > 1: reused for the next transition; else None), decoded objects
    (last step) and `pick`, the winning child j of each sample.
    `calls` is a `svdd.sampling.calls.Calls` (the scheduler passes its own subclass).
    """
    g = x.shape[0]
    gens = repeat_generators(generator, m)
    # M children per sample, x_{t-1} ~ p_pre(. | x_t): rows i·M .. i·M+M-1 are sample i's
    children = calls.transition(batched.repeat_rows(x, m), t, batched.repeat_rows(out, m), gens)
    if m == 1 and t_next is not None:  # one child: nothing to choose from, no model or value calls
        return Scored(children, torch.full((g,), torch.nan, dtype=torch.float64), pick=torch.zeros(g, dtype=torch.long))
    # PM: the model on every child (its output serves the winner's next transition); soft values
    # v(x_{t-1}); at the last step the reward of the clean children (decoded objects too)
    child_out, values, objects = calls.model_and_evaluate(children, t_next, gens)
    # one child per sample: argmax at alpha = 0, else a draw from softmax(v / alpha)
    choice = calls.select(values.view(g, m), alpha, generator)
    winners = torch.arange(g, device=children.device) * m + choice.index.to(children.device)
    return Scored(children, values, child_out, objects).take(winners)._replace(pick=choice.index)


def svdd(
    calls: Calls,
    *,
    num_samples: int,
    num_candidates: int,
    alpha: float,
    generator: GeneratorLike,
    resample_fraction: float = 0.0,
    select_steps: Any = None,
    select_start: bool = False,
    **options: Any,
) -> Outcome:
    """SVDD (Algorithm 1 of Li et al., 2024): at each step draw M children per sample from the
    pretrained model, score them by the soft value, keep one (softmax(v/α); argmax at α = 0).

    PM scores the children with one batched model call on all N·M of them and keeps the winner's
    output for its next transition; MC scores them with the learned value and makes one model
    call per kept sample. Clean children (last step) are scored by the reward.
    With `max_batch` set, the children are made, scored and selected for groups of
    max(1, max_batch // M) samples at a time, so at most about max_batch candidates are held at
    once whatever M is (see `candidate_groups`).
    `resample_fraction` > 0 turns this into SVDD-R (see `svdd_r`).
    `select_steps` (see `selection_steps`) restricts selection to some steps, with plain
    pretrained transitions (N model calls, no value calls) in between: a sparse schedule for
    expensive values such as docking.
    `select_start=True` also selects over the start state, for processes whose prior is random
    per sample (`MaskedDiffusion.from_seed(seed, mask_fraction=f)`, continuous noise): M start
    states per sample are scored at the first timestep by the value and one is kept per sample
    (its model output serves the first transition). Extra cost: PM N·M model calls at the first
    step instead of N, and N·M value calls; MC N·M value calls. A prior that gives one state for
    every draw (the all-mask start) is refused: there would be nothing to choose.
    """
    no_options("svdd", options)
    n, m = num_samples, num_candidates
    if select_start:
        x, out = _selected_start(calls, n, m, alpha, generator)
    else:
        x, out = calls.prior(n, generator), None
    return _svdd_from(calls, x, out, m, alpha, generator, resample_fraction, select_steps)


def _svdd_from(
    calls: Calls,
    x: torch.Tensor,
    out: Any,
    m: int,
    alpha: float,
    generator: GeneratorLike,
    resample_fraction: float = 0.0,
    select_steps: Any = None,
) -> Outcome:
    """SVDD's loop over `calls.timesteps` from states x [N, ...] at the first of them (`out`: their
    model output, or None to make it)."""
    n = x.shape[0]
    selecting = selection_steps(select_steps, len(calls.timesteps))
    trace: list[dict[str, Any]] = []
    rewards = samples = None
    for k, t, t_next in calls.steps(f"{'svdd_r' if resample_fraction else 'svdd'} (M={m})"):
        if out is None:
            out = calls.model(x, t)
        if k == 0 and m > 1:
            calls.refuse_deterministic(x, t, out)
        if k not in selecting:  # a plain pretrained step
            x, out = calls.transition(x, t, out, generator), None
            trace.append({"t": plain_time(t), "selected": False})
            continue
        kept = Scored.join(
            [
                svdd_step(calls, x[rows], t, t_next, batched.take(out, rows), m, alpha, gens)
                for rows, gens in _groups(calls, n, m, generator)
            ]
        )
        extra: dict[str, Any] = {"selected": True}
        if resample_fraction:
            kept, extra["resampled"] = _resample_worst(kept, resample_fraction, alpha, generator)
        x, out = kept.states, kept.out
        if t_next is None:
            samples, rewards = kept.objects, (kept.values if calls.clean_values_are_rewards else None)
        calls.record(trace, t, kept.values, **extra)
    return Outcome(x, trace, rewards, samples)


def _selected_start(calls: Calls, n: int, m: int, alpha: float, generator: GeneratorLike) -> tuple[torch.Tensor, Any]:
    """M prior draws per sample scored at the first timestep, one kept per sample (argmax at α = 0,
    else softmax(v/α)): (states [N, ...], their model outputs or None)."""
    t0 = calls.timesteps[0]
    kept = []
    for rows, gens in _groups(calls, n, m, generator):
        g, draws = rows.stop - rows.start, repeat_generators(gens, m)  # sample i's M draws from generator i
        starts = calls.prior(g * m, draws)
        if m > 1 and each_group_is_one_state(starts, g):
            raise ValueError(
                "select_start needs a random start state, but this process's prior gives the same state for "
                "every draw (e.g. the all-mask start of a masked process): there is nothing to choose. Use "
                "a process with a random start (MaskedDiffusion.from_seed(seed, mask_fraction=f)) or drop select_start"
            )
        out = calls.model(starts, t0) if calls.needs_model_output else None
        values = calls.values(starts, t0, out, draws)
        choice = calls.select(values.view(g, m), alpha, gens)
        kept.append(Scored(starts, values, out).take(torch.arange(g) * m + choice.index.cpu()))
    start = Scored.join(kept)
    return start.states, start.out


def svdd_r(
    calls: Calls,
    *,
    num_samples: int,
    num_candidates: int,
    alpha: float,
    generator: GeneratorLike,
    resample_fraction: float = 0.05,
    select_steps: Any = None,
    select_start: bool = False,
    **options: Any,
) -> Outcome:
    """SVDD-R: SVDD, then after every step the worst `resample_fraction` of the batch (by value)
    is replaced by copies of samples drawn with probability ∝ exp(v/α) (the best one at α = 0).

    The paper picks the fraction from {0.03, 0.04, 0.05}. Costs no extra model calls.
    `select_steps` and `select_start` as in `svdd`.
    """
    if not 0.0 < resample_fraction < 1.0:
        raise ValueError(f"resample_fraction must be in (0, 1); got {resample_fraction!r}")
    return svdd(
        calls,
        num_samples=num_samples,
        num_candidates=num_candidates,
        alpha=alpha,
        generator=generator,
        resample_fraction=resample_fraction,
        select_steps=select_steps,
        select_start=select_start,
        **options,
    )


def selection_steps(select_steps: Any, num_steps: int) -> set[int]:
    """The step indices k (0 = the first step) at which SVDD selects.

    None: every step. An int e >= 1: every e-th step counted back from the last, so the last
    step (clean candidates, scored by the reward) is always one. A collection of ints: those.
    """
    if select_steps is None:
        return set(range(num_steps))
    if isinstance(select_steps, int) and not isinstance(select_steps, bool):
        if select_steps < 1:
            raise ValueError(f"select_steps as an int is a period and must be >= 1; got {select_steps}")
        return {k for k in range(num_steps) if (num_steps - 1 - k) % select_steps == 0}
    try:
        chosen = {int(k) for k in select_steps}
    except (TypeError, ValueError):
        raise TypeError(
            f"select_steps must be None, a period (int) or a collection of step indices; got {select_steps!r}"
        ) from None
    outside = sorted(k for k in chosen if not 0 <= k < num_steps)
    if outside:
        raise ValueError(f"select_steps {outside} are outside the {num_steps} steps (indices 0..{num_steps - 1})")
    return chosen


def candidate_groups(n: int, m: int, max_batch: int | None) -> list[slice]:
    """The row ranges of the sample groups whose N·M candidates are handled together.

    One group of all N samples without `max_batch`; otherwise groups of max(1, max_batch // M)
    samples, so a group holds at most max(M, max_batch) candidates. With one torch.Generator the
    groups draw from its stream one after another, so a different `max_batch` gives different
    (equally distributed) samples; with one generator per sample the samples do not depend on it.
    """
    size = n if max_batch is None else max(1, max_batch // m)
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


def _groups(calls: Calls, n: int, m: int, generator: GeneratorLike) -> Iterator[tuple[slice, GeneratorLike]]:
    """(rows, their generators) of each group in `candidate_groups` under `calls.max_batch`."""
    for rows in candidate_groups(n, m, calls.max_batch):
        yield rows, select_generators(generator, rows)


def _resample_worst(kept: Scored, fraction: float, alpha: float, generator: GeneratorLike) -> tuple[Scored, int]:
    """SVDD-R's resampling: the floor(fraction·N) lowest-value samples (NaN lowest, then -inf) are
    replaced by copies of samples drawn by tilted weights exp(v/α). Returns the new batch and how many moved."""
    values = kept.values
    n = values.shape[0]
    ancestors = torch.arange(n)
    count = int(fraction * n)
    if count:
        worst = _ranking(values, best_first=False)[:count]
        ancestors[worst] = resample(tilted_log_weights(values, alpha), "multinomial", generator, num=count)
    return kept.take(ancestors), int((ancestors != torch.arange(n)).sum())


# -- baselines -------------------------------------------------------------------------------------


def pretrained(
    calls: Calls, *, num_samples: int, num_candidates: int, alpha: float, generator: GeneratorLike, **options: Any
) -> Outcome:
    """Plain ancestral sampling from the pretrained model (num_candidates and alpha unused)."""
    no_options("pretrained", options)
    states, trace = _ancestral(calls, num_samples, generator, "pretrained")
    return Outcome(states, trace)


def _ancestral(calls: Calls, rows: int, generator: GeneratorLike, desc: str) -> tuple[torch.Tensor, list]:
    x = calls.prior(rows, generator)
    trace: list[dict[str, Any]] = []
    for _, t, _ in calls.steps(desc):
        x = calls.transition(x, t, calls.model(x, t), generator)
        trace.append({"t": plain_time(t)})
    return x, trace


def best_of_n(
    calls: Calls, *, num_samples: int, num_candidates: int, alpha: float, generator: GeneratorLike, **options: Any
) -> Outcome:
    """Draw N·M pretrained samples and keep the N with the highest reward (NaN ranks last).

    With a per-sample generator list, sample i's M draws all come from generator[i]. With
    `max_batch`, the pool is drawn for groups of samples in turn (`candidate_groups`) and only
    the best N so far are kept, so memory does not grow with M.
    """
    no_options("best_of_n", options)
    n, m = num_samples, num_candidates
    best: list[Scored] = []
    trace: list[dict[str, Any]] = []
    for rows, gens in _groups(calls, n, m, generator):
        states, trace = _ancestral(
            calls, (rows.stop - rows.start) * m, repeat_generators(gens, m), f"best_of_n (N*M={n * m})"
        )
        rewards, objects = calls.score_clean(states)
        best = [_top(Scored.join([*best, Scored(states, rewards, None, objects)]), n)]
    return Outcome(best[0].states, trace, best[0].values, best[0].objects)


def _top(pool: Scored, n: int) -> Scored:
    """The n highest values of the pool (+inf first, NaN last, after -inf; ties keep the earlier
    draw), in pool order."""
    return pool.take(torch.sort(_ranking(pool.values)[:n]).values)


def _ranking(values: torch.Tensor, best_first: bool = True) -> torch.Tensor:
    """Indices of values [n] from best to worst (+inf, finite descending, -inf, then NaN), or from
    worst to best; ties in index order either way."""
    return torch.argsort(ranked(values), descending=best_first, stable=True)


def smc(
    calls: Calls,
    *,
    num_samples: int,
    num_candidates: int,
    alpha: float,
    generator: GeneratorLike,
    resampling: str = "multinomial",
    ess_threshold: float | None = None,
    groups: int = 1,
    **options: Any,
) -> Outcome:
    """Sequential Monte Carlo with the pretrained model as proposal (TDS/FK style, no twist gradient).

    Runs P = N·M particles (so its model budget matches SVDD's), one proposal each per step.
    Log weights accumulate (v_{t-1} - v_t)/α; the particles are resampled (`resampling` in
    multinomial | systematic | stratified | residual) at every step, or only when the ESS falls
    below `ess_threshold`·(group size), the weights being carried over otherwise. The last step
    scores clean particles by the reward and resamples N of them, so the output is an unweighted
    sample.

    `groups` = G (a divisor of N) splits the particles into G independent populations of N·M/G,
    each resampled within itself and returning N/G samples (G = N: FK steering's N groups of M,
    one sample each). The default G = 1, one population, has the smaller bias (O(1/(N·M)) rather
    than O(G/(N·M))) and keeps earlier results; more groups keep more diverse samples, since one
    population can collapse onto a few lineages. Group g is particles g·(N·M/G) onwards; with one
    generator per sample, a group resamples with its first sample's generator.

    The start states are scored only when they can differ: if every group's particles start from
    one state (the all-mask prior of a masked process), that state's value would be one number
    per group, which the normalised weights cancel, so no value (reward) calls are made for it.
    """
    _check_smc_options(options, alpha, resampling, ess_threshold)
    n, p = num_samples, num_samples * num_candidates
    size = p // groups
    gens = repeat_generators(generator, num_candidates)  # particle i·M + j draws from generator i
    group_gens = group_generators(generator, groups, n)
    t0 = calls.timesteps[0]
    x = calls.prior(p, gens)
    out = calls.model(x, t0)
    calls.refuse_deterministic(x, t0, out)
    particles = Scored(x, _start_values(calls, x, t0, out, gens, groups), out)
    log_w = torch.zeros(p, dtype=torch.float64)
    trace: list[dict[str, Any]] = []
    for _, t, t_next in calls.steps(f"smc (P={p})"):
        x = calls.transition(particles.states, t, particles.out, gens)
        out = calls.model(x, t_next) if t_next is not None else None
        values, objects = calls.evaluate(x, t_next, out, gens)  # the reward of clean particles
        proposed = Scored(x, values, out, objects)
        log_w = accumulate_log_weights(log_w, log_weight_increment(particles.values, proposed.values, alpha, groups))
        particles, ess = proposed, group_ess(log_w, groups)
        last = t_next is None
        due = torch.ones(groups, dtype=torch.bool) if last or ess_threshold is None else ess < ess_threshold * size
        if due.any():
            ancestors = resample_within(
                log_w, groups, resampling, group_gens, num=n // groups if last else size, which=None if last else due
            )
            particles = particles.take(ancestors)
            log_w = torch.where(
                due.repeat_interleave(ancestors.shape[0] // groups),
                torch.zeros(ancestors.shape[0], dtype=torch.float64),
                log_w[ancestors],
            )
        extra = {"resampled_groups": int(due.sum())} if groups > 1 else {}
        calls.record(trace, t, particles.values, ess=float(ess.mean()), resampled=bool(due.any()), **extra)
    rewards = particles.values if calls.clean_values_are_rewards else None
    return Outcome(particles.states, trace, rewards, particles.objects)


def _start_values(calls: Calls, x: torch.Tensor, t: Any, out: Any, gens: GeneratorLike, groups: int) -> torch.Tensor:
    """Values float64 [P] of the start particles x [P, ...]; zeros, without scoring, when every
    group starts from one state (its value would be a constant the group's weights cancel)."""
    if each_group_is_one_state(x, groups):
        return torch.zeros(x.shape[0], dtype=torch.float64)
    return calls.evaluate(x, t, out, gens)[0]


def _check_smc_options(options: dict[str, Any], alpha: float, resampling: str, ess_threshold: float | None) -> None:
    no_options("smc", options)
    if alpha <= 0:
        raise ValueError("smc needs alpha > 0: its weights are exp((v_{t-1} - v_t)/alpha)")
    if resampling not in RESAMPLING_METHODS:
        raise ValueError(f"resampling must be one of {', '.join(RESAMPLING_METHODS)}; got {resampling!r}")
    if ess_threshold is not None and not 0.0 < ess_threshold <= 1.0:
        raise ValueError(f"ess_threshold must be in (0, 1] or None; got {ess_threshold!r}")


# -- iterative refinement --------------------------------------------------------------------------


def refine(
    calls: Calls,
    *,
    num_samples: int,
    num_candidates: int,
    alpha: float,
    generator: GeneratorLike,
    iterations: int = 2,
    renoise: float = 0.25,
    initial: torch.Tensor | None = None,
    select_steps: Any = None,
    **options: Any,
) -> Outcome:
    """Iterative refinement (RERD, Uehara et al., ICML 2025, without its resampling): an SVDD pass,
    then `iterations` times: re-noise every sample part-way back (`renoise`, the noise level as a
    fraction of the chain, rounded by the process to one of its timesteps: a masked process re-masks
    that fraction of the positions, a continuous one forward-noises to that timestep), denoise it
    again with SVDD over the K' steps left, and keep the new sample only where its reward is higher
    (a NaN reward is never higher; any valid reward beats a NaN). No sample is ever worse than the
    one it started the iteration with.

    `initial`: clean states [N, ...] to refine instead of the first SVDD pass (e.g. N copies of a
    user's seed; scored once, N reward calls). A process made by `MaskedDiffusion.from_seed` starts
    the first pass from its seed; made with `positions=...` it re-masks only those positions, so the
    samples never leave them; made with `mask_fraction` any position may be re-masked, so each
    iteration may move a sample further from the seed.
    Needs a process with `renoise(x0, level, generator) -> (x_t, timesteps)` (MaskedDiffusion,
    DiffusersProcess, the toys). Cost: the first pass as svdd, then per iteration N + (K'-1)·N·M model
    calls and K'·N·M reward calls with PM. `select_steps` (as svdd's, indices of the whole chain of K
    steps; a period counts back from the last step) makes every pass select only at those steps: a
    pass over the last K' steps selects at those among them, so with `select_steps=[K - 1]` each pass
    costs N·M reward calls. The trace holds every pass's steps, each with `pass`
    (0: the first) and the last step of a refinement pass with `improved` (samples replaced).
    """
    no_options("refine", options)
    n, m = num_samples, num_candidates
    trace: list[dict[str, Any]] = []
    if initial is None:
        first = _svdd_from(calls, calls.prior(n, generator), None, m, alpha, generator, select_steps=select_steps)
        best = _finished(calls, first, trace, 0)
    else:
        rewards, objects = calls.score_clean(initial)
        best = Scored(initial, rewards, None, objects)
    for i in range(1, iterations + 1):
        x_t, timesteps = calls.renoise(best.states, renoise, generator)
        if len(timesteps) < 2 and x_t.is_floating_point():
            raise ValueError(
                f"refine with renoise={renoise} goes back only to the last of the {len(calls.timesteps)} steps, "
                "whose step to the clean sample draws no noise: use a larger renoise or more steps"
            )
        offset = len(calls.timesteps) - len(timesteps)  # the pass walks steps offset..K-1 of the chain
        selecting = [k - offset for k in sorted(selection_steps(select_steps, len(calls.timesteps))) if k >= offset]
        passed = _svdd_from(_resumed(calls, timesteps), x_t, None, m, alpha, generator, select_steps=selecting)
        again = _finished(calls, passed, trace, i)
        better = _improves(again.values, best.values)
        best = Scored.join([best, again]).take(torch.arange(n) + n * better.long())
        trace[-1]["improved"] = int(better.sum())
    return Outcome(best.states, trace, best.values, best.objects)


def _finished(calls: Calls, outcome: Outcome, trace: list[dict[str, Any]], number: int) -> Scored:
    """A pass's samples with their objective rewards (computed when the pass did not), its steps
    appended to `trace` with `pass` = number."""
    trace.extend({**entry, "pass": number} for entry in outcome.trace)
    samples = outcome.samples if outcome.samples is not None else calls.decode(outcome.states)
    rewards = outcome.rewards if outcome.rewards is not None else calls.score(calls.reward, samples)
    return Scored(outcome.states, rewards, None, list(samples))


def _improves(new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """Bool [N]: the new reward is higher, or valid where the old one was NaN."""
    return (new > old) | (torch.isnan(old) & ~torch.isnan(new))


class Resumed:
    """A process seen from part-way along its chain: `timesteps` is a suffix of its own, every other
    member is the process's."""

    def __init__(self, process: Any, timesteps: list[Any]):
        self.process = process
        self.timesteps = list(timesteps)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.process, name)

    def __repr__(self) -> str:
        return f"Resumed({self.process!r}, from t={self.timesteps[0]!r})"


def _resumed(calls: Calls, timesteps: list[Any]) -> Calls:
    """A copy of `calls` (sharing its counters) that walks `timesteps` of the same process."""
    resumed = copy.copy(calls)
    resumed.process = Resumed(calls.process, timesteps)
    return resumed


def dps(
    calls: Calls,
    *,
    num_samples: int,
    num_candidates: int,
    alpha: float,
    generator: GeneratorLike,
    guidance_scale: float = 1.0,
    **options: Any,
) -> Outcome:
    """Diffusion posterior sampling: x_prev = transition(x) + guidance_scale · ∇_x r(x0_hat(x)).

    Needs a continuous process and a differentiable torch reward (`svdd.rewards.TorchReward`),
    whose `tensor(x0_hat)` is differentiated through the model. One model call per sample and step.
    """
    no_options("dps", options)
    if not is_differentiable(calls.reward) or not hasattr(calls.reward, "tensor"):
        raise TypeError(
            f"dps needs a differentiable reward with a tensor(x0) method, such as "
            f"svdd.rewards.TorchReward(fn); {reward_name(calls.reward)!r} is a black box. "
            "Use method='svdd' for black-box rewards."
        )
    x = calls.prior(num_samples, generator)
    if not x.is_floating_point():
        raise TypeError(
            "dps needs a continuous process (floating-point states); this one has "
            f"{x.dtype} states. Use method='svdd' for discrete processes."
        )
    trace: list[dict[str, Any]] = []
    for _, t, _ in calls.steps("dps"):
        out, grad, guided = _reward_gradient(calls, x, t)
        x = calls.transition(x.detach(), t, out, generator) + guidance_scale * grad
        calls.record(trace, t, guided)
    return Outcome(x.detach(), trace)


def _reward_gradient(calls: Calls, x: torch.Tensor, t: Any) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """Model output at x [N, ...], ∇_x r(x0_hat(x)) [N, ...] (non-finite entries zeroed) and
    r(x0_hat(x)) float64 [N], in chunks of `calls.model_chunk` rows."""
    step = calls.model_chunk or x.shape[0]
    outs, grads, guided = [], [], []
    for start in range(0, x.shape[0], step):
        chunk = x[start : start + step].detach().requires_grad_(True)
        with torch.enable_grad():
            out = calls.model(chunk, t)
            r = calls.reward_tensor(calls.denoised(chunk, t, out))
            (grad,) = torch.autograd.grad(r.sum(), chunk)
        outs.append(batched.map_tensors(torch.Tensor.detach, out))
        grads.append(torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0))
        guided.append(r.detach().to("cpu", torch.float64))
    return batched.cat(outs), torch.cat(grads), torch.cat(guided)


METHODS = {
    "pretrained": pretrained,
    "best_of_n": best_of_n,
    "svdd": svdd,
    "svdd_r": svdd_r,
    "smc": smc,
    "dps": dps,
    "fk": fk,
    "beam": beam,
    "refine": refine,
    "random_search": random_search,
    "zero_order": zero_order,
}
