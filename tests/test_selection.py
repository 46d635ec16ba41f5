from __future__ import annotations

import math

import pytest
import torch

from svdd.sampling.selection import (
    RESAMPLING_METHODS,
    Selection,
    effective_sample_size,
    log_weights_to_probs,
    resample,
    select,
    tilted_log_weights,
)

NAN = math.nan
INF = math.inf


def gens(seeds: list[int]) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- select, alpha = 0


def test_argmax_ignores_nan_and_neg_inf() -> None:
    values = torch.tensor(
        [
            [1.0, NAN, 3.0, -INF],
            [NAN, 2.0, 2.0, -INF],  # tie -> lowest index
            [-INF, -INF, -5.0, NAN],
            [NAN, 7.0, NAN, 8.0],
        ]
    )
    out = select(values, 0.0)
    assert isinstance(out, Selection)
    assert out.index.dtype == torch.long
    assert out.index.tolist() == [2, 1, 2, 3]
    assert out.fallback_rows == 0


def test_pos_inf_wins_argmax() -> None:
    values = torch.tensor([[1e30, INF, 5.0, INF], [NAN, -INF, INF, 1.0]])
    assert select(values, 0.0).index.tolist() == [1, 2]


def test_argmax_uses_no_randomness_without_fallback() -> None:
    g = gen(0)
    state = g.get_state()
    select(torch.tensor([[1.0, NAN], [NAN, 2.0]]), 0.0, g)
    assert torch.equal(g.get_state(), state)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_all_invalid_row_falls_back_and_is_counted(alpha: float) -> None:
    values = torch.tensor([[NAN, NAN, NAN], [1.0, 2.0, NAN], [NAN, NAN, NAN]])
    out = select(values, alpha, gen(1))
    assert out.fallback_rows == 2
    assert 0 <= out.index[0] < 3 and 0 <= out.index[2] < 3
    assert out.index[1] == 1 or alpha > 0
    assert out.index[1] != 2


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_neg_inf_is_valid_but_loses_to_finite(alpha: float) -> None:
    """The +inf policy: -inf is a valid value, so a row of -inf and NaN picks among its -inf entries
    (not a fallback); beside a finite value it is never chosen."""
    n = 2000
    values = torch.tensor([[-INF, NAN, -INF], [-INF, -1e300, NAN]], dtype=torch.float64).repeat(n, 1)
    out = select(values, alpha, gen(1))
    assert out.fallback_rows == 0
    assert set(out.index[0::2].tolist()) == ({0} if alpha == 0 else {0, 2})  # ties: first, or uniform
    assert set(out.index[1::2].tolist()) == {1}


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_fallback_is_uniform(alpha: float) -> None:
    n, m = 20000, 4
    values = torch.full((n, m), NAN)
    out = select(values, alpha, gen(2))
    assert out.fallback_rows == n
    freq = torch.bincount(out.index, minlength=m).double() / n
    assert torch.allclose(freq, torch.full((m,), 0.25, dtype=torch.float64), atol=0.02)


def test_argmax_fallback_only_touches_fallback_rows_generators() -> None:
    values = torch.tensor([[1.0, 2.0], [NAN, NAN], [3.0, NAN]])
    g = gens([10, 11, 12])
    states = [x.get_state() for x in g]
    select(values, 0.0, g)
    assert torch.equal(g[0].get_state(), states[0])
    assert not torch.equal(g[1].get_state(), states[1])
    assert torch.equal(g[2].get_state(), states[2])


# --------------------------------------------------------------------------- select, alpha > 0


@pytest.mark.parametrize("alpha", [0.7, 3.0])
def test_softmax_frequencies(alpha: float) -> None:
    row = torch.tensor([0.0, 1.0, 2.0, NAN, 0.5, -INF])
    n = 20000
    out = select(row.expand(n, -1), alpha, gen(3))
    valid = torch.tensor([0, 1, 2, 4])
    expected = torch.zeros(6, dtype=torch.float64)
    expected[valid] = torch.softmax(row[valid].double() / alpha, dim=0)
    freq = torch.bincount(out.index, minlength=6).double() / n
    assert freq[3] == 0 and freq[5] == 0
    assert torch.allclose(freq, expected, atol=0.02)
    assert out.fallback_rows == 0


def test_pos_inf_with_alpha_picks_uniformly_among_inf() -> None:
    n = 10000
    row = torch.tensor([1e300, INF, 5.0, INF, NAN], dtype=torch.float64)
    out = select(row.expand(n, -1), 1.0, gen(4))
    assert set(out.index.tolist()) <= {1, 3}
    assert abs((out.index == 1).double().mean().item() - 0.5) < 0.03


def test_huge_values_do_not_overflow() -> None:
    n = 1000
    values = torch.tensor([1e30, 2e30, -1e30, NAN]).expand(n, -1)
    out = select(values, 1.0, gen(5))
    assert (out.index == 1).all()
    extreme = torch.tensor([[-1.7e308, 1.7e308, 1.6e308]], dtype=torch.float64)
    assert select(extreme, 1e-3, gen(6)).index.tolist() == [1]
    # A tiny alpha behaves like argmax without producing inf/NaN weights.
    tiny = torch.tensor([[1.0, 1.001, 0.5]])
    assert select(tiny, 1e-300, gen(7)).index.tolist() == [1]
    lw = tilted_log_weights(torch.tensor([1e30, 2e30, -1e30, NAN]), 1e-10)
    assert not torch.isnan(lw).any()
    p = log_weights_to_probs(lw)
    assert torch.equal(p, torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64))


def test_per_row_generators_make_rows_independent() -> None:
    torch.manual_seed(0)
    values = torch.randn(6, 5)
    seeds = [100, 101, 102, 103, 104, 105]
    full = select(values, 1.0, gens(seeds)).index

    changed = values.clone()
    changed[0] = torch.randn(5)
    changed[3] = torch.tensor([NAN] * 5)
    other = select(changed, 1.0, gens(seeds)).index
    for i in (1, 2, 4, 5):
        assert other[i] == full[i]

    split = torch.cat([select(values[:2], 1.0, gens(seeds[:2])).index, select(values[2:], 1.0, gens(seeds[2:])).index])
    assert torch.equal(split, full)
    # Each row alone, in any order, also gives the same picks.
    for i in reversed(range(6)):
        assert select(values[i : i + 1], 1.0, gens([seeds[i]])).index.item() == full[i]


def test_same_seed_same_result_and_seed_matters() -> None:
    values = torch.randn(500, 8, generator=gen(8))
    a = select(values, 0.5, gen(9)).index
    b = select(values, 0.5, gen(9)).index
    c = select(values, 0.5, gen(10)).index
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_select_does_not_modify_input_and_accepts_low_precision() -> None:
    values = torch.tensor([[1.0, NAN, -INF, 2.0], [INF, 0.0, 1.0, NAN]], dtype=torch.float16)
    before = values.clone()
    out = select(values, 0.3, gen(11))
    torch.testing.assert_close(values, before, rtol=0, atol=0, equal_nan=True)
    assert out.index[0] in (0, 3)
    assert out.index[1] == 0


@pytest.mark.parametrize("alpha", [-1.0, NAN, INF, -INF])
def test_select_rejects_bad_alpha(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha"):
        select(torch.zeros(2, 3), alpha)


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4), ()])
def test_select_rejects_bad_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="2-D"):
        select(torch.zeros(shape), 0.0)


def test_select_rejects_no_candidates_and_wrong_generator_count() -> None:
    with pytest.raises(ValueError, match="candidates"):
        select(torch.zeros(2, 0), 1.0)
    with pytest.raises(ValueError, match="generator"):
        select(torch.zeros(3, 2), 1.0, gens([1, 2]))


def test_select_empty_batch() -> None:
    out = select(torch.zeros(0, 3), 1.0)
    assert out.index.shape == (0,) and out.fallback_rows == 0


# --------------------------------------------------------------------------- weights


def test_log_weights_to_probs() -> None:
    lw = torch.tensor([0.0, math.log(3.0), NAN, -INF])
    before = lw.clone()
    p = log_weights_to_probs(lw)
    assert p.dtype == torch.float64
    torch.testing.assert_close(p, torch.tensor([0.25, 0.75, 0.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(lw, before, rtol=0, atol=0, equal_nan=True)

    assert torch.equal(
        log_weights_to_probs(torch.tensor([NAN, -INF, NAN])), torch.full((3,), 1 / 3, dtype=torch.float64)
    )
    p = log_weights_to_probs(torch.tensor([INF, 1e300, INF, NAN], dtype=torch.float64))
    assert torch.equal(p, torch.tensor([0.5, 0.0, 0.5, 0.0], dtype=torch.float64))
    p = log_weights_to_probs(torch.tensor([1e308, -1e308, 1e308], dtype=torch.float64))
    assert not torch.isnan(p).any()
    torch.testing.assert_close(p, torch.tensor([0.5, 0.0, 0.5], dtype=torch.float64))
    rnd = torch.randn(50, generator=gen(12)) * 30
    torch.testing.assert_close(log_weights_to_probs(rnd), torch.softmax(rnd.double(), 0))


def test_effective_sample_size() -> None:
    assert effective_sample_size(torch.zeros(7)) == pytest.approx(7.0)
    assert effective_sample_size(torch.tensor([0.0, -INF, -INF])) == pytest.approx(1.0)
    assert effective_sample_size(torch.tensor([3.0, 3.0, -INF, NAN])) == pytest.approx(2.0)
    assert effective_sample_size(torch.tensor([NAN, NAN])) == pytest.approx(2.0)
    lw = torch.log(torch.tensor([0.5, 0.25, 0.25]))
    assert effective_sample_size(lw) == pytest.approx(1 / (0.25 + 0.0625 + 0.0625))


def test_tilted_log_weights() -> None:
    v = torch.tensor([1.0, 2.0, NAN, -INF, 4.0])
    lw = tilted_log_weights(v, 0.5)
    assert lw.dtype == torch.float64
    assert lw[2] == -INF and lw[3] == -INF
    finite = torch.tensor([0, 1, 4])
    diff = lw[finite] - v[finite].double() / 0.5
    torch.testing.assert_close(diff, diff[0].expand(3))  # equal up to a constant
    torch.testing.assert_close(log_weights_to_probs(lw)[finite], torch.softmax(v[finite].double() / 0.5, 0))

    lw0 = tilted_log_weights(torch.tensor([1.0, 4.0, NAN, 4.0, -INF]), 0.0)
    assert lw0.tolist() == [-INF, 0.0, -INF, 0.0, -INF]
    assert tilted_log_weights(torch.tensor([1.0, INF, NAN]), 0.0).tolist() == [-INF, 0.0, -INF]
    assert tilted_log_weights(torch.tensor([1.0, INF]), 2.0)[1] == INF
    with pytest.raises(ValueError, match="alpha"):
        tilted_log_weights(v, -0.1)


# --------------------------------------------------------------------------- resampling

PROBS = torch.tensor([0.05, 0.0, 0.31, 0.12, 0.0, 0.52], dtype=torch.float64)


def _log_w() -> torch.Tensor:
    lw = torch.log(PROBS) + 2.5  # an arbitrary constant must not matter
    lw[4] = NAN  # NaN and -inf (index 1) are never chosen
    return lw


def _counts(method: str, num: int, reps: int, seed: int) -> torch.Tensor:
    g = gen(seed)
    lw = _log_w()
    out = torch.empty(reps, PROBS.numel(), dtype=torch.long)
    for r in range(reps):
        idx = resample(lw, method, g, num)
        assert idx.dtype == torch.long and idx.shape == (num,)
        assert torch.equal(idx, torch.sort(idx).values)
        out[r] = torch.bincount(idx, minlength=PROBS.numel())
    return out


@pytest.mark.parametrize("method", RESAMPLING_METHODS)
@pytest.mark.parametrize("num", [6, 11])
def test_resampling_is_unbiased_and_skips_invalid(method: str, num: int) -> None:
    counts = _counts(method, num, 3000, seed=13)
    assert (counts[:, 1] == 0).all() and (counts[:, 4] == 0).all()
    assert (counts.sum(1) == num).all()
    mean = counts.double().mean(0)
    torch.testing.assert_close(mean, num * PROBS, atol=0.1, rtol=0)


@pytest.mark.parametrize("num", [6, 11])
def test_systematic_counts_are_floor_or_ceil(num: int) -> None:
    counts = _counts("systematic", num, 500, seed=14)
    expected = num * PROBS
    assert (counts >= torch.floor(expected - 1e-9)).all()
    assert (counts <= torch.ceil(expected + 1e-9)).all()


@pytest.mark.parametrize("num", [6, 11])
def test_stratified_counts_stay_close(num: int) -> None:
    counts = _counts("stratified", num, 500, seed=15)
    expected = num * PROBS
    assert (counts >= torch.floor(expected) - 1).all()
    assert (counts <= torch.ceil(expected) + 1).all()


@pytest.mark.parametrize("num", [6, 11])
def test_residual_keeps_deterministic_copies(num: int) -> None:
    counts = _counts("residual", num, 500, seed=16)
    assert (counts >= torch.floor(num * PROBS - 1e-9)).all()


def test_multinomial_counts_vary() -> None:
    counts = _counts("multinomial", 6, 200, seed=17)
    # iid draws are not floor/ceil constrained: some repetition leaves the 0.52 entry unchosen
    # or picks it more than ceil(6 * 0.52) = 4 times.
    assert ((counts[:, 5] == 0) | (counts[:, 5] > 4)).any()


@pytest.mark.parametrize("method", ["systematic", "residual"])
def test_exact_proportions_are_reproduced(method: str) -> None:
    # p = [1/4, 1/4, 0, 1/4, 1/4] exactly, so 8 draws must copy each valid entry twice.
    lw = torch.tensor([0.0, 0.0, -INF, 0.0, 0.0])
    for seed in range(20):
        assert resample(lw, method, gen(seed), num=8).tolist() == [0, 0, 1, 1, 3, 3, 4, 4]


@pytest.mark.parametrize("method", RESAMPLING_METHODS)
def test_resample_special_weights(method: str) -> None:
    g = gen(18)
    idx = resample(torch.tensor([1e300, INF, 2.0, INF, NAN], dtype=torch.float64), method, g, num=40)
    assert set(idx.tolist()) <= {1, 3}
    idx = resample(torch.tensor([NAN, -INF, NAN]), method, g, num=30)  # all invalid: uniform
    assert idx.min() >= 0 and idx.max() <= 2
    idx = resample(torch.tensor([-INF, 0.0, -INF]), method, g)
    assert idx.tolist() == [1, 1, 1]
    assert resample(torch.zeros(4), method, g, num=0).shape == (0,)


@pytest.mark.parametrize("method", RESAMPLING_METHODS)
def test_resample_is_reproducible_and_uses_first_generator(method: str) -> None:
    lw = torch.randn(20, generator=gen(19))
    a = resample(lw, method, gen(20))
    b = resample(lw, method, [gen(20), *gens(list(range(21, 40)))])
    assert torch.equal(a, b)
    before = lw.clone()
    resample(lw, method, None)
    assert torch.equal(lw, before)


def test_resample_errors() -> None:
    with pytest.raises(ValueError, match="multinomial, systematic, stratified, residual"):
        resample(torch.zeros(3), "bogus")
    with pytest.raises(ValueError, match="1-D"):
        resample(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="num"):
        resample(torch.zeros(3), num=-1)
    with pytest.raises(ValueError, match="empty"):
        resample(torch.zeros(0), num=2)
    with pytest.raises(ValueError, match="1-D"):
        effective_sample_size(torch.zeros(2, 2))


def test_inverse_cdf_boundaries_never_pick_zero_weight() -> None:
    from svdd.sampling.selection import _inverse_cdf

    p = torch.tensor([0.0, 0.5, 0.0, 0.5, 0.0], dtype=torch.float64)
    u = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0 - 1e-17, 1.0], dtype=torch.float64)
    assert _inverse_cdf(p, u).tolist() == [1, 1, 3, 3, 3, 3]
    rows = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    assert _inverse_cdf(rows, torch.tensor([[1.0], [1.0]], dtype=torch.float64)).tolist() == [[1], [0]]
