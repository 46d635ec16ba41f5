"""Issue 12, items 10-13: +inf rewards, option ranges, DPS guidance, odd reward outputs and
processes, oversized candidate pools, rewards that mutate their input."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest
import torch
from conftest import seeded, toy_probs, weighted_sum

import svdd
from svdd.processes.toys import GaussianMixtureDiffusion, MaskedToy
from svdd.result import Result, reward_quantile
from svdd.rewards import Reward, RewardError, WeightedSum, clipped, evaluate, scaled
from svdd.runs.generation import RunSettings, generate
from svdd.sampling.selection import accumulate_log_weights, log_weight_increment, resample

INF = math.inf


def toy() -> MaskedToy:
    return MaskedToy(toy_probs(), vocab_size=3, length=3, num_steps=3)


def run(process, reward, method="svdd", **kw):
    kw.setdefault("num_samples", 8)
    kw.setdefault("num_candidates", 4)
    return svdd.sample(process, reward, method=method, generator=seeded(0), progress=False, **kw)


def tiers(seqs):
    """+inf for sequences starting (1, 2), -inf for those starting with 0, else the weighted sum."""
    return [INF if tuple(s[:2]) == (1, 2) else -INF if s[0] == 0 else w for s, w in zip(seqs, weighted_sum(seqs))]


# -- item 10: +inf is the best valid reward, -inf a valid one that loses, NaN the only invalid ----


def test_all_inf_rewards_are_valid_and_summarised():
    res = run(toy(), lambda seqs: [INF] * len(seqs), num_samples=4)
    assert np.isposinf(res.rewards).all()
    assert res.summary() == {"median": INF, "mean": INF, "p90": INF, "valid": 1.0}
    assert all(step["invalid"] == 0 for step in res.trace)


@pytest.mark.parametrize(
    "method, alpha", [("svdd", 0.0), ("svdd", 0.5), ("best_of_n", 0.0), ("svdd_r", 0.0), ("smc", 0.5)]
)
def test_inf_wins_in_every_method(method, alpha):
    """(1, 2, x) is reachable (probability > 0) and scores +inf: with a large pool the sampler
    keeps only +inf samples (with 0 selected by argmax, the M = 64 candidates all but surely hold one)."""
    kw = {"resample_fraction": 0.25} if method == "svdd_r" else {}
    res = run(toy(), tiers, method=method, alpha=alpha, num_candidates=64, **kw)
    assert np.isposinf(res.rewards).all(), res.rewards


def test_neg_inf_loses_to_finite_but_beats_nan():
    """Best-of-N ranks +inf, finite, -inf, then NaN: a pool with only -inf and NaN keeps the -inf."""

    def neg_or_nan(seqs):
        return [-INF if s[0] == 0 else math.nan for s in seqs]

    res = run(toy(), neg_or_nan, method="best_of_n", num_samples=4, num_candidates=32)
    assert np.isneginf(res.rewards).all()
    res = run(toy(), tiers, method="best_of_n", num_samples=4, num_candidates=32)
    assert not np.isneginf(res.rewards).any()


def test_smc_weights_handle_infinities_without_nan_or_overflow():
    prev = torch.tensor([0.0, INF, 1.0, math.nan, -INF, 1e308], dtype=torch.float64)
    cur = torch.tensor([INF, INF, -INF, 2.0, 3.0, -1e308], dtype=torch.float64)
    inc = log_weight_increment(prev, cur, 0.5)
    assert inc[0] == INF and inc[1] == INF and inc[2] == -INF  # new +inf wins, new -inf has weight 0
    assert torch.isfinite(inc[3:]).all()  # invalid/infinite old values get finite stand-ins; no overflow
    assert inc[5] == -torch.finfo(torch.float64).max
    log_w = accumulate_log_weights(
        torch.tensor([INF, -INF, 3.0, 1e308], dtype=torch.float64),
        torch.tensor([-INF, INF, 1e308, 1e308], dtype=torch.float64),
    )
    assert not torch.isnan(log_w).any() and log_w[0] == -INF and log_w[1] == -INF
    assert log_w[2:].max() == 0  # finite weights are shifted to a max of 0: no overflow as they accumulate
    assert set(resample(log_w, "multinomial", seeded(0), 20).tolist()) <= {2, 3}


def test_inf_and_neg_inf_rewards_in_a_run_directory(tmp_path):
    """Run outputs: +inf written as `inf` and -inf as `-inf`, only NaN counted invalid, median/p90 defined."""
    run = generate(
        InfJob(),
        RunSettings(num_samples=8, shard_size=4, num_candidates=2),
        tmp_path,
        progress=False,
        log=lambda msg: None,
    )
    record = json.loads((tmp_path / "run.json").read_text())
    rows = (tmp_path / "samples.csv").read_text().splitlines()[1:]
    rewards = [row.rsplit(",", 1)[1] for row in rows]
    assert sorted(set(rewards)) == ["-inf", "inf"] and record["invalid_samples"] == 0
    assert rewards.count("inf") == int(np.isposinf(run.rewards).sum())
    assert record["reward_median"] in (INF, -INF) and record["reward_p90"] == INF


@dataclass(frozen=True)
class InfJob:
    def build(self):
        return toy(), lambda seqs: [INF if s[0] == 1 else -INF for s in seqs], None

    def encode(self, obj, index, out_dir):
        return "".join(map(str, obj))


def test_reward_quantile_with_infinities():
    assert reward_quantile(np.array([1.0, 2.0, 3.0]), 0.9) == pytest.approx(2.8)
    assert reward_quantile(np.array([1.0, 2.0, INF]), 0.9) == INF  # np.quantile gives NaN here
    assert reward_quantile(np.array([-INF, 1.0, 2.0]), 0.1) == -INF
    assert reward_quantile(np.array([math.nan, 1.0, INF]), 0.5) == INF
    assert math.isnan(reward_quantile(np.array([math.nan]), 0.5))
    summary = Result([0, 1, 2], np.array([1.0, INF, math.nan]), torch.zeros(3)).summary()
    assert summary["median"] == INF and summary["valid"] == pytest.approx(2 / 3)


# -- item 11: option ranges for every method that takes them ------------------------------------


@pytest.mark.parametrize("fraction", [2.0, -0.5, math.nan, "0.1"])
def test_svdd_refuses_a_resample_fraction_out_of_range(fraction):
    with pytest.raises((ValueError, TypeError), match="resample_fraction"):
        run(toy(), weighted_sum, resample_fraction=fraction)


@pytest.mark.parametrize("steps", [[0.5, 1.7], [0, 1.0], 0.5, "01", [True, 1], [0, 7]])
def test_select_steps_are_integer_indices_in_range(steps):
    with pytest.raises((ValueError, TypeError), match="select_steps"):
        run(toy(), weighted_sum, select_steps=steps)


# -- item 12: DPS guidance scale ---------------------------------------------------------------


@pytest.mark.parametrize(
    "scale, error", [(math.nan, ValueError), (INF, ValueError), ("1", TypeError), (None, TypeError), (True, TypeError)]
)
def test_dps_guidance_scale_is_a_finite_number(scale, error):
    reward = svdd.rewards.TorchReward(lambda x: -(x**2).reshape(x.shape[0], -1).sum(-1))
    with pytest.raises(error, match="guidance_scale"):
        run(GaussianMixtureDiffusion(num_steps=4), reward, method="dps", guidance_scale=scale)
    res = run(GaussianMixtureDiffusion(num_steps=4), reward, method="dps", guidance_scale=np.float32(0.5))
    assert np.isfinite(res.rewards).all()


# -- item 13: reward outputs, alpha types, odd processes, huge pools, mutating rewards -----------


def test_a_reward_beyond_float_range_is_infinite():
    out = evaluate(lambda objs: [10**400, -(10**400), Fraction(10**400, 3), 1], ["a", "b", "c", "d"])
    assert out.tolist() == [INF, -INF, INF, 1.0]
    res = run(toy(), lambda seqs: [10**400 if s[0] == 1 else 0 for s in seqs], num_candidates=16)
    assert np.isposinf(res.rewards).all()


def test_object_arrays_with_none_mark_invalid_items():
    out = evaluate(lambda objs: np.array([None, 1.5, np.float32(2.0)], dtype=object), ["a", "b", "c"])
    assert np.isnan(out[0]) and out[1:].tolist() == [1.5, 2.0]
    with pytest.raises(RewardError, match="element of type str"):
        evaluate(lambda objs: np.array(["x", 1.0, 2.0], dtype=object), ["a", "b", "c"])


def test_numpy_alpha_and_counts_are_accepted():
    res = run(toy(), weighted_sum, alpha=np.float32(0.5), num_samples=np.int64(4), num_candidates=np.int32(3))
    assert res.rewards.shape == (4,) and res.config["alpha"] == 0.5


@pytest.mark.parametrize(
    "timesteps, error",
    [
        (5, TypeError),
        ("321", TypeError),
        (torch.tensor(3), TypeError),
        (torch.zeros(2, 2), TypeError),
        ([], ValueError),
    ],
)
def test_a_process_with_bad_timesteps_is_named(timesteps, error):
    process = toy()
    process.timesteps = timesteps
    with pytest.raises(error, match=r"MaskedToy\.timesteps"):
        run(process, weighted_sum)


def test_a_process_whose_members_return_the_wrong_type_is_named():
    process = toy()
    process.prior = 3
    with pytest.raises(TypeError, match=r"MaskedToy\.prior must be a method"):
        run(process, weighted_sum)
    for member, bad in [("transition", lambda x: x.numpy()), ("decode", lambda x: None), ("model", lambda x: None)]:
        process = toy()
        original = getattr(process, member)
        setattr(process, member, lambda *a, _o=original, _b=bad, **k: _b(_o(*a, **k)))
        with pytest.raises(TypeError, match=rf"MaskedToy\.{member} (must|returned None)"):
            run(process, weighted_sum)


def test_a_huge_candidate_pool_is_refused_before_any_work():
    calls = []
    with pytest.raises(ValueError, match="num_samples x num_candidates"):
        run(toy(), lambda seqs: calls.append(1) or weighted_sum(seqs), num_samples=64, num_candidates=10**9)
    assert not calls


def test_an_allocation_failure_names_the_arguments():
    class Hungry(MaskedToy):
        def prior(self, n, generator=None):
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory")

    process = Hungry(toy_probs(), vocab_size=3, length=3, num_steps=3)
    with pytest.raises(MemoryError, match=r"num_samples=8 x num_candidates=4 .*max_batch"):
        run(process, weighted_sum)


def test_a_reward_that_mutates_its_input_does_not_break_the_batch():
    def pops(seqs):
        scores = weighted_sum(seqs)
        seqs.pop()
        return scores

    res = run(toy(), pops)
    assert np.isfinite(res.rewards).all()

    def appends(seqs):
        seqs.append((0, 0, 0))
        return weighted_sum(seqs)

    with pytest.raises(RewardError, match="changed the list it was given"):
        run(toy(), appends)


# -- found while fuzzing: reward helpers -------------------------------------------------------


def test_reward_helpers_refuse_non_finite_or_non_numeric_settings():
    with pytest.raises(ValueError, match="weights must be finite"):
        WeightedSum([(weighted_sum, math.nan)])
    with pytest.raises(TypeError, match="pairs"):
        WeightedSum([(weighted_sum, True)])
    with pytest.raises(TypeError, match="scale"):
        scaled(weighted_sum, "2")
    with pytest.raises(ValueError, match="offset"):
        scaled(weighted_sum, 1.0, math.nan)
    with pytest.raises(ValueError, match="low"):
        clipped(weighted_sum, low=math.nan)
    with pytest.raises(ValueError, match="on_error"):
        Reward(weighted_sum, on_error=INF)


def test_zero_weights_ignore_infinite_scores():
    inf_term = lambda objs: [INF, 1.0]  # noqa: E731
    assert WeightedSum([(inf_term, 0.0), (lambda objs: [1.0, 2.0], 1.0)])(["a", "b"]).tolist() == [1.0, 2.0]
    assert scaled(inf_term, 0.0, 3.0)(["a", "b"]).tolist() == [3.0, 3.0]
    assert math.isnan(WeightedSum([(inf_term, 1.0), (lambda objs: [-INF, 0.0], 1.0)])(["a", "b"])[0])


def test_progress_takes_tqdm_options(capsys):
    svdd.sample(toy(), weighted_sum, num_samples=4, progress={"disable": True})
    assert capsys.readouterr().err == ""
    svdd.sample(toy(), weighted_sum, num_samples=4, progress={"desc": "my bar", "leave": True})
    assert "my bar" in capsys.readouterr().err
    with pytest.raises(TypeError, match="progress"):
        svdd.sample(toy(), weighted_sum, progress="yes")


def test_numpy_counts_reach_every_method():
    """Found by the fuzz test: np.int64 num_samples made smc's final resampling refuse its own count."""
    for method in ("smc", "best_of_n", "svdd_r"):
        res = run(toy(), weighted_sum, method=method, alpha=0.5, num_samples=np.int64(3), num_candidates=np.int64(2))
        assert res.rewards.shape == (3,)


def test_masked_diffusion_refuses_a_broken_denoiser():
    """NaN (or all -inf) logits used to give token 0 everywhere without a word."""
    from svdd.processes.masked import MaskedDiffusion

    def process(logits):
        return MaskedDiffusion(lambda x, t: logits(x), vocab_size=4, length=4, num_steps=2)

    for fill in (math.nan, -INF):
        with pytest.raises(ValueError, match="no distribution"):
            run(process(lambda x, fill=fill: torch.full((x.shape[0], 4, 4), fill)), weighted_sum)
    with pytest.raises(TypeError, match="denoiser must return a tensor"):
        run(process(lambda x: None), weighted_sum)
    with pytest.raises(TypeError, match="denoiser must be callable"):
        MaskedDiffusion(None, vocab_size=4, length=4)
    with pytest.raises(ValueError, match="device"):
        MaskedDiffusion(lambda x, t: x, vocab_size=4, length=4, device="bogus")
    with pytest.raises(TypeError, match="seed must be integer tokens"):
        process(lambda x: torch.zeros(x.shape[0], 4, 4)).from_seed("abcd", mask_fraction=0.5)


def test_learned_values_follow_the_reward_policy():
    def value_of(output):
        return svdd.LearnedValue(lambda x, t: output, name="v")(torch.zeros(2, 3), 0.5)

    assert value_of([10**400, None]).tolist()[0] == INF and math.isnan(value_of([10**400, None]).tolist()[1])
    assert value_of(np.ones((2, 1))).tolist() == [1.0, 1.0]
    for bad in (None, "ab", torch.zeros(2, dtype=torch.complex64)):
        with pytest.raises(TypeError, match="value function 'v' returned"):
            value_of(bad)
    with pytest.raises(TypeError, match="name"):
        svdd.LearnedValue(lambda x, t: x, name=3)
    assert svdd.LearnedValue(lambda x, t: x, max_batch=np.int64(2)).max_batch == 2


def test_torch_reward_names_an_object_it_cannot_stack():
    reward = svdd.rewards.TorchReward(lambda x: x.sum(-1), name="total")
    with pytest.raises(RewardError, match=r"'total' needs tensors.*object 1 is 'a'"):
        reward([torch.ones(2), "a"])
