"""Beam search over the denoising tree (`method="beam"`): global survivors, counts, options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import requested, seeded, weighted_sum

import svdd
from svdd.sampling.beam import first_of_each_state, survivors

N, M = 6, 4


def near_two(xs):
    return [-((x - 2.0) ** 2) for x in xs]


class RowsAt:
    """Wraps a process and records the rows of every model call by timestep."""

    def __init__(self, process):
        self.process = process
        self.timesteps = process.timesteps
        self.rows_at: dict = {}

    def model(self, x, t):
        self.rows_at[t] = self.rows_at.get(t, 0) + x.shape[0]
        return self.process.model(x, t)

    def __getattr__(self, name):
        return getattr(self.process, name)


def beam(process, reward=weighted_sum, **kw):
    kw.setdefault("num_samples", N)
    kw.setdefault("num_candidates", M)
    kw.setdefault("generator", seeded(0))
    return svdd.sample(process, reward, method="beam", progress=False, **kw)


@pytest.mark.parametrize("width", [None, 3, 10])
def test_pm_counts_per_step(masked_toy, width):
    process = RowsAt(masked_toy)
    res = beam(process, beam_width=width)
    a = width or N
    t0, t1, t2 = masked_toy.timesteps
    assert process.rows_at == {t0: a, t1: a * M, t2: a * M}  # survivors' outputs are reused
    assert res.stats["model_calls"] == a + 2 * a * M
    assert res.stats["value_calls"] == 2 * a * M
    assert requested(res.stats) == 3 * a * M
    assert len(res.samples) == N and res.rewards.shape == (N,)


def test_with_beam_width_n_the_budget_is_svdds(masked_toy, mixture):
    for process, reward in ((masked_toy, weighted_sum), (mixture, near_two)):
        b = beam(process, reward)
        s = svdd.sample(
            process, reward, method="svdd", num_samples=N, num_candidates=M, generator=seeded(0), progress=False
        )
        for key in ("model_calls", "value_calls"):
            assert b.stats[key] == s.stats[key]
        assert requested(b.stats) == requested(s.stats)


def test_mc_value_counts(masked_toy, chain, toy_rewards):
    process = RowsAt(masked_toy)
    res = beam(process, value=svdd.LearnedValue(chain.value_function(toy_rewards, 0.5)))
    assert set(process.rows_at.values()) == {N}  # one model call per surviving state
    assert res.stats["value_calls"] == 2 * N * M
    assert requested(res.stats) == N * M


def test_the_best_children_survive_wherever_their_parent_is():
    states = torch.arange(12).reshape(12, 1).float()  # 3 parents x 4 children, all distinct
    values = torch.tensor([9.0, 8.0, 7.0, 6.0, 1.0, 2.0, 3.0, 0.5, 0.1, float("nan"), 0.2, 0.3], dtype=torch.float64)
    keep = survivors(states, values, 3, 0.0, None)
    assert keep.tolist() == [0, 1, 2]  # all from parent 0: SVDD would keep one per parent
    keep_all = survivors(states, values, 12, 0.0, None)
    assert keep_all[-1].item() == 9  # NaN last


def test_identical_children_count_once():
    states = torch.tensor([[1, 1], [1, 1], [2, 2], [3, 3], [1, 1]])
    values = torch.tensor([5.0, 5.0, 1.0, 0.0, 5.0], dtype=torch.float64)
    assert first_of_each_state(states).tolist() == [True, False, True, True, False]
    assert survivors(states, values, 3, 0.0, None).tolist() == [0, 2, 3]  # distinct first
    assert survivors(states, values, 4, 0.0, None).tolist() == [0, 2, 3, 1]  # then copies fill


def test_alpha_draws_survivors_in_proportion_to_exp_v_over_alpha():
    states = torch.arange(4).reshape(4, 1)
    values = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64))
    gen = seeded(0)
    first = [survivors(states, values, 1, 1.0, gen).item() for _ in range(4000)]
    freq = np.bincount(first, minlength=4) / 4000
    assert np.allclose(freq, [0.1, 0.2, 0.3, 0.4], atol=0.03)  # Gumbel top-1 = a softmax draw
    assert len(set(survivors(states, values, 4, 1.0, gen).tolist())) == 4  # without replacement


def test_beam_finds_high_rewards_and_keeps_distinct_samples(masked_toy, mixture):
    res = beam(masked_toy)
    pre = svdd.sample(
        masked_toy, weighted_sum, method="pretrained", num_samples=64, generator=seeded(0), progress=False
    )
    assert np.median(res.rewards) > np.quantile(pre.rewards, 0.9)
    assert len(set(res.samples)) == N  # the top N distinct sequences, not N copies of the best
    assert list(res.rewards) == sorted(res.rewards, reverse=True)
    cont = beam(mixture, near_two, num_samples=8)
    assert np.median(cont.rewards) > -0.05


def test_same_seed_same_samples(mixture):
    a = beam(mixture, near_two, generator=seeded(4), alpha=0.3)
    b = beam(mixture, near_two, generator=seeded(4), alpha=0.3, max_batch=5)
    c = beam(mixture, near_two, generator=seeded(5), alpha=0.3)
    assert torch.equal(a.states, b.states) and not torch.equal(a.states, c.states)


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        (dict(beam_width=0), ValueError, "beam_width must be an integer >= 1; got 0"),
        (dict(beam_width="wide"), TypeError, "beam_width must be an integer"),
        (dict(beam_width=1, num_candidates=2), ValueError, r"beam_width·num_candidates must be >= num_samples"),
        (dict(groups=2), TypeError, "unknown option.*groups"),
    ],
)
def test_bad_options(masked_toy, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        beam(masked_toy, **kwargs)
