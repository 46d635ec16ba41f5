"""Iterative refinement (`method="refine"`) and the processes' `renoise` hook."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from conftest import Delegating, brightness, count_threes, random_denoiser, requested, seeded, weighted_sum

import svdd
from svdd.processes.masked import MaskedDiffusion
from svdd.sampling.samplers import _improves

N, M = 6, 4


def near_two(xs):
    return [-((x - 2.0) ** 2) for x in xs]


def refine(process, reward=weighted_sum, **kw):
    kw.setdefault("num_samples", N)
    kw.setdefault("num_candidates", M)
    kw.setdefault("generator", seeded(0))
    return svdd.sample(process, reward, method="refine", progress=False, **kw)


@pytest.fixture
def dna_like():
    return MaskedDiffusion(random_denoiser, vocab_size=4, length=20, num_steps=10)


# -- the renoise hooks ----------------------------------------------------------------------------


def test_masked_renoise_masks_the_level_and_returns_the_steps_left(dna_like):
    x0 = torch.randint(0, 4, (50, 20), generator=seeded(0))
    x_t, steps = dna_like.renoise(x0, 0.3, seeded(1))
    assert steps == dna_like.timesteps[7:] and steps[0] == pytest.approx(0.3)
    masked = x_t == dna_like.mask_index
    assert (masked.sum(-1) == 6).all()  # round(0.3·20) positions per row
    assert torch.equal(x_t[~masked], x0[~masked])
    assert len({tuple(r) for r in masked.tolist()}) > 40  # a fresh subset per row
    rows = dna_like.renoise(x0[:3], 0.3, [seeded(5), seeded(6), seeded(7)])[0]
    assert torch.equal(rows[1], dna_like.renoise(x0[1:2], 0.3, [seeded(6)])[0][0])  # row i from generator i
    assert dna_like.renoise(x0, 0.04, seeded(1))[1] == [pytest.approx(0.1)]  # nearest timestep
    assert dna_like.renoise(x0, 1.0, seeded(1))[1] == dna_like.timesteps


def test_masked_renoise_of_a_seeded_process_touches_only_its_positions(dna_like):
    seed = torch.arange(20) % 4
    editable = [0, 3, 5, 8, 13, 17, 19]
    edited = dna_like.from_seed(seed, positions=editable)
    x0 = seed.expand(30, 20).clone()
    x_t, steps = edited.renoise(x0, 0.2, seeded(0))
    masked = x_t == edited.mask_index
    outside = torch.ones(20, dtype=torch.bool)
    outside[editable] = False
    assert not masked[:, outside].any()
    assert (masked.sum(-1) == round(steps[0] * 20)).all()


def test_gaussian_toy_renoise(mixture):
    x0 = torch.full((4000, 1), 2.0, dtype=torch.float64)
    x_t, steps = mixture.renoise(x0, 0.5, seeded(0))
    t = steps[0]
    assert abs(t - 500) <= 25 and steps == mixture.timesteps[mixture.timesteps.index(t) :]
    a = mixture.alphas_cumprod[t]
    assert float(x_t.mean()) == pytest.approx(2.0 * float(a.sqrt()), abs=0.05)
    assert float(x_t.std()) == pytest.approx(float((1 - a).sqrt()), abs=0.05)


# -- refine ---------------------------------------------------------------------------------------


def test_refine_never_returns_a_sample_worse_than_its_input(dna_like):
    start = svdd.sample(
        dna_like, count_threes, method="pretrained", num_samples=16, generator=seeded(3), progress=False
    )
    res = refine(dna_like, count_threes, num_samples=16, initial=start.states, iterations=3, renoise=0.3)
    assert (res.rewards >= start.rewards).all()
    assert (res.rewards > start.rewards).any()
    # a sample may improve in several iterations
    assert sum(e.get("improved", 0) for e in res.trace) >= int((res.rewards > start.rewards).sum())
    changed = (res.states != start.states).any(-1)
    assert torch.equal(changed, torch.from_numpy(res.rewards > start.rewards))  # only improvements replace


def test_each_iteration_improves_on_the_last(dna_like):
    runs = [refine(dna_like, count_threes, iterations=i, renoise=0.3, generator=seeded(9)) for i in range(3)]
    for before, after in itertools.pairwise(runs):
        assert (after.rewards >= before.rewards).all()
    first_pass = svdd.sample(
        dna_like, count_threes, method="svdd", num_samples=N, num_candidates=M, generator=seeded(9), progress=False
    )
    assert torch.equal(runs[0].states, first_pass.states)  # iterations=0 is one svdd pass


def test_counts_per_iteration(dna_like):
    k = len(dna_like.timesteps)
    res = refine(dna_like, count_threes, iterations=2, renoise=0.3)
    k_left = 3  # 0.3 -> timesteps 0.3, 0.2, 0.1
    first = N + (k - 1) * N * M
    per_iteration = N + (k_left - 1) * N * M
    assert res.stats["model_calls"] == first + 2 * per_iteration
    assert requested(res.stats) == k * N * M + 2 * k_left * N * M
    assert [e["pass"] for e in res.trace] == [0] * k + [1] * k_left + [2] * k_left
    assert all("improved" in res.trace[i] for i in (k + k_left - 1, k + 2 * k_left - 1))
    given = refine(dna_like, count_threes, iterations=1, renoise=0.3, initial=torch.zeros(N, 20, dtype=torch.long))
    assert requested(given.stats) == N + k_left * N * M
    assert given.stats["model_calls"] == per_iteration


def test_refine_from_a_seed_edits_only_its_positions(dna_like):
    seed = torch.zeros(20, dtype=torch.long)
    edited = dna_like.from_seed(seed, positions=[2, 9, 15])
    res = refine(edited, count_threes, iterations=2, renoise=0.1)
    assert (edited.hamming_to_seed(res.states) <= 3).all()
    assert res.states[:, [0, 1, 3, 4, 5]].eq(0).all()
    random_mask = dna_like.from_seed(seed, mask_fraction=0.25)
    # a seed masked by fraction may change anywhere: each iteration re-masks positions anywhere too
    first, refined = (refine(random_mask, count_threes, iterations=i, renoise=0.2) for i in (0, 2))
    assert (refined.rewards >= first.rewards).all()


def test_refine_on_a_continuous_toy(mixture):
    res = refine(mixture, near_two, iterations=2, renoise=0.3)
    first = svdd.sample(
        mixture, near_two, method="svdd", num_samples=N, num_candidates=M, generator=seeded(0), progress=False
    )
    assert (res.rewards >= first.rewards).all()


def test_improves_handles_invalid_rewards():
    new = torch.tensor([1.0, math.nan, 2.0, math.nan, -math.inf], dtype=torch.float64)
    old = torch.tensor([0.0, 1.0, math.nan, math.nan, 0.0], dtype=torch.float64)
    assert _improves(new, old).tolist() == [True, False, True, False, False]


def test_a_process_without_renoise_is_refused_before_any_work(masked_toy):
    class NoRenoise(Delegating):
        """The toy without its renoise hook."""

    with pytest.raises(TypeError, match=r"refine needs a process with renoise.*NoRenoise has none"):
        refine(NoRenoise(masked_toy))
    assert masked_toy.denoiser.calls == 0


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        (dict(iterations=-1), ValueError, "iterations must be an integer >= 0; got -1"),
        (dict(renoise=0.0), ValueError, r"renoise must be in \(0, 1\]"),
        (dict(renoise=1.5), ValueError, r"renoise must be in \(0, 1\]"),
        (dict(renoise="half"), TypeError, "renoise must be a number"),
        (dict(initial=[[0, 1, 2]]), TypeError, "initial must be None or a tensor"),
        (
            dict(initial=torch.zeros(2, 3, dtype=torch.long)),
            ValueError,
            "initial must hold num_samples = 6 clean states",
        ),
    ],
)
def test_bad_options(masked_toy, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        refine(masked_toy, **kwargs)


# -- diffusers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scheduler", ["DDPMScheduler", "EulerAncestralDiscreteScheduler", "FlowMatchEulerDiscreteScheduler"]
)
def test_diffusers_renoise_and_refine(scheduler):
    diffusers = pytest.importorskip("diffusers")
    from svdd.diffusers import DiffusersProcess
    from svdd.diffusers.tiny import tiny_unet

    config = {"stochastic_sampling": True} if scheduler == "FlowMatchEulerDiscreteScheduler" else {}
    process = DiffusersProcess(tiny_unet(), getattr(diffusers, scheduler)(**config), 6)
    x0 = torch.rand(3, 1, 8, 8, generator=seeded(0)) * 2 - 1
    x_t, steps = process.renoise(x0, 0.5, seeded(1))
    assert x_t.shape == x0.shape and not torch.equal(x_t, x0)
    k = process.timesteps.index(steps[0])
    assert 0 < k < 6 and steps == process.timesteps[k:]
    again, _ = process.renoise(x0, 0.5, seeded(1))
    assert torch.equal(x_t, again)  # the noise comes from the generator
    res = svdd.sample(
        process,
        brightness,
        method="refine",
        num_samples=2,
        num_candidates=2,
        iterations=1,
        renoise=0.5,
        generator=seeded(0),
        progress=False,
    )
    assert len(res.samples) == 2
    assert res.stats["model_calls"] == 2 + 5 * 4 + 2 + (6 - k - 1) * 4


def test_per_sample_generators_make_a_refined_sample_independent_of_its_batch(mixture):
    whole = refine(mixture, near_two, iterations=2, renoise=0.3, generator=[seeded(20 + i) for i in range(N)])
    part = refine(
        mixture, near_two, iterations=2, renoise=0.3, num_samples=2, generator=[seeded(20 + i) for i in range(2)]
    )
    assert torch.equal(whole.states[:2], part.states)


def test_refine_selecting_only_at_the_last_step_scores_n_m_per_pass(dna_like):
    # K = 10; renoise 0.3 resumes at step 7 of the chain: selecting at [9] (the last) every pass
    sparse = refine(dna_like, count_threes, iterations=2, renoise=0.3, select_steps=[dna_like.num_steps - 1])
    assert sparse.stats["reward_calls"] + sparse.stats["reward_cache_hits"] == 3 * N * M
    dense = refine(dna_like, count_threes, iterations=2, renoise=0.3)
    assert dense.stats["reward_calls"] + dense.stats["reward_cache_hits"] > 3 * N * M
    # a step before the re-noised suffix selects in the first pass only; each pass's N samples are scored
    early = refine(dna_like, count_threes, iterations=2, renoise=0.3, select_steps=[2])
    assert early.stats["reward_calls"] + early.stats["reward_cache_hits"] == N * M + 3 * N
