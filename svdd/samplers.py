"""The sampling methods, one function each with one signature.

    method(calls, *, num_samples, num_candidates, alpha, generator, **options) -> Outcome

`calls` (svdd.calls.Calls) holds the process, the reward, the value estimate and the counters.
With N = num_samples and M = num_candidates, per denoising step (K steps in all):

| method     | model calls (rows) per step             | what it does                                   |
|------------|-----------------------------------------|------------------------------------------------|
| pretrained | N                                       | ancestral sampling                             |
| best_of_n  | N·M                                     | N·M ancestral samples, keep the top N by reward|
| svdd       | N·M with PM (N on the first step), N+value with MC | M children per sample, keep one by value |
| svdd_r     | as svdd                                 | svdd + global resampling of a fraction by tilted weights |
| smc        | N·M particles, one proposal each        | weights exp((v_{t-1} - v_t)/α), resampling, N returned |
| dps        | N (with gradients)                      | gradient of a differentiable reward through x0_hat |
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import torch

from . import batched
from .calls import Calls
from .rewards import is_differentiable, reward_name
from .rng import GeneratorLike, repeat_generators, select_generators
from .selection import RESAMPLING_METHODS, effective_sample_size, resample, select, tilted_log_weights
from .values import PosteriorMean


class Outcome(NamedTuple):
    """What a method hands back to `svdd.sample`.

    states: final x_0 [N, ...]; rewards: objective rewards float64 [N] when the method already
    computed them (else None); samples: decoded objects when already decoded (else None).
    """

    states: torch.Tensor
    trace: list[dict[str, Any]]
    rewards: torch.Tensor | None = None
    samples: list[Any] | None = None


def _steps(calls: Calls, desc: str) -> Iterator[tuple[int, Any, Any]]:
    """(k, t_k, t_{k+1} or None on the last step), with a progress bar when enabled."""
    ts = list(calls.process.timesteps)
    for k in calls.progress_bar(range(len(ts)), desc):
        yield k, ts[k], ts[k + 1] if k + 1 < len(ts) else None


def _record(calls: Calls, trace: list, t: Any, values: torch.Tensor, **extra: Any) -> None:
    valid = values[torch.isfinite(values)]
    entry = {
        "t": t.item() if isinstance(t, torch.Tensor) else t,
        "value_mean": valid.mean().item() if valid.numel() else float("nan"),
        "value_median": valid.median().item() if valid.numel() else float("nan"),
        "value_max": valid.max().item() if valid.numel() else float("nan"),
        "invalid": int(values.numel() - valid.numel()),
        **extra,
    }
    trace.append(entry)
    calls.show(entry)


def _refuse_deterministic(calls: Calls, x: torch.Tensor, t: Any, out: Any) -> None:
    """Raise if two draws of `transition` from one continuous state are identical.

    Integer (masked discrete) states are exempt: identical children are normal there when a
    step unmasks nothing. The probe uses its own generator, so the caller's stream is untouched.
    """
    if not x.is_floating_point():
        return
    pair = torch.zeros(2, dtype=torch.long, device=x.device)
    probe_gen = torch.Generator(device=x.device).manual_seed(0)
    draws = calls.process.transition(x[pair], t, batched.take(out, pair), probe_gen)
    if torch.equal(draws[0], draws[1]):
        raise ValueError(
            f"{type(calls.process).__name__}.transition is deterministic: two draws from the same "
            "state are identical, so the candidates would all be the same and there is nothing to "
            "choose from. Use a stochastic sampler (DDPM, DDIM with eta > 0, EulerAncestral, "
            "DPMSolver with an SDE algorithm) for svdd, svdd_r and smc."
        )


def _ancestral(calls: Calls, rows: int, generator: GeneratorLike, desc: str) -> tuple[torch.Tensor, list]:
    x = calls.prior(rows, generator)
    trace: list[dict[str, Any]] = []
    for _, t, _ in _steps(calls, desc):
        out = calls.model(x, t)
        x = calls.transition(x, t, out, generator)
        trace.append({"t": t.item() if isinstance(t, torch.Tensor) else t})
    return x, trace


def pretrained(calls: Calls, *, num_samples: int, num_candidates: int, alpha: float,
               generator: GeneratorLike, **options: Any) -> Outcome:
    """Plain ancestral sampling from the pretrained model (num_candidates and alpha unused)."""
    _no_options("pretrained", options)
    states, trace = _ancestral(calls, num_samples, generator, "pretrained")
    return Outcome(states, trace)


def best_of_n(calls: Calls, *, num_samples: int, num_candidates: int, alpha: float,
              generator: GeneratorLike, **options: Any) -> Outcome:
    """Draw N·M pretrained samples and keep the N with the highest reward (NaN ranks last).

    With a per-sample generator list, sample i's M draws all come from generator[i]. With
    `max_batch`, the pool is drawn for groups of samples in turn (`candidate_groups`) and only
    the best N so far are kept, so memory does not grow with M.
    """
    _no_options("best_of_n", options)
    n, m = num_samples, num_candidates
    best_states = best_rewards = best_index = None
    best_objects: list[Any] = []
    trace: list[dict[str, Any]] = []
    for rows in candidate_groups(n, m, calls.max_batch):
        gens = repeat_generators(select_generators(generator, rows), m)
        states, trace = _ancestral(calls, len(rows) * m, gens, f"best_of_n (N*M={n * m})")
        rewards, objects = calls.score_clean(states)
        index = torch.arange(len(rows) * m) + int(rows[0]) * m  # positions in the whole pool
        if best_states is not None:  # earlier (lower pool index) first: ties keep the earlier draw
            states, rewards = torch.cat([best_states, states]), torch.cat([best_rewards, rewards])
            index, objects = torch.cat([best_index, index]), best_objects + objects
        ranked = torch.where(torch.isnan(rewards), torch.full_like(rewards, -torch.inf), rewards)
        keep = torch.sort(torch.argsort(ranked, descending=True, stable=True)[:n]).values
        best_states, best_rewards, best_index = states[keep.to(states.device)], rewards[keep], index[keep]
        best_objects = [objects[i] for i in keep.tolist()]
    return Outcome(best_states, trace, best_rewards, best_objects)


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


def svdd(calls: Calls, *, num_samples: int, num_candidates: int, alpha: float,
         generator: GeneratorLike, resample_fraction: float = 0.0, select_steps: Any = None,
         **options: Any) -> Outcome:
    """SVDD: at each step draw M children per sample, score them, keep one (softmax(v/α); argmax at α=0).

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
    selecting = selection_steps(select_steps, len(calls.process.timesteps))
    pm = isinstance(calls.value, PosteriorMean)
    x = calls.prior(n, generator)
    out = None
    trace: list[dict[str, Any]] = []
    rewards = samples = None
    for k, t, t_next in _steps(calls, f"svdd (M={m})" if not resample_fraction else f"svdd_r (M={m})"):
        if out is None:
            out = calls.model(x, t)
        if k == 0 and m > 1:
            _refuse_deterministic(calls, x, t, out)
        if k not in selecting:  # a plain pretrained step
            x, out = calls.transition(x, t, out, generator), None
            trace.append({"t": t.item() if isinstance(t, torch.Tensor) else t, "selected": False})
            continue
        groups = candidate_groups(n, m, calls.max_batch, x.device)
        kept = [_best_children(calls, x, t, t_next, out, m, alpha, generator, pm)] if len(groups) == 1 else [
            _best_children(calls, x[rows], t, t_next, batched.take(out, rows), m, alpha,
                           select_generators(generator, rows), pm) for rows in groups]
        x = torch.cat([g.states for g in kept])
        chosen = torch.cat([g.values for g in kept])
        out = batched.cat([g.out for g in kept]) if pm and t_next is not None else None
        objects = [o for g in kept for o in g.objects] if t_next is None else None
        extra: dict[str, Any] = {"selected": True}
        if resample_fraction:
            ancestors = _replace_worst(chosen, resample_fraction, alpha, generator)
            extra["resampled"] = int((ancestors != torch.arange(n)).sum())
            x, chosen = x[ancestors.to(x.device)], chosen[ancestors]
            out = batched.take(out, ancestors) if out is not None else None
            objects = [objects[i] for i in ancestors.tolist()] if objects is not None else None
        if objects is not None:
            samples = objects
            if calls.clean_reward is calls.reward:
                rewards = chosen
        _record(calls, trace, t, chosen, **extra)
    return Outcome(x, trace, rewards, samples)


def candidate_groups(n: int, m: int, max_batch: int | None, device: Any = None) -> list[torch.Tensor]:
    """Row indices LongTensor[g] of the sample groups whose N·M candidates are handled together.

    One group of all N samples without `max_batch`; otherwise groups of max(1, max_batch // M)
    samples, so a group holds at most max(M, max_batch) candidates. With one torch.Generator the
    groups draw from its stream one after another, so a different `max_batch` gives different
    (equally distributed) samples; with one generator per sample the samples do not depend on it.
    """
    size = n if max_batch is None else max(1, max_batch // m)
    return [torch.arange(s, min(s + size, n), device=device) for s in range(0, n, size)]


class _Kept(NamedTuple):
    """The winning child of each sample in a group: states [g, ...], values float64 [g],
    model outputs at the next time (PM, else None), decoded objects (last step, else None)."""

    states: torch.Tensor
    values: torch.Tensor
    out: Any
    objects: list[Any] | None


def _best_children(calls: Calls, x: torch.Tensor, t: Any, t_next: Any, out: Any, m: int, alpha: float,
                   generator: GeneratorLike, pm: bool) -> _Kept:
    """Draw M children of each of the g samples x [g, ...], score them and keep one per sample."""
    g = x.shape[0]
    children = calls.transition(batched.repeat_rows(x, m), t, batched.repeat_rows(out, m),
                                repeat_generators(generator, m))
    child_out = objects = None
    if t_next is None:
        values, objects = calls.score_clean(children, calls.clean_reward)
    elif m == 1:  # nothing to choose from: no value calls (PM still needs the model output)
        child_out = calls.model(children, t_next) if pm else None
        return _Kept(children, torch.full((g,), torch.nan, dtype=torch.float64), child_out, None)
    elif pm:
        child_out = calls.model(children, t_next)
        values = calls.value_of(children, t_next, child_out)
    else:
        values = calls.value_of(children, t_next, None)
    choice = select(values.view(g, m), alpha, generator)
    calls.stats["fallback_rows"] += choice.fallback_rows
    index = torch.arange(g, device=children.device) * m + choice.index.to(children.device)
    return _Kept(children[index], values[index.cpu()],
                 batched.take(child_out, index) if child_out is not None else None,
                 [objects[i] for i in index.tolist()] if objects is not None else None)


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


def _replace_worst(values: torch.Tensor, fraction: float, alpha: float, generator: GeneratorLike) -> torch.Tensor:
    """Ancestor index [N]: identity except the floor(fraction·N) lowest-value rows (NaN lowest),
    which take ancestors drawn by tilted weights."""
    n = values.shape[0]
    count = int(fraction * n)
    ancestors = torch.arange(n)
    if count == 0:
        return ancestors
    ranked = torch.where(torch.isnan(values), torch.full_like(values, -torch.inf), values)
    worst = torch.argsort(ranked, stable=True)[:count]
    ancestors[worst] = resample(tilted_log_weights(values, alpha), "multinomial", generator, num=count)
    return ancestors


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
    _no_options("smc", options)
    if alpha <= 0:
        raise ValueError("smc needs alpha > 0: its weights are exp((v_{t-1} - v_t)/alpha)")
    if resampling not in RESAMPLING_METHODS:
        raise ValueError(f"resampling must be one of {', '.join(RESAMPLING_METHODS)}; got {resampling!r}")
    if ess_threshold is not None and not 0.0 < ess_threshold <= 1.0:
        raise ValueError(f"ess_threshold must be in (0, 1] or None; got {ess_threshold!r}")
    n, m = num_samples, num_candidates
    particles = n * m
    pm = isinstance(calls.value, PosteriorMean)
    gen = repeat_generators(generator, m)
    ts = list(calls.process.timesteps)
    x = calls.prior(particles, gen)
    out = calls.model(x, ts[0])
    _refuse_deterministic(calls, x, ts[0], out)
    values = calls.value_of(x, ts[0], out if pm else None)
    log_w = torch.zeros(particles, dtype=torch.float64)
    trace: list[dict[str, Any]] = []
    rewards = samples = None
    for _, t, t_next in _steps(calls, f"smc (P={particles})"):
        x_new = calls.transition(x, t, out, gen)
        objects = None
        if t_next is None:
            new_values, objects = calls.score_clean(x_new, calls.clean_reward)
            out = None
        else:
            out = calls.model(x_new, t_next)
            new_values = calls.value_of(x_new, t_next, out if pm else None)
        log_w = log_w + _log_increment(values, new_values, alpha)
        x, values = x_new, new_values
        ess = effective_sample_size(log_w)
        last = t_next is None
        resampled = last or ess_threshold is None or ess < ess_threshold * particles
        if resampled:
            ancestors = resample(log_w, resampling, generator, num=n if last else particles)
            x, values = x[ancestors.to(x.device)], values[ancestors]
            out = batched.take(out, ancestors) if out is not None else None
            log_w = torch.zeros(ancestors.shape[0], dtype=torch.float64)
            if objects is not None:
                samples = [objects[i] for i in ancestors.tolist()]
                if calls.clean_reward is calls.reward:
                    rewards = values
        _record(calls, trace, t, values, ess=ess, resampled=bool(resampled))
    return Outcome(x, trace, rewards, samples)


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
    step = calls.model_chunk or num_samples
    for _, t, _ in _steps(calls, "dps"):
        outs, grads, guided = [], [], []
        for start in range(0, num_samples, step):
            chunk = x[start : start + step].detach().requires_grad_(True)
            with torch.enable_grad():
                out = calls.model(chunk, t)
                r = calls.reward.tensor(calls.process.denoised(chunk, t, out))
                (grad,) = torch.autograd.grad(r.sum(), chunk)
            outs.append(batched.map_tensors(torch.Tensor.detach, out))
            grads.append(torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0))
            guided.append(r.detach().to("cpu", torch.float64))
            calls.stats["value_calls"] += chunk.shape[0]
        out, grad = batched.cat(outs), torch.cat(grads)
        x = calls.transition(x.detach(), t, out, generator) + guidance_scale * grad
        _record(calls, trace, t, torch.cat(guided))
    return Outcome(x.detach(), trace)


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
