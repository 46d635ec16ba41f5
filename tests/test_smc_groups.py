"""smc with independent particle groups (`groups=G`) and without scoring a one-state start."""

from __future__ import annotations

import pytest
import torch
from conftest import requested, seeded, weighted_sum

import svdd
from svdd.processes.masked import MaskedDiffusion
from svdd.processes.toys import total_variation
from svdd.sampling.particles import best_per_group, each_group_is_one_state, group_ess, resample_within

N, M = 6, 4


def near_two(xs):
    return [-((x - 2.0) ** 2) for x in xs]


def smc(process, reward=weighted_sum, *, n=N, m=M, alpha=0.5, generator=None, **options):
    return svdd.sample(
        process,
        reward,
        method="smc",
        num_samples=n,
        num_candidates=m,
        alpha=alpha,
        generator=generator if generator is not None else seeded(0),
        progress=False,
        **options,
    )


def test_one_group_is_the_global_population(masked_toy, mixture):
    for process, reward in ((masked_toy, weighted_sum), (mixture, near_two)):
        for extra in ({}, {"ess_threshold": 0.5}):
            default = smc(process, reward, generator=seeded(2), **extra)
            one = smc(process, reward, generator=seeded(2), groups=1, **extra)
            assert torch.equal(default.states, one.states)
            assert "resampled_groups" not in default.trace[0]


@pytest.mark.parametrize("groups", [2, 3, 6])
def test_groups_cost_the_same_and_return_n_samples(masked_toy, groups):
    res = smc(masked_toy, groups=groups)
    assert res.stats["model_calls"] == 3 * N * M
    assert requested(res.stats) == 3 * N * M
    assert len(res.samples) == N
    assert all(0 <= e["resampled_groups"] <= groups for e in res.trace)


def test_groups_of_one_sample_depend_on_their_own_generators(masked_toy, mixture):
    for process, reward in ((masked_toy, weighted_sum), (mixture, near_two)):
        six = smc(process, reward, generator=[seeded(70 + i) for i in range(6)], groups=6, ess_threshold=0.5)
        two = smc(process, reward, n=2, generator=[seeded(70 + i) for i in range(2)], groups=2, ess_threshold=0.5)
        assert torch.equal(six.states[:2], two.states)


def test_smc_scores_the_start_only_when_it_can_differ(masked_toy, mixture):
    k = len(mixture.timesteps)
    assert requested(smc(mixture, near_two).stats) == (k + 1) * N * M  # random start: scored
    assert requested(smc(masked_toy).stats) == 3 * N * M  # the all-mask start: one state

    def denoiser(x, t):
        return torch.zeros(x.shape[0], x.shape[1], 4)

    seeded_process = MaskedDiffusion(denoiser, vocab_size=4, length=10, num_steps=10)
    seed = torch.arange(10) % 4
    random_mask = seeded_process.from_seed(seed, mask_fraction=0.3)  # a fresh mask per particle
    fixed_mask = seeded_process.from_seed(seed, positions=[1, 4, 7])  # one start state for all

    def count(seqs):
        return [float(sum(s)) for s in seqs]

    kr, kf = len(random_mask.timesteps), len(fixed_mask.timesteps)
    assert requested(smc(random_mask, count).stats) == (kr + 1) * N * M
    assert requested(smc(fixed_mask, count).stats) == kf * N * M


def test_groups_must_divide_the_samples(masked_toy):
    with pytest.raises(ValueError, match=r"groups must divide num_samples.*groups=4 for num_samples=6"):
        smc(masked_toy, groups=4)
    with pytest.raises(TypeError, match="groups must be an integer"):
        smc(masked_toy, groups=2.0)
    with pytest.raises(ValueError, match="groups must be an integer >= 1"):
        smc(masked_toy, groups=0)
    assert masked_toy.denoiser.calls == 0


def test_grouped_smc_with_many_particles_approaches_the_target(masked_toy, chain, toy_rewards):
    value = svdd.LearnedValue(chain.value_function(toy_rewards, 1.0))
    res = svdd.sample(
        masked_toy,
        weighted_sum,
        method="smc",
        value=value,
        num_samples=3000,
        num_candidates=4,
        alpha=1.0,
        groups=10,
        generator=seeded(1),
        progress=False,
    )
    assert total_variation(chain.distribution_of(res.samples), chain.target(toy_rewards, 1.0)) < 0.05


def test_particle_group_helpers():
    log_w = torch.tensor([0.0, -torch.inf, 5.0, 5.0, 0.0, 0.0], dtype=torch.float64)
    assert group_ess(log_w, 3).tolist() == pytest.approx([1.0, 2.0, 2.0])
    which = torch.tensor([True, False, True])
    ancestors = resample_within(log_w, 3, "systematic", [seeded(0)] * 3, num=2, which=which)
    assert ancestors[:2].tolist() == [0, 0]  # group 0: the -inf particle is never drawn
    assert ancestors[2:4].tolist() == [2, 3]  # group 1 kept in place
    assert set(ancestors[4:].tolist()) <= {4, 5}
    with pytest.raises(ValueError, match="kept in place must keep its 2 particles"):
        resample_within(log_w, 3, "multinomial", [None] * 3, num=1, which=which)
    x = torch.tensor([[1, 1], [1, 1], [2, 3], [2, 3]])
    assert each_group_is_one_state(x, 2) and not each_group_is_one_state(x, 1)
    values = torch.tensor([1.0, float("nan"), float("nan"), float("nan"), 2.0, 3.0], dtype=torch.float64)
    assert best_per_group(values, 3).tolist() == [0, 2, 5]
