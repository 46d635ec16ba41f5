"""The value protocol: a user's own value class drives svdd.sample with no isinstance dispatch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import seeded, weighted_sum

import svdd
from svdd.sampling.values import Value

N, M = 6, 4


class MyPosteriorMean:
    """PM written by a user: reward of the denoised decode, through the counted calls."""

    needs_model_output = True

    def __init__(self, reward):
        self.reward = reward
        self.seen_out = []

    def estimate(self, x, t, out, calls, generator):
        self.seen_out.append(out is not None)
        return calls.score(self.reward, calls.decode(calls.denoised(x, t, out)))

    def clean_reward(self, objective):
        return self.reward


class MyLearned:
    """MC written by a user: any function of the raw state, timed as value time; returns a list."""

    needs_model_output = False

    def __init__(self, fn):
        self.fn = fn

    def estimate(self, x, t, out, calls, generator):
        assert out is None
        with calls.timed("value_time_s"):
            return self.fn(x, t).tolist()

    def clean_reward(self, objective):
        return objective


class NoisyValue(MyLearned):
    """A value that draws from the candidates' random stream (one generator per row here)."""

    def estimate(self, x, t, out, calls, generator):
        assert isinstance(generator, list) and len(generator) == x.shape[0]
        noise = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in generator])
        return self.fn(x, t) + 0.1 * noise


def mc_fn(x, t):
    return (x.to(torch.float64) * torch.tensor([1.0, 0.7, 0.4], dtype=torch.float64)).sum(-1) * (1 - t)


def sample(process, **kw):
    kw.setdefault("generator", seeded(0))
    return svdd.sample(process, weighted_sum, num_samples=N, num_candidates=M, progress=False, **kw)


def test_the_shipped_values_implement_the_protocol():
    assert isinstance(svdd.PosteriorMean(weighted_sum), Value)
    assert isinstance(svdd.LearnedValue(mc_fn), Value)
    assert isinstance(MyPosteriorMean(weighted_sum), Value)


def test_a_user_pm_class_gives_the_built_in_pm_samples_and_counts(masked_toy):
    mine = MyPosteriorMean(weighted_sum)
    ours = sample(masked_toy, value=mine)
    built_in = sample(masked_toy)
    assert torch.equal(ours.states, built_in.states)
    assert np.array_equal(ours.rewards, built_in.rewards)
    counters = ("model_calls", "model_batches", "reward_calls", "value_calls", "fallback_rows")
    assert {k: ours.stats[k] for k in counters} == {k: built_in.stats[k] for k in counters}
    assert mine.seen_out and all(mine.seen_out)  # it asked for the model output and got it


@pytest.mark.parametrize("method, alpha", [("svdd", 0.0), ("svdd", 0.5), ("smc", 0.5), ("svdd_r", 0.5)])
def test_a_user_mc_class_gives_the_learned_value_samples(masked_toy, method, alpha):
    ours = sample(masked_toy, value=MyLearned(mc_fn), method=method, alpha=alpha)
    built_in = sample(masked_toy, value=svdd.LearnedValue(mc_fn), method=method, alpha=alpha)
    assert torch.equal(ours.states, built_in.states)
    assert ours.stats["model_calls"] == built_in.stats["model_calls"]
    assert ours.stats["value_time_s"] > 0


def test_a_value_may_draw_from_the_candidates_generators(masked_toy):
    gens = [seeded(10 + i) for i in range(N)]
    a = sample(masked_toy, value=NoisyValue(mc_fn), generator=gens)
    b = sample(masked_toy, value=NoisyValue(mc_fn), generator=[seeded(10 + i) for i in range(N)])
    assert torch.equal(a.states, b.states)
    # sample 0 alone draws the same numbers: its values use only its own generator
    alone = svdd.sample(
        masked_toy,
        weighted_sum,
        value=NoisyValue(mc_fn),
        num_samples=1,
        num_candidates=M,
        generator=[seeded(10)],
        progress=False,
    )
    assert torch.equal(alone.states[0], a.states[0])


def test_clean_reward_decides_the_last_selection_and_the_objective_scores_the_result(masked_toy):
    last_step = []

    def negated(seqs):
        last_step.append(len(seqs))
        return [-r for r in weighted_sum(seqs)]

    class WorstAtTheEnd(MyPosteriorMean):
        def clean_reward(self, objective):
            return negated

    worst = sample(masked_toy, value=WorstAtTheEnd(weighted_sum), reward_cache=0)  # every candidate scored
    best = sample(masked_toy)
    assert last_step == [N * M]  # the last step's clean candidates, scored by the value's choice
    assert np.array_equal(worst.rewards, np.asarray(weighted_sum(worst.samples)))  # objective rewards
    assert worst.rewards.mean() < best.rewards.mean()


class NoCleanReward:
    needs_model_output = False

    def estimate(self, x, t, out, calls, generator):
        return torch.zeros(x.shape[0])


@pytest.mark.parametrize(
    "value, missing",
    [(lambda x, t: x, "needs_model_output, estimate, clean_reward"), (NoCleanReward(), "clean_reward")],
)
def test_an_object_without_the_protocol_is_refused_before_any_work(masked_toy, value, missing):
    with pytest.raises(TypeError, match=f"which lacks {missing} .*svdd.LearnedValue"):
        sample(masked_toy, value=value)
    assert masked_toy.denoiser.calls == 0


def test_a_bad_estimate_shape_names_the_value(masked_toy):
    class Short(MyLearned):
        def estimate(self, x, t, out, calls, generator):
            return torch.zeros(x.shape[0] - 1)

    with pytest.raises(ValueError, match=r"Short.*returned shape"):
        sample(masked_toy, value=Short(mc_fn))
