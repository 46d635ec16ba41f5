"""FK steering (Singhal et al., ICML 2025): Feynman-Kac particle resampling with reward potentials.

N groups of M particles run the pretrained chain. At the scored steps each particle's state x_t is
scored (r_t: the value estimate; PM: the reward of its denoised estimate, from the model call the
step makes anyway), its weight is multiplied by a potential G_t, and each group is resampled by
its weights. At the end the clean particles get the terminal potential

    G_0 = exp(λ r(x_0)) / Π_t G_t(path),    λ = 1/α,

so that, whatever the potential, a group's weighted particles target p_pre(x_0)·exp(r(x_0)/α)
(the product of all potentials along a path is exp(λ r(x_0))). Potentials (r_s: the path's
scores so far, the last one r_t):

| potential | log G_t                  |
|-----------|--------------------------|
| "diff"    | λ (r_t − r_prev)         |  r_prev = 0 before the first scored step
| "max"     | λ max_{s ≥ t} r_s        |  running max over the path's scored steps
| "add"     | λ Σ_{s ≥ t} r_s          |  running sum
| "rt"      | λ r_t                    |

Where the reference code (zacharyhorvitz/Fk-Diffusion-Steering at 9413005) differs, and why this
one does not follow it:

* its terminal weight for "max" and "add" divides exp(λ·running max / running sum) rather than
  exp(λ r(x_0)) by the product, so those two telescope to exp(λ max r_s) and exp(λ Σ r_s) instead of
  the tilted target; here G_0 uses r(x_0) of the returned clean sample for every potential;
* its running max starts at `reward_min_value` = 0, so "max" never steers on negative rewards;
  here it starts at −inf;
* it clamps weights at 1e10, which saturates once λ r > 23 (every particle equal: no steering);
  here weights stay in log space (no clamp, no overflow);
* with adaptive resampling it drops the weights of the steps it does not resample at; here they
  are carried over until the next resampling (the FK-IPS recursion);
* it scores the new state x_{t-1} by its parent's x0 prediction and resamples after the
  transition; here a state is scored by its own model output and resampled before the transition,
  the same potentials one step later, with the children of duplicated particles drawn apart;
* its final weight uses the rewards of the last x0 predictions (MDLM: log-mean-exp over draws);
  here it uses the reward of the clean particle that is returned.

A NaN (or infinite) score makes that step's weight 0 and leaves the path's record unchanged; a
group with no valid weight resamples uniformly. A group whose particles are all the same state
(the all-mask start of a masked process) is not scored: its potential would be one number for the
whole group, which the normalised weights cancel.
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import torch

from .. import batched
from ..rng import GeneratorLike, repeat_generators
from .calls import Calls
from .outcome import Outcome, Scored, no_options, plain_time
from .particles import best_per_group, each_group_is_one_state, group_ess, group_generators, resample_within

POTENTIALS = ("diff", "max", "add", "rt")


def fk(
    calls: Calls,
    *,
    num_samples: int,
    num_candidates: int,
    alpha: float,
    generator: GeneratorLike,
    potential: str = "diff",
    resample_every: int = 1,
    resample_window: tuple[int, int] | None = None,
    ess_threshold: float | None = None,
    resampling: str = "multinomial",
    num_x0_samples: int | None = None,
    return_all: bool = False,
    **options: Any,
) -> Outcome:
    """FK steering: N groups of M particles (N = num_samples, M = num_candidates), λ = 1/alpha.

    At every scored step (`scored_steps`: every `resample_every`-th step index within
    `resample_window` = (first, last), both inclusive; by default every step) the particles are
    scored and weighted by `potential` ("diff", "max", "add" or "rt"; see the module docstring),
    and each group is resampled by `resampling` (multinomial | systematic | stratified |
    residual); with `ess_threshold` a group is resampled only when its ESS falls below
    ess_threshold·M, its weights being carried over otherwise. The clean particles get the terminal
    weight G_0 = exp(λ r(x_0)) / Π G_t and every group is resampled once more, so each group's M
    particles are an unweighted draw whose law tends to p_pre·exp(r/α) as M grows.

    Returns the best particle of each group by reward (N samples; the reference code's choice),
    or all N·M particles with `return_all=True` (then `Result.samples` has N·M entries, group by
    group). `num_x0_samples` = S scores a masked state by the log-mean-exp at α of the reward over
    S draws of x_0 from the denoiser (`svdd.PosteriorMean(reward, num_x0_samples=S)`).

    Cost: one model call per particle and step (K·N·M); value calls N·M per scored step (PM:
    S·N·M reward calls), plus N·M reward calls for the clean particles.
    """
    no_options("fk", options)
    n, m, lam = num_samples, num_candidates, 1.0 / alpha
    calls = with_x0_draws(calls, num_x0_samples)
    gens = repeat_generators(generator, m)  # the M particles of group i draw from generator i
    group_gens = group_generators(generator, n, n)
    scored = scored_steps(len(calls.timesteps), resample_every, resample_window)
    x = calls.prior(n * m, gens)
    path, log_w = PathScores.start(n * m), torch.zeros(n * m, dtype=torch.float64)
    trace: list[dict[str, Any]] = []
    for k, t, _ in calls.steps(f"fk (N={n}, M={m})"):
        out = calls.model(x, t)
        if k == 0:
            calls.refuse_deterministic(x, t, out)
        if k in scored and not each_group_is_one_state(x, n):
            scores = calls.values(x, t, out, gens)  # r_t of every particle
            log_g, path = path.extended(potential, scores, lam)
            log_w = log_w + log_g
            ess = group_ess(log_w, n)
            due = torch.ones(n, dtype=torch.bool) if ess_threshold is None else ess < ess_threshold * m
            ancestors = resample_within(log_w, n, resampling, group_gens, num=m, which=due)
            x, out, path = x[ancestors.to(x.device)], batched.take(out, ancestors), path.take(ancestors)
            log_w = torch.where(due.repeat_interleave(m), torch.zeros_like(log_w), log_w)  # kept groups carry theirs
            calls.record(trace, t, scores, scored=True, ess=float(ess.mean()), resampled=int(due.sum()))
        else:
            trace.append({"t": plain_time(t), "scored": False})
        x = calls.transition(x, t, out, gens)
    rewards, objects = calls.score_clean(x)  # the objective on the clean particles
    log_w = log_w + path.terminal(rewards, lam)
    trace[-1]["final_ess"] = float(group_ess(log_w, n).mean())
    final = Scored(x, rewards, None, objects).take(resample_within(log_w, n, resampling, group_gens, num=m))
    if not return_all:
        final = final.take(best_per_group(final.values, n))
    return Outcome(final.states, trace, final.values, final.objects)


class PathScores(NamedTuple):
    """What the potentials need of each particle's path, float64 [P] each: its score at the last
    scored step (0 before the first), the running max (−inf before) and sum (0 before) of its
    scores, and log Π G_t, the log product of its potentials so far."""

    last: torch.Tensor
    best: torch.Tensor
    total: torch.Tensor
    log_product: torch.Tensor

    @staticmethod
    def start(p: int) -> PathScores:
        zeros = torch.zeros(p, dtype=torch.float64)
        return PathScores(zeros, torch.full_like(zeros, -torch.inf), zeros, zeros)

    def take(self, index: torch.Tensor) -> PathScores:
        return PathScores(*(v[index] for v in self))

    def extended(self, potential: str, scores: torch.Tensor, lam: float) -> tuple[torch.Tensor, PathScores]:
        """(log G_t float64 [P], the record after this step) for scores r_t float64 [P].

        An invalid score (NaN, ±inf) gives log G_t = −inf and leaves the particle's record as it was.
        """
        valid = torch.isfinite(scores)
        r = torch.where(valid, scores, torch.zeros_like(scores))
        best, total = torch.maximum(self.best, r), self.total + r
        log_g = lam * {"diff": r - self.last, "max": best, "add": total, "rt": r}[potential]
        log_g = torch.where(valid, log_g, torch.full_like(log_g, -torch.inf))
        record = PathScores(
            torch.where(valid, r, self.last),
            torch.where(valid, best, self.best),
            torch.where(valid, total, self.total),
            self.log_product + torch.where(valid, log_g, torch.zeros_like(log_g)),
        )
        return log_g, record

    def terminal(self, rewards: torch.Tensor, lam: float) -> torch.Tensor:
        """log G_0 = λ r(x_0) − log Π G_t float64 [P]; NaN rewards give −inf."""
        log_g0 = lam * rewards - self.log_product
        return torch.where(torch.isnan(log_g0), torch.full_like(log_g0, -torch.inf), log_g0)


def scored_steps(num_steps: int, every: int, window: tuple[int, int] | None) -> set[int]:
    """Step indices k (0 = the prior state) at which fk scores and resamples: every `every`-th
    index from window[0] to window[1] (inclusive; default the whole chain 0..K-1)."""
    first, last = (0, num_steps - 1) if window is None else window
    return set(range(first, last + 1, every))


def with_x0_draws(calls: Calls, num_x0_samples: int | None) -> Calls:
    """`calls` whose posterior-mean value scores by `num_x0_samples` draws of x_0 (None: as given).

    The copy shares the counters (and everything else) with `calls`."""
    if num_x0_samples is None:
        return calls
    redraw = getattr(calls.value, "with_x0_samples", None)  # the Value protocol's optional member
    if not callable(redraw):
        raise TypeError(
            f"num_x0_samples applies to the posterior-mean value or a value that scores posterior draws "
            f"of x0 (with_x0_samples(S)); the value is {calls.value!r}"
        )
    drawn = copy.copy(calls)
    drawn.value = redraw(num_x0_samples)
    return drawn
