"""The sampling methods, one function each with one signature.

    method(calls, *, num_samples, num_candidates, alpha, generator, **options) -> Outcome

`calls` (svdd.calls.Calls) holds the process, the reward, the value estimate and the counters;
the methods make every model, transition, value and reward call through it.
With N = num_samples and M = num_candidates, per denoising step (K steps in all):

| method     | model calls (rows) per step             | what it does                                   |
|------------|-----------------------------------------|------------------------------------------------|
| pretrained | N                                       | ancestral sampling                             |
| best_of_n  | N·M                                     | N·M ancestral samples, keep the top N by reward|
| svdd       | N·M with PM (N on the first step), N+value with MC | M children per sample, keep one by value |
| svdd_r     | as svdd                                 | svdd + global resampling of a fraction by tilted weights |
| smc        | N·M particles, one proposal each        | weights exp((v_{t-1} - v_t)/α), resampling, N returned |
| dps        | N (with gradients)                      | gradient of a differentiable reward through x0_hat |

`svdd_step` is one SVDD selection step; `svdd` and `svdd.diffusers.SVDDScheduler` both run it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import torch

from . import batched
from .calls import Calls
from .rewards import is_differentiable, reward_name
from .rng import GeneratorLike, repeat_generators, select_generators
from .selection import RESAMPLING_METHODS, effective_sample_size, resample, tilted_log_weights


class Outcome(NamedTuple):
    """What a method hands back to `svdd.sample`.

    states: final x_0 [N, ...]; rewards: objective rewards float64 [N] when the method already
    computed them (else None); samples: decoded objects when already decoded (else None).
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
        return Scored(self.states[index.to(self.states.device)], self.values[index.to(self.values.device)],
                      batched.take(self.out, index),
                      None if self.objects is None else [self.objects[i] for i in index.tolist()],
                      None if self.pick is None else self.pick[index.to(self.pick.device)])

    @staticmethod
    def join(parts: list[Scored]) -> Scored:
        """Concatenate along the batch (groups of samples handled one after another)."""
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        return Scored(torch.cat([p.states for p in parts]), torch.cat([p.values for p in parts]),
                      batched.cat([p.out for p in parts]),
                      None if first.objects is None else [o for p in parts for o in p.objects or []],
                      None if first.pick is None else torch.cat([p.pick for p in parts if p.pick is not None]))


# -- SVDD ------------------------------------------------------------------------------------------


def svdd_step(calls: Calls, x: torch.Tensor, t: Any, t_next: Any, out: Any, m: int, alpha: float,
              generator: GeneratorLike) -> Scored:
    """One SVDD selection step for g samples x [g, ...] at time t, with their model outputs `out`.

    Draws M children per sample from the pretrained transition (one call on the g·M repeated rows;
    child j of sample i draws from sample i's generator), scores them at t_next by the soft value
    (clean children, t_next None, by the reward), keeps one per sample (argmax at alpha 0, else a
    draw from softmax(v / alpha)) and returns the winners [g, ...] with their values, model
    outputs at t_next (PM with M > 1: reused for the next transition; else None), decoded objects
    (last step) and `pick`, the winning child j of each sample.
    `calls` is a `svdd.calls.Calls` (the scheduler passes its own subclass).
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


def svdd(calls: Calls, *, num_samples: int, num_candidates: int, alpha: float,
         generator: GeneratorLike, resample_fraction: float = 0.0, select_steps: Any = None,
         **options: Any) -> Outcome:
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
    """
    _no_options("svdd", options)
    n, m = num_samples, num_candidates
    selecting = selection_steps(select_steps, len(calls.timesteps))
    x, out = calls.prior(n, generator), None
    trace: list[dict[str, Any]] = []
    rewards = samples = None
    for k, t, t_next in calls.steps(f"{'svdd_r' if resample_fraction else 'svdd'} (M={m})"):
        if out is None:
            out = calls.model(x, t)
        if k == 0 and m > 1:
            calls.refuse_deterministic(x, t, out)
        if k not in selecting:  # a plain pretrained step
            x, out = calls.transition(x, t, out, generator), None
            trace.append({"t": _time(t), "selected": False})
            continue
        kept = Scored.join([svdd_step(calls, x[rows], t, t_next, batched.take(out, rows), m, alpha, gens)
                            for rows, gens in _groups(calls, n, m, generator)])
        extra: dict[str, Any] = {"selected": True}
        if resample_fraction:
            kept, extra["resampled"] = _resample_worst(kept, resample_fraction, alpha, generator)
        x, out = kept.states, kept.out
        if t_next is None:
            samples, rewards = kept.objects, (kept.values if calls.clean_values_are_rewards else None)
        calls.record(trace, t, kept.values, **extra)
    return Outcome(x, trace, rewards, samples)


def svdd_r(calls: Calls, *, num_samples: int, num_candidates: int, alpha: float,
           generator: GeneratorLike, resample_fraction: float = 0.05, **options: Any) -> Outcome:
    """SVDD-R: SVDD, then after every step the worst `resample_fraction` of the batch (by value)
    is replaced by copies of samples drawn with probability ∝ exp(v/α) (the best one at α = 0).

    The paper picks the fraction from {0.03, 0.04, 0.05}. Costs no extra model calls.
    """
    if not 0.0 < resample_fraction < 1.0:
        raise ValueError(f"resample_fraction must be in (0, 1); got {resample_fraction!r}")
    return svdd(calls, num_samples=num_samples, num_candidates=num_candidates, alpha=alpha,
                generator=generator, resample_fraction=resample_fraction, **options)


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
        raise TypeError("select_steps must be None, a period (int) or a collection of step indices; "
                        f"got {select_steps!r}") from None
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
    """SVDD-R's resampling: the floor(fraction·N) lowest-value samples (NaN lowest) are replaced by
    copies of samples drawn by tilted weights exp(v/α). Returns the new batch and how many moved."""
    values = kept.values
    n = values.shape[0]
    ancestors = torch.arange(n)
    count = int(fraction * n)
    if count:
        ranked = torch.where(torch.isnan(values), torch.full_like(values, -torch.inf), values)
        worst = torch.argsort(ranked, stable=True)[:count]
        ancestors[worst] = resample(tilted_log_weights(values, alpha), "multinomial", generator, num=count)
    return kept.take(ancestors), int((ancestors != torch.arange(n)).sum())


# -- baselines -------------------------------------------------------------------------------------


def pretrained(calls: Calls, *, num_samples: int, num_candidates: int, alpha: float,
               generator: GeneratorLike, **options: Any) -> Outcome:
    """Plain ancestral sampling from the pretrained model (num_candidates and alpha unused)."""
    _no_options("pretrained", options)
    states, trace = _ancestral(calls, num_samples, generator, "pretrained")
    return Outcome(states, trace)


def _ancestral(calls: Calls, rows: int, generator: GeneratorLike, desc: str) -> tuple[torch.Tensor, list]:
    x = calls.prior(rows, generator)
    trace: list[dict[str, Any]] = []
    for _, t, _ in calls.steps(desc):
        x = calls.transition(x, t, calls.model(x, t), generator)
        trace.append({"t": _time(t)})
    return x, trace


def best_of_n(calls: Calls, *, num_samples: int, num_candidates: int, alpha: float,
              generator: GeneratorLike, **options: Any) -> Outcome:
    """Draw N·M pretrained samples and keep the N with the highest reward (NaN ranks last).

    With a per-sample generator list, sample i's M draws all come from generator[i]. With
    `max_batch`, the pool is drawn for groups of samples in turn (`candidate_groups`) and only
    the best N so far are kept, so memory does not grow with M.
    """
    _no_options("best_of_n", options)
    n, m = num_samples, num_candidates
    best: list[Scored] = []
    trace: list[dict[str, Any]] = []
    for rows, gens in _groups(calls, n, m, generator):
        states, trace = _ancestral(calls, (rows.stop - rows.start) * m, repeat_generators(gens, m),
                                   f"best_of_n (N*M={n * m})")
        rewards, objects = calls.score_clean(states)
        best = [_top(Scored.join([*best, Scored(states, rewards, None, objects)]), n)]
    return Outcome(best[0].states, trace, best[0].values, best[0].objects)


def _top(pool: Scored, n: int) -> Scored:
    """The n highest values of the pool (NaN last; ties keep the earlier draw), in pool order."""
    ranked = torch.where(torch.isnan(pool.values), torch.full_like(pool.values, -torch.inf), pool.values)
    return pool.take(torch.sort(torch.argsort(ranked, descending=True, stable=True)[:n]).values)


def smc(calls: Calls, *, num_samples: int, num_candidates: int, alpha: float,
        generator: GeneratorLike, resampling: str = "multinomial", ess_threshold: float | None = None,
        **options: Any) -> Outcome:
    """Sequential Monte Carlo with the pretrained model as proposal (TDS/FK style, no twist gradient).

    Runs P = N·M particles (so its model budget matches SVDD's), one proposal each per step.
    Log weights accumulate (v_{t-1} - v_t)/α; the particles are resampled (`resampling` in
    multinomial | systematic | stratified | residual) at every step, or only when the ESS falls
    below `ess_threshold`·P, the weights being carried over otherwise. The last step scores clean
    particles by the reward and resamples N of them, so the output is an unweighted sample.
    """
    _check_smc_options(options, alpha, resampling, ess_threshold)
    n, p = num_samples, num_samples * num_candidates
    gens = repeat_generators(generator, num_candidates)  # particle i·M + j draws from generator i
    t0 = calls.timesteps[0]
    x = calls.prior(p, gens)
    out = calls.model(x, t0)
    calls.refuse_deterministic(x, t0, out)
    particles = Scored(x, calls.evaluate(x, t0, out, gens)[0], out)
    log_w = torch.zeros(p, dtype=torch.float64)
    trace: list[dict[str, Any]] = []
    for _, t, t_next in calls.steps(f"smc (P={p})"):
        x = calls.transition(particles.states, t, particles.out, gens)
        out = calls.model(x, t_next) if t_next is not None else None
        values, objects = calls.evaluate(x, t_next, out, gens)  # the reward of clean particles
        proposed = Scored(x, values, out, objects)
        log_w = log_w + _log_increment(particles.values, proposed.values, alpha)
        particles, ess = proposed, effective_sample_size(log_w)
        resampled = t_next is None or ess_threshold is None or ess < ess_threshold * p
        if resampled:
            ancestors = resample(log_w, resampling, generator, num=n if t_next is None else p)
            particles, log_w = particles.take(ancestors), torch.zeros(ancestors.shape[0], dtype=torch.float64)
        calls.record(trace, t, particles.values, ess=ess, resampled=bool(resampled))
    rewards = particles.values if calls.clean_values_are_rewards else None
    return Outcome(particles.states, trace, rewards, particles.objects)


def _check_smc_options(options: dict[str, Any], alpha: float, resampling: str, ess_threshold: float | None) -> None:
    _no_options("smc", options)
    if alpha <= 0:
        raise ValueError("smc needs alpha > 0: its weights are exp((v_{t-1} - v_t)/alpha)")
    if resampling not in RESAMPLING_METHODS:
        raise ValueError(f"resampling must be one of {', '.join(RESAMPLING_METHODS)}; got {resampling!r}")
    if ess_threshold is not None and not 0.0 < ess_threshold <= 1.0:
        raise ValueError(f"ess_threshold must be in (0, 1] or None; got {ess_threshold!r}")


def _log_increment(previous: torch.Tensor, current: torch.Tensor, alpha: float) -> torch.Tensor:
    """(v_new - v_old)/α per particle; an invalid new value gives -inf (weight 0), an invalid old
    value is replaced by the lowest valid old value so a recovered particle is not favoured."""
    ok_prev = torch.isfinite(previous)
    floor = previous[ok_prev].min() if ok_prev.any() else torch.tensor(0.0, dtype=torch.float64)
    previous = torch.where(ok_prev, previous, floor)
    increment = (current - previous) / alpha
    invalid = torch.isnan(current) | torch.isneginf(current)
    return torch.where(invalid, torch.full_like(increment, -torch.inf), increment)


def dps(calls: Calls, *, num_samples: int, num_candidates: int, alpha: float,
        generator: GeneratorLike, guidance_scale: float = 1.0, **options: Any) -> Outcome:
    """Diffusion posterior sampling: x_prev = transition(x) + guidance_scale · ∇_x r(x0_hat(x)).

    Needs a continuous process and a differentiable torch reward (`svdd.rewards.TorchReward`),
    whose `tensor(x0_hat)` is differentiated through the model. One model call per sample and step.
    """
    _no_options("dps", options)
    if not is_differentiable(calls.reward) or not hasattr(calls.reward, "tensor"):
        raise TypeError(
            f"dps needs a differentiable reward with a tensor(x0) method, such as "
            f"svdd.rewards.TorchReward(fn); {reward_name(calls.reward)!r} is a black box. "
            "Use method='svdd' for black-box rewards."
        )
    x = calls.prior(num_samples, generator)
    if not x.is_floating_point():
        raise TypeError("dps needs a continuous process (floating-point states); this one has "
                        f"{x.dtype} states. Use method='svdd' for discrete processes.")
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


def _time(t: Any) -> Any:
    return t.item() if isinstance(t, torch.Tensor) else t


def _no_options(method: str, options: dict[str, Any]) -> None:
    if options:
        raise TypeError(f"unknown option(s) for method {method!r}: {', '.join(sorted(options))}; "
                        f"see the docstring of svdd.samplers.{method}")


METHODS = {
    "pretrained": pretrained,
    "best_of_n": best_of_n,
    "svdd": svdd,
    "svdd_r": svdd_r,
    "smc": smc,
    "dps": dps,
}
