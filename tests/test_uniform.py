"""Uniform-noise discrete diffusion (`svdd.UniformDiffusion`): exactness on the enumerable toy,
every method on it, seeds and fixed positions, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import seeded, toy_probs, weighted_sum

import svdd
from svdd.processes import ExactChain, UniformToy
from svdd.processes.toys import total_variation


@pytest.fixture
def uniform_toy() -> UniformToy:
    return UniformToy(toy_probs(), vocab_size=3, length=3, num_steps=20)


@pytest.fixture
def uniform_chain(uniform_toy) -> ExactChain:
    return ExactChain(uniform_toy)


def rewards() -> torch.Tensor:
    from svdd.processes.toys import all_sequences

    return torch.tensor(weighted_sum([tuple(s) for s in all_sequences(3, 3).tolist()]), dtype=torch.float64)


def test_the_exact_chain_reproduces_the_data_as_steps_grow():
    data = toy_probs() / toy_probs().sum()
    tv = [
        float(total_variation(ExactChain(UniformToy(toy_probs(), num_steps=k)).pretrained(), data)) for k in (2, 8, 64)
    ]
    assert tv[0] > tv[1] > tv[2] and tv[2] < 0.01, tv


def test_pretrained_sampling_matches_the_data(uniform_toy, uniform_chain):
    res = svdd.sample(
        uniform_toy, weighted_sum, method="pretrained", num_samples=6000, generator=seeded(0), progress=False
    )
    data = toy_probs() / toy_probs().sum()
    assert total_variation(uniform_chain.distribution_of(res.samples), data) < 0.05
    assert total_variation(uniform_chain.distribution_of(res.samples), uniform_chain.pretrained()) < 0.05


@pytest.mark.parametrize("method, n, m", [("svdd", 6000, 48), ("smc", 3000, 4)])
def test_svdd_and_smc_with_the_exact_soft_value_approach_the_tilted_target(uniform_toy, uniform_chain, method, n, m):
    alpha = 1.0
    target = uniform_chain.target(rewards(), alpha)
    assert total_variation(uniform_chain.pretrained(), target) > 0.2  # the test has power
    value = svdd.LearnedValue(uniform_chain.value_function(rewards(), alpha))
    res = svdd.sample(
        uniform_toy,
        weighted_sum,
        method=method,
        value=value,
        num_samples=n,
        num_candidates=m,
        alpha=alpha,
        generator=seeded(1),
        progress=False,
    )
    assert total_variation(uniform_chain.distribution_of(res.samples), target) < 0.05


@pytest.mark.parametrize("method", ["pretrained", "best_of_n", "svdd", "svdd_r", "smc", "fk", "beam", "refine"])
def test_every_method_runs_and_guidance_raises_the_reward(uniform_toy, method):
    n, m = 64, 4
    alpha = {"smc": 0.3, "fk": 0.3}.get(method, 0.0)  # particle methods need a temperature
    res = svdd.sample(
        uniform_toy,
        weighted_sum,
        method=method,
        num_samples=n,
        num_candidates=m,
        alpha=alpha,
        generator=seeded(2),
        progress=False,
    )
    assert len(res.samples) == n and all(len(s) == 3 and all(0 <= v < 3 for v in s) for s in res.samples)
    if method == "svdd":  # PM: N on the first step, then N·M per step (the winner's output is reused)
        assert res.stats["model_calls"] == n + (uniform_toy.num_steps - 1) * n * m
    if method != "pretrained":
        base = svdd.sample(
            uniform_toy, weighted_sum, method="pretrained", num_samples=n, generator=seeded(2), progress=False
        )
        assert res.rewards.mean() > base.rewards.mean()


def test_a_seed_edits_only_its_positions_and_fixed_positions_hold(uniform_toy):
    seed = torch.tensor([0, 0, 0])
    edit = uniform_toy.from_seed(seed, noise_level=0.5, positions=[2])
    assert edit.timesteps[0] == 0.5 and edit.num_steps == 10
    res = svdd.sample(
        edit, weighted_sum, method="svdd", num_samples=32, num_candidates=4, generator=seeded(3), progress=False
    )
    assert {s[:2] for s in res.samples} == {(0, 0)}
    assert (edit.hamming_to_seed(torch.tensor(res.samples)) <= 1).all()
    fixed = svdd.UniformDiffusion(uniform_toy.denoiser, vocab_size=3, length=3, num_steps=5, fixed={0: 1})
    res = svdd.sample(
        fixed, weighted_sum, method="svdd", num_samples=32, num_candidates=4, generator=seeded(4), progress=False
    )
    assert {s[0] for s in res.samples} == {1}


def test_bad_arguments_are_clear_errors(uniform_toy):
    with pytest.raises(ValueError, match="vocab_size must be at least 2"):
        svdd.UniformDiffusion(uniform_toy.denoiser, vocab_size=1, length=3)
    with pytest.raises(ValueError, match="fixed position 5 is outside"):
        svdd.UniformDiffusion(uniform_toy.denoiser, vocab_size=3, length=3, fixed={5: 0})
    with pytest.raises(ValueError, match="noise_level must be a number in"):
        uniform_toy.from_seed(torch.tensor([0, 1, 2]), noise_level=0.0)
    with pytest.raises(ValueError, match="seed must hold token ids"):
        uniform_toy.from_seed(torch.tensor([0, 1, 7]))
    wrong = svdd.UniformDiffusion(lambda x, t: torch.zeros(x.shape[0], 3, 4), vocab_size=3, length=3, num_steps=2)
    with pytest.raises(ValueError, match="denoiser returned logits of shape"):
        svdd.sample(wrong, weighted_sum, num_samples=2, num_candidates=2, progress=False)


def test_more_bad_arguments_name_themselves(uniform_toy):
    """Found by fuzzing: each of these was a torch/AttributeError message naming nothing."""
    with pytest.raises(TypeError, match="fixed must be a dict"):
        svdd.UniformDiffusion(uniform_toy.denoiser, vocab_size=3, length=3, fixed=[(0, 1)])
    with pytest.raises(ValueError, match="device must be a torch device"):
        svdd.UniformDiffusion(uniform_toy.denoiser, vocab_size=3, length=3, device="nope")
    with pytest.raises(TypeError, match="seed must be integer tokens"):
        uniform_toy.from_seed("abc")
    with pytest.raises(ValueError, match="got torch.float32 of shape"):
        uniform_toy.from_seed(torch.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="vocab_size must be a positive int; got True"):
        svdd.MaskedDiffusion(uniform_toy.denoiser, vocab_size=True, length=3)
    assert svdd.UniformDiffusion(uniform_toy.denoiser, vocab_size=np.int64(3), length=3).vocab_size == 3
