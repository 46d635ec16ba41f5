"""Noise search (Ma et al., 2025) as methods of svdd.sample: random search (best of M initial noises
per sample) and zero-order search around a pivot noise, with their model and reward accounting."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import seeded

import svdd
from svdd.processes import GaussianMixtureDiffusion

N, M, K = 8, 4, 10


def near_two(xs):
    return [-((x - 2.0) ** 2) for x in xs]


def counted(reward):
    seen = []

    def wrapped(objects):
        seen.append(len(objects))
        return reward(objects)

    return wrapped, seen


@pytest.mark.parametrize("eta", [1.0, 0.0], ids=["stochastic", "ode"])
def test_random_search_keeps_the_best_of_each_samples_own_noises(eta):
    process = GaussianMixtureDiffusion(num_steps=K, eta=eta)
    reward, seen = counted(near_two)
    gens = [seeded(i) for i in range(N)]
    res = svdd.sample(
        process,
        reward,
        method="random_search",
        num_samples=N,
        num_candidates=M,
        generator=gens,
        reward_cache=None,
        progress=False,
    )
    assert res.stats["model_calls"] == N * M * K and sum(seen) == N * M
    # sample i is the best of the M generations drawn from generator i alone
    pool = svdd.sample(
        process,
        near_two,
        method="random_search",
        num_samples=1,
        num_candidates=M,
        generator=[seeded(3)],
        progress=False,
    )
    assert pool.samples[0] == res.samples[3]
    pre = svdd.sample(process, near_two, method="pretrained", num_samples=N, generator=seeded(0), progress=False)
    assert np.median(res.rewards) > np.median(pre.rewards)


def test_zero_order_search_never_loses_its_best_and_counts_its_generations():
    process = GaussianMixtureDiffusion(num_steps=K, eta=0.0)  # an ODE: the noise fixes the sample
    reward, seen = counted(near_two)
    iterations = 3
    res = svdd.sample(
        process,
        reward,
        method="zero_order",
        num_samples=N,
        num_candidates=M,
        generator=seeded(1),
        reward_cache=None,
        progress=False,
        iterations=iterations,
        radius=0.5,
    )
    assert res.stats["model_calls"] == (1 + iterations * M) * N * K
    assert sum(seen) == (1 + iterations * M) * N
    rounds = [entry for entry in res.trace if "round" in entry]
    assert [r["round"] for r in rounds] == [1, 2, 3]
    medians = [r["best_median"] for r in rounds]
    assert medians == sorted(medians)  # the best so far only improves
    start = svdd.sample(
        process,
        near_two,
        method="zero_order",
        num_samples=N,
        num_candidates=M,
        generator=seeded(1),
        progress=False,
        iterations=0,
    )
    assert (res.rewards >= start.rewards).all() and res.rewards.mean() > start.rewards.mean()


def test_noise_search_refuses_discrete_processes_and_bad_options(masked_toy):
    with pytest.raises(
        TypeError, match="method=.zero_order. searches the initial noise.*MaskedToy.prior gives torch.int64"
    ):
        svdd.sample(
            masked_toy, lambda xs: [0.0] * len(xs), method="zero_order", num_samples=2, num_candidates=2, progress=False
        )
    mixture = GaussianMixtureDiffusion(num_steps=4)
    with pytest.raises(ValueError, match="radius must be > 0"):
        svdd.sample(mixture, near_two, method="zero_order", num_samples=2, num_candidates=2, radius=0.0)
    with pytest.raises(TypeError, match="unknown option.*radius"):
        svdd.sample(mixture, near_two, method="random_search", num_samples=2, num_candidates=2, radius=0.5)
