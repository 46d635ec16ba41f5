"""SVDD selecting over random start states (`select_start`) and `PosteriorMean(num_x0_samples=S)`."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import count_threes, random_denoiser, requested, seeded, weighted_sum

import svdd
from svdd.processes.masked import MaskedDiffusion
from svdd.rng import repeat_generators
from svdd.sampling.values import soft_mean

N, M = 6, 4


class FirstModelInput:
    """Wraps a process and keeps the states of the first model call at the first timestep."""

    def __init__(self, process):
        self.process, self.timesteps, self.first = process, process.timesteps, None
        self.model_rows = 0

    def model(self, x, t):
        self.model_rows += x.shape[0]
        if self.first is None and t == self.timesteps[0]:
            self.first = x.clone()
        return self.process.model(x, t)

    def __getattr__(self, name):
        return getattr(self.process, name)


@pytest.fixture
def seed_edit():
    process = MaskedDiffusion(random_denoiser, vocab_size=4, length=20, num_steps=10)
    return process.from_seed(torch.arange(20) % 3, mask_fraction=0.3)


def sample(process, method="svdd", reward=count_threes, **kw):
    kw.setdefault("num_samples", N)
    kw.setdefault("num_candidates", M)
    kw.setdefault("generator", seeded(0))
    return svdd.sample(process, reward, method=method, progress=False, **kw)


# -- select_start ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["svdd", "svdd_r"])
def test_select_start_costs_n_m_model_and_value_calls_at_the_first_step(seed_edit, method):
    k = len(seed_edit.timesteps)
    plain = sample(seed_edit, method, alpha=0.5)
    chosen = sample(seed_edit, method, alpha=0.5, select_start=True)
    assert plain.stats["model_calls"] == N + (k - 1) * N * M
    assert chosen.stats["model_calls"] == N * M + (k - 1) * N * M  # the winner's output is reused
    assert chosen.stats["value_calls"] == plain.stats["value_calls"] + N * M
    assert requested(chosen.stats) == requested(plain.stats) + N * M


def test_select_start_keeps_the_best_scored_start(seed_edit):
    def fewest_masks_first(x, t):  # an MC value: prefers masks late in the sequence
        masked = (x == seed_edit.mask_index).float()
        return (masked * torch.arange(20)).sum(-1)

    value = svdd.LearnedValue(fewest_masks_first)
    process = FirstModelInput(seed_edit)
    gens = [seeded(30 + i) for i in range(N)]
    res = sample(process, value=value, generator=gens, select_start=True)
    starts = seed_edit.prior(N * M, repeat_generators([seeded(30 + i) for i in range(N)], M))
    best = fewest_masks_first(starts, None).view(N, M).argmax(dim=1)
    assert torch.equal(process.first, starts.view(N, M, -1)[torch.arange(N), best])
    assert process.model_rows == len(seed_edit.timesteps) * N  # MC: no extra model call
    assert res.stats["value_calls"] == N * M + (len(seed_edit.timesteps) - 1) * N * M


def test_select_start_with_one_candidate_is_plain_svdd(seed_edit):
    plain = sample(seed_edit, num_candidates=1, generator=[seeded(i) for i in range(N)])
    chosen = sample(seed_edit, num_candidates=1, generator=[seeded(i) for i in range(N)], select_start=True)
    assert torch.equal(plain.states, chosen.states)


def test_select_start_refuses_a_one_state_prior(masked_toy):
    with pytest.raises(ValueError, match="select_start needs a random start state"):
        sample(masked_toy, reward=weighted_sum, select_start=True)
    assert masked_toy.denoiser.calls == 0
    with pytest.raises(TypeError, match="select_start must be True or False"):
        sample(masked_toy, reward=weighted_sum, select_start=1)


def test_select_start_on_a_continuous_process(mixture):
    def near_two(xs):
        return [-((x - 2.0) ** 2) for x in xs]

    res = sample(mixture, reward=near_two, select_start=True, max_batch=8)
    assert res.stats["model_calls"] == len(mixture.timesteps) * N * M


# -- PosteriorMean over x0 draws ------------------------------------------------------------------


def test_one_draw_is_the_argmax_estimate(masked_toy):
    default = sample(masked_toy, reward=weighted_sum)
    one = sample(masked_toy, reward=weighted_sum, value=svdd.PosteriorMean(weighted_sum, num_x0_samples=1))
    assert torch.equal(default.states, one.states)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_s_draws_make_s_reward_calls_per_scored_state(masked_toy, alpha):
    s, k = 3, len(masked_toy.timesteps)
    res = sample(masked_toy, reward=weighted_sum, alpha=alpha, value=svdd.PosteriorMean(weighted_sum, num_x0_samples=s))
    assert res.stats["value_calls"] == (k - 1) * N * M
    assert requested(res.stats) == s * (k - 1) * N * M + N * M  # clean candidates: one each
    assert res.stats["model_calls"] == N + (k - 1) * N * M


def test_draws_come_from_the_posterior_with_unmasked_tokens_copied(masked_toy):
    x = torch.tensor([[3, 1, 3]] * 20000)  # first and last masked, middle token 1
    out = masked_toy.model(x, 1.0)
    draws = masked_toy.sample_x0(x, 1.0, out, seeded(1))
    assert (draws[:, 1] == 1).all() and (draws != masked_toy.mask_index).all()
    probs = torch.softmax(out[0, 0].double(), -1)
    freq = torch.bincount(draws[:, 0], minlength=3).double() / 20000
    assert torch.allclose(freq, probs, atol=0.015)
    assert torch.equal(masked_toy.denoised(x[:1], 1.0, out[:1]), torch.where(x[:1] == 3, out[:1].argmax(-1), x[:1]))


def test_soft_mean():
    r = torch.tensor([[0.0, 1.0], [2.0, math.nan], [math.nan, math.nan]], dtype=torch.float64)
    at_zero = soft_mean(r, 0.0)
    assert at_zero[:2].tolist() == [0.5, 2.0] and math.isnan(at_zero[2])
    at_half = soft_mean(r, 0.5)
    assert at_half[0].item() == pytest.approx(0.5 * math.log((1 + math.exp(2)) / 2))
    assert at_half[1].item() == pytest.approx(0.5 * math.log(math.exp(4) / 2))  # an invalid draw counts as 0
    assert math.isnan(at_half[2])
    big = soft_mean(torch.tensor([[1000.0, 1000.0]], dtype=torch.float64), 0.01)
    assert big.item() == pytest.approx(1000.0)  # no overflow


def test_draws_need_a_masked_process_and_a_valid_count(mixture):
    with pytest.raises(TypeError, match=r"process\.sample_x0"):
        svdd.sample(
            mixture, lambda xs: [0.0] * len(xs), value=svdd.PosteriorMean(lambda xs: [0.0] * len(xs), num_x0_samples=2)
        )
    with pytest.raises(ValueError, match="num_x0_samples must be an integer >= 1; got 0"):
        svdd.PosteriorMean(weighted_sum, num_x0_samples=0)
    assert "num_x0_samples=4" in repr(svdd.PosteriorMean(weighted_sum, num_x0_samples=4))


def test_per_sample_generators_keep_samples_independent_of_the_batch(masked_toy):
    value = svdd.PosteriorMean(weighted_sum, num_x0_samples=2)
    whole = sample(masked_toy, reward=weighted_sum, value=value, alpha=0.3, generator=[seeded(i) for i in range(6)])
    part = sample(
        masked_toy, reward=weighted_sum, value=value, alpha=0.3, num_samples=2, generator=[seeded(i) for i in range(2)]
    )
    assert torch.equal(whole.states[:2], part.states)
