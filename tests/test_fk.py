"""FK steering (`method="fk"`): per-step call counts, groups, weights, options and exactness on the toy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import requested, seeded, weighted_sum

import svdd
from svdd.processes.toys import GaussianMixtureDiffusion, total_variation
from svdd.sampling.fk import PathScores, scored_steps

N, M = 6, 4


def near_two(xs):
    return [-((x - 2.0) ** 2) for x in xs]


class PerStep:
    """Model rows and reward objects counted per denoising step (through svdd.sample's callback)."""

    def __init__(self, process, reward):
        self.process, self.reward = process, reward
        self.model_rows = self.reward_objects = 0
        self.model_steps: list[int] = []
        self.reward_steps: list[int] = []

    def wrapped_reward(self, objects):
        self.reward_objects += len(objects)
        return self.reward(objects)

    def callback(self, info):
        self.model_steps.append(
            self.process.denoiser.calls - sum(self.model_steps)
            if hasattr(self.process, "denoiser")
            else self.process.calls - sum(self.model_steps)
        )
        self.reward_steps.append(self.reward_objects - sum(self.reward_steps))


def run(process, reward=weighted_sum, *, n=N, m=M, alpha=0.5, seed=0, **options):
    return svdd.sample(
        process,
        reward,
        method="fk",
        num_samples=n,
        num_candidates=m,
        alpha=alpha,
        generator=seeded(seed) if not isinstance(seed, list) else seed,
        progress=False,
        **options,
    )


def counted(process, reward=weighted_sum, **kw):
    """A run whose reward records what each step asks it (no reward cache: every request reaches it)."""
    steps = PerStep(process, reward)
    res = run(process, steps.wrapped_reward, callback=steps.callback, reward_cache=0, **kw)
    return res, steps


# -- counts ---------------------------------------------------------------------------------------


def test_masked_counts_per_step_skip_the_all_mask_start(masked_toy):
    res, steps = counted(masked_toy)
    p = N * M
    assert steps.model_steps == [p, p, p]  # one model call per particle and step
    assert steps.reward_steps == [0, p, p]  # the all-mask start is one state: not scored
    assert res.stats["model_calls"] == 3 * p
    assert res.stats["value_calls"] == 2 * p
    assert requested(res.stats) == 2 * p + p  # + the clean particles at the end
    assert len(res.samples) == N and res.rewards.shape == (N,)
    assert [e["scored"] for e in res.trace] == [False, True, True]


def test_continuous_counts_score_every_step(mixture):
    k, p = len(mixture.timesteps), N * M
    res, steps = counted(mixture, near_two)
    assert steps.model_steps == [p] * k
    assert steps.reward_steps == [p] * k
    assert requested(res.stats) == (k + 1) * p and res.stats["value_calls"] == k * p


@pytest.mark.parametrize(
    "options, scored",
    [
        (dict(resample_every=2), [0, 2]),  # step 0 is the all-mask start: skipped
        (dict(resample_window=(1, 1)), [1]),
        (dict(resample_window=(1, 2), resample_every=5), [1]),
    ],
)
def test_a_schedule_scores_only_its_steps(masked_toy, options, scored):
    res, steps = counted(masked_toy, **options)
    p = N * M
    expected = [p if (k in scored and k > 0) else 0 for k in range(3)]
    assert steps.reward_steps == expected
    assert steps.model_steps == [p, p, p]
    assert requested(res.stats) == sum(expected) + p


def test_num_x0_samples_makes_s_reward_calls_per_scored_particle(masked_toy):
    s, p = 3, N * M
    res, steps = counted(masked_toy, num_x0_samples=s)
    assert steps.reward_steps == [0, s * p, s * p]
    assert res.stats["value_calls"] == 2 * p  # states scored, not draws
    assert res.stats["model_calls"] == 3 * p  # the draws need no extra model call


def test_mc_value_potentials(masked_toy, chain, toy_rewards):
    value = svdd.LearnedValue(chain.value_function(toy_rewards, 0.5))
    res = svdd.sample(
        masked_toy,
        weighted_sum,
        method="fk",
        value=value,
        num_samples=N,
        num_candidates=M,
        alpha=0.5,
        generator=seeded(0),
        progress=False,
    )
    assert res.stats["model_calls"] == 3 * N * M
    assert res.stats["value_calls"] == 2 * N * M
    assert requested(res.stats) == N * M  # the clean particles only


# -- what comes back ------------------------------------------------------------------------------


def test_best_of_each_group_or_all_particles(masked_toy):
    best = run(masked_toy, seed=3)
    everything = run(masked_toy, seed=3, return_all=True)
    assert len(everything.samples) == N * M and everything.rewards.shape == (N * M,)
    assert everything.states.shape == (N * M, 3)
    # the same run; the default keeps the highest reward of each group of M
    assert np.array_equal(best.rewards, everything.rewards.reshape(N, M).max(axis=1))
    assert best.rewards.shape == (N,) and len(best.samples) == N
    assert "final_ess" in best.trace[-1]


def test_groups_are_independent_with_per_sample_generators(masked_toy, mixture):
    for process, reward in ((masked_toy, weighted_sum), (mixture, near_two)):
        six = run(process, reward, seed=[seeded(40 + i) for i in range(6)], return_all=True)
        three = run(process, reward, n=3, seed=[seeded(40 + i) for i in range(3)], return_all=True)
        assert torch.equal(six.states[: 3 * M], three.states)


def test_same_seed_same_samples_and_chunking_does_not_matter(mixture):
    a = run(mixture, near_two, seed=5)
    b = run(mixture, near_two, seed=5, max_batch=5)
    c = run(mixture, near_two, seed=6)
    assert torch.equal(a.states, b.states) and not torch.equal(a.states, c.states)


def test_adaptive_resampling_carries_the_weights_it_does_not_use(mixture):
    res = run(mixture, near_two, n=4, m=32, alpha=0.2, ess_threshold=0.3)
    resampled = [e["resampled"] for e in res.trace]  # groups resampled at each step, of 4
    assert min(resampled) < 4 and sum(resampled) > 0  # some groups carried their weights on


def test_invalid_rewards_never_win_while_valid_ones_exist(masked_toy):
    def no_leading_zero(seqs):
        return [math.nan if s[0] == 0 else weighted_sum([s])[0] for s in seqs]

    res = run(masked_toy, no_leading_zero, n=16, m=16, alpha=1.0)
    pre = svdd.sample(
        masked_toy, no_leading_zero, method="pretrained", num_samples=64, generator=seeded(0), progress=False
    )
    assert np.isnan(pre.rewards).sum() > 10
    assert not np.isnan(res.rewards).any()


def test_path_scores_potentials_telescope_to_the_terminal_reward():
    scores = [
        torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64),
        torch.tensor([3.0, -1.0, math.nan], dtype=torch.float64),
    ]
    final = torch.tensor([2.0, -4.0, 1.0], dtype=torch.float64)
    lam = 0.7
    for potential in ("diff", "max", "add", "rt"):
        path, total = PathScores.start(3), torch.zeros(3, dtype=torch.float64)
        for s in scores:
            log_g, path = path.extended(potential, s, lam)
            total = total + torch.where(torch.isfinite(log_g), log_g, torch.zeros_like(log_g))
        assert torch.isneginf(log_g[2])  # a NaN score: weight 0 at that step
        # every potential times the terminal weight is exp(λ r(x0)) along each path
        assert torch.allclose(total + path.terminal(final, lam), lam * final)
    _, path = PathScores.start(2).extended("max", torch.tensor([-5.0, -3.0], dtype=torch.float64), 1.0)
    assert path.best.tolist() == [-5.0, -3.0]  # the running max starts at -inf, not 0
    assert torch.isneginf(PathScores.start(1).terminal(torch.tensor([math.nan], dtype=torch.float64), 1.0)).all()


def test_scored_steps():
    assert scored_steps(10, 1, None) == set(range(10))
    assert scored_steps(10, 3, None) == {0, 3, 6, 9}
    assert scored_steps(10, 20, (2, 8)) == {2}
    assert scored_steps(100, 20, (20, 80)) == {20, 40, 60, 80}  # FK's image default


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        (dict(alpha=0.0), ValueError, "fk needs alpha > 0"),
        (dict(potential="mean"), ValueError, "potential must be one of diff, max, add, rt; got 'mean'"),
        (dict(resample_every=0), ValueError, "resample_every must be an integer >= 1; got 0"),
        (dict(resample_every=1.5), TypeError, "resample_every must be an integer"),
        (dict(resample_window=(2, 1)), ValueError, r"resample_window must satisfy 0 <= first <= last <= 2"),
        (dict(resample_window=(0, 3)), ValueError, "resample_window must satisfy"),
        (dict(resample_window=5), TypeError, "resample_window must be None or a pair"),
        (dict(ess_threshold=0.0), ValueError, "ess_threshold must be in"),
        (dict(resampling="best"), ValueError, "resampling must be one of"),
        (dict(num_x0_samples=0), ValueError, "num_x0_samples must be an integer >= 1"),
        (dict(return_all="yes"), TypeError, "return_all must be True or False"),
        (dict(groups=2), TypeError, "unknown option.*groups"),
    ],
)
def test_bad_options_are_refused_before_any_work(masked_toy, kwargs, error, pattern):
    kwargs = {"alpha": 0.5, **kwargs}
    alpha = kwargs.pop("alpha")
    with pytest.raises(error, match=pattern):
        run(masked_toy, alpha=alpha, **kwargs)
    assert masked_toy.denoiser.calls == 0


def test_num_x0_samples_needs_the_posterior_mean_and_a_masked_process(masked_toy, mixture, chain, toy_rewards):
    value = svdd.LearnedValue(chain.value_function(toy_rewards, 0.5))
    with pytest.raises(TypeError, match="num_x0_samples applies to the posterior-mean value"):
        svdd.sample(masked_toy, weighted_sum, method="fk", value=value, alpha=0.5, num_x0_samples=2, progress=False)
    with pytest.raises(TypeError, match=r"process\.sample_x0"):
        run(mixture, near_two, num_x0_samples=2)
    with pytest.raises(ValueError, match="deterministic"):
        run(GaussianMixtureDiffusion(num_steps=5, eta=0.0), near_two)


class OwnPosteriorDraws:
    """A user's value class (not a svdd.PosteriorMean) that says it can score posterior draws of x0."""

    needs_model_output = True

    def __init__(self, reward, num_x0_samples=1):
        self.inner = svdd.PosteriorMean(reward, num_x0_samples=num_x0_samples)
        self.num_x0_samples = num_x0_samples
        self.asked_for: list[int] = []

    def estimate(self, x, t, out, calls, generator):
        return self.inner.estimate(x, t, out, calls, generator)

    def clean_reward(self, objective):
        return self.inner.reward

    def with_x0_samples(self, num_x0_samples):
        self.asked_for.append(num_x0_samples)
        return OwnPosteriorDraws(self.inner.reward, num_x0_samples)


def test_a_users_value_that_draws_x0_works_with_fk_num_x0_samples(masked_toy):
    """fk asks the value what it supports (with_x0_samples), never its class."""
    own = OwnPosteriorDraws(weighted_sum)
    mine = run(masked_toy, value=own, num_x0_samples=3)
    ours = run(masked_toy, num_x0_samples=3)
    assert own.asked_for == [3]
    assert mine.samples == ours.samples
    np.testing.assert_array_equal(mine.rewards, ours.rewards)
    assert mine.stats["reward_calls"] == ours.stats["reward_calls"]


def test_return_all_is_refused_in_batch_runs():
    from svdd.runs.generation import check_job
    from svdd.runs.shards import RunSettings

    settings = RunSettings(num_samples=4, method="fk", alpha=1.0, options={"return_all": True})
    with pytest.raises(ValueError, match="return_all is not available in batch runs"):
        check_job(object(), settings)  # refused before the job is even built


# -- exactness ------------------------------------------------------------------------------------


def fk_tv(process, chain, rewards, potential, reward=weighted_sum, alpha=1.0, n=16, m=2048, **options):
    res = run(process, reward, n=n, m=m, alpha=alpha, seed=1, potential=potential, return_all=True, **options)
    return total_variation(chain.distribution_of(res.samples), chain.target(rewards, alpha))


@pytest.mark.parametrize("potential", ["diff", "rt", "max", "add"])
def test_every_potential_reaches_the_tilted_target(masked_toy, chain, toy_rewards, potential):
    """With the terminal weight exp(λ r(x0)) / Π G_t every potential targets p·exp(r/α) (the
    reference code's running max/sum at the end would not, for max and add)."""
    assert total_variation(chain.pretrained(), chain.target(toy_rewards, 1.0)) > 0.25  # the test has power
    assert fk_tv(masked_toy, chain, toy_rewards, potential) < 0.05


def test_max_potential_steers_on_negative_and_large_rewards(masked_toy, chain, toy_rewards):
    """Shifted rewards have the same target: no 0 floor under the running max, no clamp at 1e10."""
    for shift in (-50.0, 50.0):

        def shifted(seqs, shift=shift):
            return [r + shift for r in weighted_sum(seqs)]

        assert fk_tv(masked_toy, chain, toy_rewards + shift, "max", reward=shifted, n=8, m=2048) < 0.05


def test_adaptive_resampling_and_x0_draws_still_reach_the_target(masked_toy, chain, toy_rewards):
    assert fk_tv(masked_toy, chain, toy_rewards, "diff", n=8, m=2048, ess_threshold=0.5) < 0.05
    assert fk_tv(masked_toy, chain, toy_rewards, "diff", n=8, m=1024, num_x0_samples=4) < 0.05
