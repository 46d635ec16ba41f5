"""Design from a seed: `MaskedDiffusion.from_seed` with every sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import count_threes, random_denoiser, seeded, weighted_sum

import svdd
from svdd.processes.masked import MaskedDiffusion, hamming
from svdd.processes.toys import ExactChain, all_sequences, total_variation

N, M = 6, 4


@pytest.fixture
def process():
    return MaskedDiffusion(random_denoiser, vocab_size=4, length=20, num_steps=10)


@pytest.fixture
def seed():
    return torch.tensor([0, 1, 2] * 6 + [0, 1])


def test_positions_mask_exactly_those_and_the_schedule_starts_at_the_masked_fraction(process, seed):
    edited = process.from_seed(seed, positions=[2, 5, 7, 11, 19])
    x = edited.prior(3)
    masked = x == edited.mask_index
    assert masked[:, [2, 5, 7, 11, 19]].all() and masked.sum() == 15
    assert torch.equal(x[~masked], seed.expand(3, -1)[~masked])
    assert edited.timesteps == pytest.approx([0.25, 0.25 * 2 / 3, 0.25 / 3])  # t0 = 5/20, ceil(0.25·10) = 3 steps
    assert process.timesteps[0] == 1.0 and process.seed is None  # the original is untouched


def test_mask_fraction_draws_a_fresh_subset_per_row_from_the_generator(process, seed):
    edited = process.from_seed(seed, mask_fraction=0.3)
    assert edited.seed_mask_count == 6 and edited.timesteps[0] == pytest.approx(0.3)
    assert len(edited.timesteps) == 3
    x = edited.prior(50, seeded(0))
    masked = x == edited.mask_index
    assert (masked.sum(-1) == 6).all()
    assert torch.equal(x[~masked], seed.expand(50, -1)[~masked])
    assert len({tuple(row) for row in masked.tolist()}) > 40  # subsets differ between rows
    gens = [seeded(i) for i in range(4)]
    alone = edited.prior(1, [seeded(2)])
    assert torch.equal(edited.prior(4, gens)[2], alone[0])  # row i draws from generator i alone
    assert torch.equal(edited.prior(50, seeded(0)), x)


@pytest.mark.parametrize(
    ("method", "model_calls"),
    [
        ("pretrained", lambda K: K * N),
        ("best_of_n", lambda K: K * N * M),
        ("svdd", lambda K: N + (K - 1) * N * M),
        ("svdd_r", lambda K: N + (K - 1) * N * M),
        ("smc", lambda K: K * N * M),
    ],
)
@pytest.mark.parametrize("how", [{"positions": [0, 3, 4, 9, 10, 15]}, {"mask_fraction": 0.3}])
def test_every_method_samples_from_the_seed(process, seed, method, model_calls, how):
    edited = process.from_seed(seed, **how)
    res = svdd.sample(
        edited,
        count_threes,
        method=method,
        num_samples=N,
        num_candidates=M,
        alpha=0.5 if method == "smc" else 0.0,
        generator=seeded(0),
        progress=False,
    )
    assert res.stats["model_calls"] == model_calls(len(edited.timesteps))
    assert len(res.samples) == N and not (res.states == edited.mask_index).any()
    distance = edited.hamming_to_seed(res.states)
    assert (distance <= 6).all()
    if "positions" in how:
        keep = torch.ones(20, dtype=torch.bool)
        keep[how["positions"]] = False
        assert torch.equal(res.states[:, keep], seed.expand(N, -1)[:, keep])
    assert torch.equal(distance, hamming(res.states, seed))


def test_svdd_from_a_seed_raises_the_reward_within_the_edited_positions(process, seed):
    edited = process.from_seed(seed, mask_fraction=0.4)
    kw = {"num_samples": 32, "generator": seeded(0), "progress": False}
    pre = svdd.sample(edited, count_threes, method="pretrained", **kw)
    guided = svdd.sample(edited, count_threes, method="svdd", num_candidates=8, **kw)
    assert np.median(guided.rewards) > np.quantile(pre.rewards, 0.9)
    assert (edited.hamming_to_seed(guided.states) <= 8).all()


def test_exact_svdd_from_a_seed_matches_the_tilted_target(masked_toy, toy_rewards):
    edited = masked_toy.from_seed(torch.tensor([1, 0, 0]), positions=[1, 2], num_steps=2)
    assert edited.timesteps == pytest.approx([2 / 3, 1 / 3])
    chain = ExactChain(edited)
    pre = chain.pretrained()
    assert pre[all_sequences(3, 3)[:, 0] != 1].sum() == 0  # the unmasked first token is kept
    alpha = 0.5
    target = chain.target(toy_rewards, alpha)
    assert total_variation(pre, target) > 0.25
    value = svdd.LearnedValue(chain.value_function(toy_rewards, alpha))
    res = svdd.sample(
        edited,
        weighted_sum,
        method="svdd",
        value=value,
        num_samples=4000,
        num_candidates=32,
        alpha=alpha,
        generator=seeded(3),
        progress=False,
    )
    assert total_variation(chain.distribution_of(res.samples), target) < 0.05


def test_a_seeded_process_can_be_seeded_again_with_the_full_step_size(process, seed):
    once = process.from_seed(seed, mask_fraction=0.5)
    again = once.from_seed(torch.zeros(20, dtype=torch.long), positions=[0, 1])
    assert len(once.timesteps) == 5 and len(again.timesteps) == 1 and again.timesteps[0] == pytest.approx(0.1)
    assert again.prior(1)[0, 2:].eq(0).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, ValueError, "exactly one of mask_fraction"),
        ({"mask_fraction": 0.2, "positions": [1]}, ValueError, "exactly one of mask_fraction"),
        ({"mask_fraction": 0.0}, ValueError, r"mask_fraction must be a number in \(0, 1\]"),
        ({"mask_fraction": 1.5}, ValueError, r"mask_fraction must be a number in \(0, 1\]"),
        ({"positions": [1, 20]}, ValueError, r"positions \[20\] are outside 0..19"),
        ({"positions": [1, 1]}, ValueError, "distinct"),
        ({"positions": []}, ValueError, "positions is empty"),
        ({"positions": [0.5]}, TypeError, "integer indices"),
        ({"positions": [1], "num_steps": 0}, ValueError, "num_steps must be a positive int"),
    ],
)
def test_bad_seed_arguments(process, seed, kwargs, error, message):
    with pytest.raises(error, match=message):
        process.from_seed(seed, **kwargs)


def test_bad_seeds_and_distance_without_a_seed(process):
    with pytest.raises(ValueError, match=r"seed must be integer tokens of shape \(20,\)"):
        process.from_seed(torch.zeros(19, dtype=torch.long), mask_fraction=0.1)
    with pytest.raises(ValueError, match=r"clean token ids 0..3 \(no mask id 4\)"):
        process.from_seed(torch.full((20,), 4), mask_fraction=0.1)
    with pytest.raises(ValueError, match="needs a process made by from_seed"):
        process.hamming_to_seed(process.prior(1))


def test_exact_chain_refuses_a_random_subset_prior(masked_toy):
    with pytest.raises(ValueError, match="deterministic prior"):
        ExactChain(masked_toy.from_seed(torch.tensor([1, 0, 0]), mask_fraction=0.5))
