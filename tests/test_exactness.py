"""Exactness on toys where the pretrained distribution, the soft values and the tilted target
are computed by enumeration (svdd.processes.toys.ExactChain)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import seeded, weighted_sum

import svdd
from svdd.processes.toys import all_sequences, total_variation


def run(process, method, n, m, alpha, value=None, seed=1, **options):
    return svdd.sample(
        process,
        weighted_sum,
        method=method,
        value=value,
        num_samples=n,
        num_candidates=m,
        alpha=alpha,
        generator=seeded(seed),
        progress=False,
        **options,
    )


def test_enumeration_matches_pretrained_sampling(masked_toy, chain):
    res = run(masked_toy, "pretrained", 6000, 1, 0.0)
    assert total_variation(chain.distribution_of(res.samples), chain.pretrained()) < 0.04
    # reachability differs from the data: simultaneous unmasking reaches (0,2,2) etc., but the
    # first token is never 2
    assert chain.pretrained()[all_sequences(3, 3)[:, 0] == 2].sum() == 0


def test_svdd_with_exact_soft_value_matches_the_tilted_target(masked_toy, chain, toy_rewards):
    alpha = 1.0
    target = chain.target(toy_rewards, alpha)
    assert total_variation(chain.pretrained(), target) > 0.25  # the test has power
    value = svdd.LearnedValue(chain.value_function(toy_rewards, alpha))
    res = run(masked_toy, "svdd", 8000, 64, alpha, value=value)
    assert total_variation(chain.distribution_of(res.samples), target) < 0.05


def test_svdd_small_alpha_concentrates_on_best_reachable_sequences(masked_toy, chain, toy_rewards):
    best = chain.target(toy_rewards, 0.0) > 0
    best_seqs = all_sequences(3, 3)[best]
    # the global best (2,2,2) is unreachable; the best reachable ones start with 1
    assert (best_seqs[:, 0] == 1).all() and toy_rewards.argmax() == 26
    value = svdd.LearnedValue(chain.value_function(toy_rewards, 0.02))
    res = run(masked_toy, "svdd", 2000, 32, 0.0, value=value)
    assert (chain.distribution_of(res.samples) * best).sum() > 0.95
    assert (chain.pretrained() * best).sum() < 0.1


@pytest.mark.parametrize("resampling", ["multinomial", "systematic", "stratified", "residual"])
def test_smc_with_many_particles_approaches_the_target(masked_toy, chain, toy_rewards, resampling):
    alpha = 1.0
    value = svdd.LearnedValue(chain.value_function(toy_rewards, alpha))
    res = run(masked_toy, "smc", 3000, 4, alpha, value=value, resampling=resampling)
    assert total_variation(chain.distribution_of(res.samples), chain.target(toy_rewards, alpha)) < 0.05


def test_smc_weight_carry_over_with_ess_threshold(masked_toy, chain, toy_rewards):
    """With an ESS threshold, steps that skip resampling must carry their weights forward."""
    alpha = 1.0
    value = svdd.LearnedValue(chain.value_function(toy_rewards, alpha))
    res = run(masked_toy, "smc", 3000, 4, alpha, value=value, resampling="systematic", ess_threshold=0.3)
    assert not all(step["resampled"] for step in res.trace)  # some steps did carry weights over
    assert total_variation(chain.distribution_of(res.samples), chain.target(toy_rewards, alpha)) < 0.05


def test_posterior_mean_shifts_gaussian_mixture_toward_the_optimum(mixture):
    def near_two(xs):
        return [-((x - 2.0) ** 2) for x in xs]

    kw = dict(num_samples=256, num_candidates=8, generator=seeded(0), progress=False)
    pre = svdd.sample(mixture, near_two, method="pretrained", **kw)
    pm = svdd.sample(mixture, near_two, method="svdd", **kw)
    pre_mean, pm_mean = np.mean(pre.samples), np.mean(pm.samples)
    assert abs(pre_mean) < 0.5  # two symmetric modes at -2 and 2
    assert pm_mean > 1.5 and pm_mean - pre_mean > 1.0
    assert np.median(pm.rewards) > np.quantile(pre.rewards, 0.9)


def test_dps_shifts_gaussian_mixture_with_a_differentiable_reward(mixture):
    reward = svdd.rewards.TorchReward(lambda x: -((x.reshape(len(x), -1)[:, 0] - 2.0) ** 2))
    kw = dict(num_samples=256, generator=seeded(0), progress=False)
    pre = svdd.sample(mixture, reward, method="pretrained", **kw)
    guided = svdd.sample(mixture, reward, method="dps", guidance_scale=0.05, **kw)
    assert np.mean(guided.samples) - np.mean(pre.samples) > 1.0
    assert guided.stats["model_calls"] == 256 * len(mixture.timesteps)
