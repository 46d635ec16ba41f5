"""Choosing among scored candidates, and resampling a population by log weights.

Two families of operations live here:

* `select` picks one of M candidates per row from their values (rewards): the argmax when
  `alpha == 0`, otherwise a draw from `softmax(values / alpha)`.
* `resample` draws ancestor indices for a weighted population (sequential Monte Carlo style)
  with the multinomial, systematic, stratified or residual scheme.

Conventions shared by every function:

* Everything is computed in float64 and in log space; inputs are never modified in place.
* Values (rewards, soft values) follow `svdd.rewards`' policy: NaN is invalid; +inf is valid and
  the best possible value; -inf is valid but loses to every finite or +inf value. Candidates are
  ranked in tiers, +inf above finite above -inf above NaN, and only the top tier present in a row
  can be chosen: the +inf entries when there are any (shared equally), else the finite entries
  (argmax or softmax), else the -inf entries (shared equally). A row of NaN only falls back to a
  uniform choice among all entries.
* Log weights (`log_weights_to_probs`, `resample`): NaN and -inf mean weight 0; +inf entries share
  all the mass equally; a row with no positive weight is uniform.
* No function ever returns a NaN probability.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch

from svdd.rng import GeneratorLike, batch_generator, check_generator, is_per_row, rand

RESAMPLING_METHODS = ("multinomial", "systematic", "stratified", "residual")

__all__ = [
    "RESAMPLING_METHODS",
    "Selection",
    "accumulate_log_weights",
    "effective_sample_size",
    "log_weight_increment",
    "log_weights_to_probs",
    "resample",
    "select",
    "tilted_log_weights",
]


@dataclass(frozen=True)
class Selection:
    """The outcome of `select`.

    index: LongTensor[N], the chosen candidate of each row (in [0, M)).
    fallback_rows: number of rows where no candidate was valid (the pick was uniform).
    """

    index: torch.Tensor
    fallback_rows: int


# --------------------------------------------------------------------------- helpers


def _check_alpha(alpha: float) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"alpha must be a finite number >= 0; got {alpha!r}") from None
    if not math.isfinite(a) or a < 0:
        raise ValueError(
            f"alpha must be a finite number >= 0 (0 means argmax, > 0 means sample from "
            f"softmax(values / alpha)); got {alpha!r}"
        )
    return a


def _invalid(x: torch.Tensor) -> torch.Tensor:
    """Bool mask of NaN or -inf entries (same shape as `x`)."""
    return torch.isnan(x) | (x == -math.inf)


def _uniform(n: int, generator: GeneratorLike, device: torch.device) -> torch.Tensor:
    """Float64[n] uniforms in [0, 1), drawn on the generator's device and moved to `device`.

    With a per-row list, entry i comes from `generator[i]` alone.
    """
    if is_per_row(generator):
        gen_device = generator[0].device if len(generator) else device
    elif isinstance(generator, torch.Generator):
        gen_device = generator.device
    else:
        gen_device = device
    return rand((n,), generator, dtype=torch.float64, device=gen_device).to(device)


def _normalized(log_w: torch.Tensor) -> torch.Tensor:
    """Probabilities along the last dim of `log_w` (float64 [..., M] -> float64 [..., M]).

    Invalid entries (NaN / -inf) get 0; rows with a +inf entry share the mass equally among
    their +inf entries; rows with no valid entry are uniform. Every row sums to 1 (up to
    rounding) and holds no NaN.
    """
    log_w = log_w.to(torch.float64)
    if log_w.dim() == 0:
        raise ValueError("log weights must have at least one dimension; got a scalar")
    if log_w.shape[-1] == 0:
        return log_w.clone()
    invalid = _invalid(log_w)
    pos_inf = log_w == math.inf
    finite = ~invalid & ~pos_inf

    # Finite part: subtract the row max of the finite entries so exp never overflows.
    row_max = torch.where(finite, log_w, torch.full_like(log_w, -math.inf)).amax(-1, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    shifted = torch.where(finite, log_w - row_max, torch.full_like(log_w, -math.inf))
    w = torch.exp(shifted)  # finite entries in (0, 1], the row max is exactly 1

    has_inf = pos_inf.any(-1, keepdim=True)
    w = torch.where(has_inf, pos_inf.to(torch.float64), w)
    none_valid = invalid.all(-1, keepdim=True)
    w = torch.where(none_valid, torch.ones_like(w), w)
    return w / w.sum(-1, keepdim=True)  # total >= 1 on every row: one entry is exactly 1


def _inverse_cdf(p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Indices drawn by inverse CDF.

    p: float64[..., M] nonnegative weights with a positive entry in every row.
    u: float64[..., K] positions in [0, 1] (one row of positions per row of `p`).
    Returns LongTensor[..., K]; an entry with weight 0 is never returned.
    """
    cdf = torch.cumsum(p, dim=-1)
    cdf = cdf / cdf[..., -1:]  # last entry exactly 1; zero-weight entries have zero width
    idx = torch.searchsorted(cdf.contiguous(), u.contiguous(), right=True)
    # Rounding can push a position to (or past) the end: clamp to the last positive entry.
    positions = torch.arange(p.shape[-1], device=p.device)
    last_pos = torch.where(p > 0, positions, torch.full_like(positions, -1)).amax(-1, keepdim=True)
    return torch.minimum(idx, last_pos)


# --------------------------------------------------------------------------- weights


def tilted_log_weights(values: torch.Tensor, alpha: float) -> torch.Tensor:
    """Log weights of the tilted distribution `exp(values / alpha)` along the last dim.

    values: Tensor[N] (or [..., N]; the tilt is per last-dim row). Returns float64 of the same
    shape, following the value tiers of the module docstring: only the top tier of a row gets a
    weight. For `alpha > 0` a finite entry gets `values / alpha` shifted by a per-row constant
    (the finite row max is subtracted first, so huge values or a tiny alpha never overflow; the
    constant does not change any normalized weight); +inf entries get +inf (they share the mass);
    in a row with no finite or +inf value the -inf entries get 0 (uniform among them); everything
    else (NaN, and -inf beside a better value) gets -inf.
    For `alpha == 0` the entries equal to the row maximum over non-NaN values get 0 and all
    others -inf, so resampling copies the best (ties share the mass). A row of NaN only is all
    -inf (which `log_weights_to_probs` turns into uniform).
    """
    a = _check_alpha(alpha)
    if values.dim() == 0:
        raise ValueError("values must have at least one dimension; got a scalar")
    v = values.to(torch.float64)
    nan = torch.isnan(v)
    neg_inf = torch.full_like(v, -math.inf)
    if v.shape[-1] == 0:
        return v.clone()
    if a == 0:
        masked = torch.where(nan, neg_inf, v)
        is_max = (masked == masked.amax(-1, keepdim=True)) & ~nan
        return torch.where(is_max, torch.zeros_like(v), neg_inf)
    finite = torch.isfinite(v)
    row_max = torch.where(finite, v, neg_inf).amax(-1, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    out = torch.where(finite, (v - row_max) / a, neg_inf)  # finite entries are <= 0 (or -inf)
    out = torch.where(v == math.inf, torch.full_like(v, math.inf), out)
    only_neg_inf = ~(finite | (v == math.inf)).any(-1, keepdim=True)  # no finite or +inf value
    return torch.where(only_neg_inf & (v == -math.inf), torch.zeros_like(v), out)


def log_weight_increment(previous: torch.Tensor, current: torch.Tensor, alpha: float, groups: int = 1) -> torch.Tensor:
    """SMC's incremental log weights (v_new - v_old)/α, float64 [P], for the values of each
    particle before (`previous` [P]) and after (`current` [P]) a step, following the value tiers
    (stand-ins are taken within each of `groups` equal consecutive populations):

    * a NaN or -inf new value gives -inf (weight 0; -inf still loses to any finite value);
    * a +inf new value gives +inf (the +inf particles share the mass);
    * an old value that is not finite is replaced by a finite stand-in: NaN and -inf by the lowest
      finite old value (a recovered particle is not favoured), +inf by the highest (a particle that
      falls from +inf is not favoured either); 0 when no old value is finite;
    * a difference of two finite values that overflows float64 is clamped to the largest finite
      float, so only an infinite value ever makes an infinite weight.
    """
    a = _check_alpha(alpha)
    if a == 0:
        raise ValueError("log weight increments need alpha > 0")
    previous, current = previous.to(torch.float64), current.to(torch.float64)
    old = previous.view(groups, -1)
    finite_old = torch.isfinite(old)
    any_finite = finite_old.any(dim=1, keepdim=True)
    inf = torch.full_like(old, math.inf)
    floor = torch.where(any_finite, torch.where(finite_old, old, inf).amin(dim=1, keepdim=True), 0.0)
    ceiling = torch.where(any_finite, torch.where(finite_old, old, -inf).amax(dim=1, keepdim=True), 0.0)
    stand_in = torch.where(old == math.inf, ceiling, floor)
    previous = torch.where(finite_old, old, stand_in).reshape(-1)
    largest = torch.finfo(torch.float64).max
    increment = ((current - previous) / a).clamp(-largest, largest)  # finite current: a finite increment
    increment = torch.where(current == math.inf, torch.full_like(increment, math.inf), increment)
    return torch.where(torch.isnan(current) | (current == -math.inf), torch.full_like(increment, -math.inf), increment)


def accumulate_log_weights(log_w: torch.Tensor, increment: torch.Tensor) -> torch.Tensor:
    """`log_w + increment` (float64 [P]) kept well defined: a particle with weight 0 (-inf) stays at
    0, one at +inf that gets a -inf increment drops to 0 (never NaN), and the finite entries are
    shifted so their maximum is 0 (weights are relative, so nothing changes but overflow)."""
    log_w, increment = log_w.to(torch.float64), increment.to(torch.float64)
    largest = torch.finfo(torch.float64).max
    total = log_w + increment
    both_finite = torch.isfinite(log_w) & torch.isfinite(increment)  # their sum may overflow: clamp it
    total = torch.where(both_finite, total.clamp(-largest, largest), total)
    total = torch.where(torch.isnan(total), torch.full_like(total, -math.inf), total)
    finite = torch.isfinite(total)
    if finite.any():
        total = torch.where(finite, total - total[finite].max(), total)
    return total


def log_weights_to_probs(log_w: torch.Tensor) -> torch.Tensor:
    """Normalized probabilities from log weights: Tensor[N] -> float64[N].

    NaN and -inf entries get 0; if every entry is invalid the result is uniform; +inf entries
    share all the mass equally. Also accepts [..., N] and normalizes along the last dim.
    """
    return _normalized(log_w)


def effective_sample_size(log_w: torch.Tensor) -> float:
    """Effective sample size `1 / sum_i p_i^2` of the weights `log_w: Tensor[N]`.

    Ranges from 1 (one entry holds all the mass) to N (uniform). 0.0 for an empty tensor.
    """
    if log_w.dim() != 1:
        raise ValueError(f"log_w must be 1-D [N]; got shape {tuple(log_w.shape)}")
    if log_w.numel() == 0:
        return 0.0
    p = log_weights_to_probs(log_w)
    return float(1.0 / (p * p).sum())


# --------------------------------------------------------------------------- selection


def select(values: torch.Tensor, alpha: float, generator: GeneratorLike = None) -> Selection:
    """Pick one of M candidates in each of N rows from their values.

    values: Tensor[N, M] (any float dtype; computed in float64), ranked in the tiers of the module
    docstring: +inf beats every finite value, -inf loses to every finite value, NaN is invalid and
    never wins while a row has a non-NaN candidate.

    * alpha == 0: the argmax over non-NaN candidates; ties (several +inf, several equal finite
      maxima, or only -inf entries) go to the lowest index. No randomness is used, except for
      fallback rows.
    * alpha > 0: a draw from Categorical(softmax(values / alpha)) over the finite candidates
      (log-softmax with the row max subtracted, so huge values never overflow); a row with +inf
      entries picks uniformly among them, a row whose best entries are -inf uniformly among
      those. The draw is by inverse CDF.
    * A row where every candidate is NaN picks uniformly among all M and is counted in
      `fallback_rows`.

    Randomness: a row draws exactly one uniform from `svdd.rng.rand` when its pick is random,
    i.e. every row when alpha > 0, and only the fallback rows when alpha == 0 (in row order).
    With a per-row generator list, row i only ever touches `generator[i]`, so its pick does
    not depend on the other rows of the batch; with alpha == 0 the generators of rows that do
    not fall back are left untouched.

    Returns a `Selection` with `index: LongTensor[N]` and `fallback_rows: int`.
    Raises ValueError for alpha < 0, non-finite alpha, values that are not 2-D, M == 0, or a
    generator list whose length is not N.
    """
    a = _check_alpha(alpha)
    if values.dim() != 2:
        raise ValueError(f"values must be 2-D [N rows, M candidates]; got shape {tuple(values.shape)}")
    n, m = values.shape
    if m == 0:
        raise ValueError("values has no candidates (M == 0); need at least one per row")
    check_generator(generator, n)
    device = values.device
    if n == 0:
        return Selection(index=torch.zeros(0, dtype=torch.long, device=device), fallback_rows=0)

    v = values.to(torch.float64)
    fallback = torch.isnan(v).all(dim=1)  # [N]: no candidate has a valid value
    fallback_rows = int(fallback.sum())

    if a == 0:
        is_max = tilted_log_weights(v, 0.0) == 0  # the non-NaN row maxima (the top tier's best)
        positions = torch.arange(m, device=device).expand(n, m)
        index = torch.where(is_max, positions, torch.full_like(positions, m)).amin(dim=1)
        if fallback_rows:
            rows = fallback.nonzero().squeeze(1)
            gens = [generator[i] for i in rows.tolist()] if is_per_row(generator) else generator
            u = _uniform(rows.numel(), gens, device)
            uniform_pick = torch.clamp((u * m).floor().long(), max=m - 1)
            index = index.clone()
            index[rows] = uniform_pick
        return Selection(index=index, fallback_rows=fallback_rows)

    p = _normalized(tilted_log_weights(v, a))  # [N, M]; fallback rows are uniform
    u = _uniform(n, generator, device)  # [N]
    index = _inverse_cdf(p, u.unsqueeze(1)).squeeze(1)
    return Selection(index=index, fallback_rows=fallback_rows)


# --------------------------------------------------------------------------- resampling


def _residual_counts(p: torch.Tensor, num: int, gen: torch.Generator | None) -> torch.Tensor:
    """Residual resampling counts: float64 p[N] -> LongTensor[N] summing to `num`."""
    expected = p * num
    counts = torch.floor(expected).long()
    extra = int(counts.sum()) - num
    while extra > 0:  # only possible through rounding when sum(p) is a hair above 1
        j = int(torch.argmax(counts))
        counts[j] -= 1
        extra -= 1
    remaining = num - int(counts.sum())
    if remaining > 0:
        residual = torch.clamp(expected - counts.to(torch.float64), min=0.0)
        residual = torch.where(p > 0, residual, torch.zeros_like(residual))
        q = residual if float(residual.sum()) > 0 else p
        u = _uniform(remaining, gen, p.device)
        drawn = _inverse_cdf(q, u)
        counts = counts + torch.bincount(drawn, minlength=p.numel())
    return counts


def resample(
    log_w: torch.Tensor,
    method: str = "multinomial",
    generator: GeneratorLike = None,
    num: int | None = None,
) -> torch.Tensor:
    """Ancestor indices for a population with log weights `log_w: Tensor[N]`.

    Returns LongTensor[num] (num defaults to N) sorted ascending; index i appears about
    `num * p_i` times on average, with p = `log_weights_to_probs(log_w)` (invalid entries are
    never chosen unless all are invalid, in which case p is uniform). Methods:

    * "multinomial": num iid draws from p.
    * "systematic": one uniform u; positions (u + i) / num, i = 0..num-1.
    * "stratified": one uniform u_i per stratum; positions (u_i + i) / num.
    * "residual": floor(num * p_i) deterministic copies, the rest drawn multinomially from the
      leftover fractions.

    The draws couple the rows, so they use `svdd.rng.batch_generator(generator)` (with a
    per-row list, its first generator).
    """
    if method not in RESAMPLING_METHODS:
        raise ValueError(f"unknown resampling method {method!r}; expected one of {', '.join(RESAMPLING_METHODS)}")
    if log_w.dim() != 1:
        raise ValueError(f"log_w must be 1-D [N]; got shape {tuple(log_w.shape)}")
    n = log_w.numel()
    num = n if num is None else num
    if isinstance(num, bool) or not isinstance(num, numbers.Integral) or num < 0:
        raise ValueError(f"num must be a nonnegative int; got {num!r}")
    num = int(num)
    device = log_w.device
    if num == 0:
        return torch.zeros(0, dtype=torch.long, device=device)
    if n == 0:
        raise ValueError(f"cannot draw {num} ancestors from an empty population")

    gen = batch_generator(generator)
    p = log_weights_to_probs(log_w)
    if method == "residual":
        counts = _residual_counts(p, num, gen)
        return torch.repeat_interleave(torch.arange(n, device=device), counts)

    steps = torch.arange(num, dtype=torch.float64, device=device)
    if method == "multinomial":
        positions = _uniform(num, gen, device)
    elif method == "systematic":
        positions = (_uniform(1, gen, device) + steps) / num
    else:  # stratified
        positions = (_uniform(num, gen, device) + steps) / num
    index = _inverse_cdf(p, positions)
    return torch.sort(index).values
