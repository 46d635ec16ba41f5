"""Deterministic counts, reproducibility, chunking invariance, NaN handling and argument errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import Delegating, requested, seeded, weighted_sum

import svdd
from svdd.processes.toys import GaussianMixtureDiffusion
from svdd.rewards import Reward, RewardError, TorchReward

N, M = 6, 4
METHOD_ALPHA = {"pretrained": 0.0, "best_of_n": 0.0, "svdd": 0.0, "svdd_r": 0.5, "smc": 0.5}


class Recording(Delegating):
    """Wraps a process and records the rows of every model call by timestep."""

    def __init__(self, process):
        super().__init__(process)
        self.rows_at: dict = {}

    def model(self, x, t):
        self.rows_at[t] = self.rows_at.get(t, 0) + x.shape[0]
        return self.process.model(x, t)


def near_two(xs):
    return [-((x - 2.0) ** 2) for x in xs]


def sample(process, method="svdd", reward=weighted_sum, **kw):
    kw.setdefault("num_samples", N)
    kw.setdefault("num_candidates", M)
    kw.setdefault("alpha", METHOD_ALPHA.get(method, 0.0))
    kw.setdefault("generator", seeded(0))
    kw.setdefault("progress", False)
    return svdd.sample(process, reward, method=method, **kw)


# -- counts -----------------------------------------------------------------------------------


def test_pm_step_costs_m_model_calls_per_sample_after_the_first(masked_toy):
    process = Recording(masked_toy)
    res = sample(process, "svdd", num_samples=N, num_candidates=M)
    ts = masked_toy.timesteps
    assert process.rows_at[ts[0]] == N  # the first step: one call per sample
    for t in ts[1:]:
        assert process.rows_at[t] == N * M  # children, scored once, reused for the next step
    K = len(ts)
    assert res.stats["model_calls"] == N + (K - 1) * N * M == masked_toy.denoiser.calls
    assert res.stats["value_calls"] == (K - 1) * N * M
    # PM values on the K-1 intermediate steps + the clean children of the last step, whose
    # rewards are the final rewards (not recomputed)
    assert requested(res.stats) == K * N * M
    assert res.stats["reward_calls"] < K * N * M  # the masked toy repeats objects: each scored once


def test_pm_model_calls_are_batched_not_looped_over_m(mixture):
    res = sample(mixture, "svdd", reward=near_two, num_samples=N, num_candidates=M)
    K = len(mixture.timesteps)
    assert res.stats["model_batches"] == K  # one batched call per step, N·M rows each
    chunked = sample(mixture, "svdd", reward=near_two, num_samples=N, num_candidates=M, max_batch=5)
    # max_batch 5 < 2·M: groups of one sample, whose M = 4 children are one model call each
    assert chunked.stats["model_batches"] == math.ceil(N / 5) + (K - 1) * N
    wider = sample(mixture, "svdd", reward=near_two, num_samples=N, num_candidates=M, max_batch=8)
    assert wider.stats["model_batches"] == math.ceil(N / 8) + (K - 1) * math.ceil(N / 2)
    assert chunked.stats["model_calls"] == res.stats["model_calls"]


class LargestBatch(Recording):
    """Records the most rows any transition or reward call saw at once."""

    def __init__(self, process):
        super().__init__(process)
        self.largest = 0

    def transition(self, x, t, out, generator=None):
        self.largest = max(self.largest, x.shape[0])
        return self.process.transition(x, t, out, generator)


@pytest.mark.parametrize("method", ["svdd", "svdd_r", "best_of_n"])
def test_max_batch_bounds_the_candidates_held_at_once(masked_toy, method):
    n, m = 12, 8
    free = LargestBatch(masked_toy)
    sample(free, method, num_samples=n, num_candidates=m)
    bounded = LargestBatch(masked_toy)
    scored = []

    def reward(seqs):
        scored.append(len(seqs))
        return weighted_sum(seqs)

    res = sample(bounded, method, reward=reward, num_samples=n, num_candidates=m, max_batch=20)
    assert free.largest == n * m
    assert bounded.largest == (20 // m) * m  # groups of 2 samples: 16 candidates at a time
    assert max(scored) <= 20
    unbounded = sample(masked_toy, method, num_samples=n, num_candidates=m)
    assert res.stats["model_calls"] == unbounded.stats["model_calls"]
    assert requested(res.stats) == requested(unbounded.stats)


def test_one_candidate_is_pretrained_sampling_without_value_calls(masked_toy):
    res = sample(masked_toy, "svdd", num_candidates=1)
    pre = sample(masked_toy, "pretrained")
    assert torch.equal(res.states, pre.states)
    assert res.stats["value_calls"] == 0
    assert requested(res.stats) == N  # the clean samples only
    assert res.stats["fallback_rows"] == 0


def test_auto_chunks_model_calls_on_cpu_without_changing_samples(masked_toy):
    n, m = 20, 8  # 160 candidate rows per step
    auto = sample(masked_toy, "svdd", num_samples=n, num_candidates=m)  # max_batch="auto"
    whole = sample(masked_toy, "svdd", num_samples=n, num_candidates=m, max_batch=None)
    assert torch.equal(auto.states, whole.states)
    K = len(masked_toy.timesteps)
    assert whole.stats["model_batches"] == K
    assert auto.stats["model_batches"] == 1 + (K - 1) * math.ceil(n * m / svdd.api.CPU_MODEL_CHUNK)
    with pytest.raises(ValueError, match="'auto', None or an integer"):
        sample(masked_toy, "svdd", max_batch="all")


def test_mc_costs_one_model_call_per_sample_and_step(masked_toy, chain, toy_rewards):
    seen = []

    def value(x, t):
        seen.append(x.shape[0])
        return chain.value_function(toy_rewards, 1.0)(x, t)

    res = sample(masked_toy, "svdd", value=svdd.LearnedValue(value))
    K = len(masked_toy.timesteps)
    assert res.stats["model_calls"] == K * N
    assert seen == [N * M] * (K - 1)
    assert res.stats["value_calls"] == (K - 1) * N * M
    assert requested(res.stats) == N * M  # clean candidates of the last step only


@pytest.mark.parametrize(
    "method, model_calls, reward_calls",
    [
        ("pretrained", lambda K: K * N, lambda K: N),
        ("best_of_n", lambda K: K * N * M, lambda K: N * M),
        ("svdd_r", lambda K: N + (K - 1) * N * M, lambda K: K * N * M),
        # P = N·M particles: one call per particle and step; PM values at every step (the
        # all-mask start is one state for every particle, so it is not scored; see
        # test_smc_scores_the_start_only_when_it_can_differ for a random start)
        ("smc", lambda K: K * N * M, lambda K: K * N * M),
    ],
)
def test_model_and_reward_calls_per_method(masked_toy, method, model_calls, reward_calls):
    K = len(masked_toy.timesteps)
    res = sample(masked_toy, method)
    assert res.stats["model_calls"] == model_calls(K) == masked_toy.denoiser.calls
    assert requested(res.stats) == reward_calls(K)
    assert len(res.samples) == N and res.rewards.shape == (N,)


def test_rewards_deduplicate_identical_objects_within_a_call(masked_toy):
    batches = []

    def counting(seqs):
        batches.append(list(seqs))
        return weighted_sum(seqs)

    reward = Reward(counting, dedupe=True)
    res = sample(masked_toy, "svdd", reward=reward, num_samples=16, num_candidates=8, reward_cache=0)
    assert all(len(set(b)) == len(b) for b in batches)  # the oracle never sees a duplicate
    assert reward.calls == sum(len(b) for b in batches) < res.stats["reward_calls"]


def test_best_of_n_keeps_the_top_rewards(masked_toy):
    res = sample(masked_toy, "best_of_n", num_samples=N, num_candidates=M)
    pool = sample(
        masked_toy, "pretrained", num_samples=N * M, generator=seeded(0)
    )  # the same draws as best_of_n's pool
    assert sorted(res.rewards) == sorted(np.sort(pool.rewards)[-N:])


# -- reproducibility and chunking ----------------------------------------------------------------


@pytest.mark.parametrize("method", ["pretrained", "best_of_n", "svdd", "svdd_r", "smc"])
@pytest.mark.parametrize("toy", ["masked_toy", "mixture"])
def test_same_seed_same_samples_and_chunking_does_not_matter(method, toy, request):
    process = request.getfixturevalue(toy)
    reward = weighted_sum if toy == "masked_toy" else near_two
    # svdd, svdd_r and best_of_n handle the candidates group by group under max_batch: their
    # samples are max_batch-invariant with one generator per sample (smc's resampling couples the
    # batch, so it takes one generator; only its model calls are chunked)
    per_sample = method in ("best_of_n", "svdd", "svdd_r")

    def gen(seed):
        return [seeded(seed * 100 + i) for i in range(N)] if per_sample else seeded(seed)

    a = sample(process, method, reward=reward, generator=gen(3))
    b = sample(process, method, reward=reward, generator=gen(3), max_batch=5)
    c = sample(process, method, reward=reward, generator=gen(4))
    assert torch.equal(a.states, b.states)
    assert np.array_equal(a.rewards, b.rewards, equal_nan=True)
    if toy == "mixture":  # continuous: another seed gives other samples
        assert not torch.equal(a.states, c.states)


def test_dps_reproducible_and_chunk_invariant(mixture):
    reward = TorchReward(lambda x: -((x.reshape(len(x), -1)[:, 0] - 2.0) ** 2))
    a = sample(mixture, "dps", reward=reward, generator=seeded(1), guidance_scale=0.05)
    b = sample(mixture, "dps", reward=reward, generator=seeded(1), guidance_scale=0.05, max_batch=4)
    assert torch.allclose(a.states, b.states, atol=1e-12)


@pytest.mark.parametrize("method, alpha", [("svdd", 0.0), ("svdd", 0.3), ("pretrained", 0.0)])
@pytest.mark.parametrize("toy", ["masked_toy", "mixture"])
def test_per_sample_generators_make_a_sample_independent_of_its_batch(method, alpha, toy, request):
    process = request.getfixturevalue(toy)
    reward = weighted_sum if toy == "masked_toy" else near_two
    whole = sample(
        process, method, reward=reward, alpha=alpha, num_samples=8, generator=[seeded(100 + i) for i in range(8)]
    )
    first = sample(
        process, method, reward=reward, alpha=alpha, num_samples=3, generator=[seeded(100 + i) for i in range(3)]
    )
    rest = sample(
        process,
        method,
        reward=reward,
        alpha=alpha,
        num_samples=5,
        max_batch=7,
        generator=[seeded(100 + i) for i in range(3, 8)],
    )
    assert torch.equal(whole.states, torch.cat([first.states, rest.states]))


# -- NaN and failure policy ----------------------------------------------------------------------


def test_nan_values_never_win_and_all_nan_rows_fall_back(masked_toy):
    def no_leading_zero(seqs):  # NaN = invalid object
        return [math.nan if s[0] == 0 else weighted_sum([s])[0] for s in seqs]

    res = sample(masked_toy, "svdd", reward=no_leading_zero, num_samples=64, num_candidates=16)
    pre = sample(masked_toy, "pretrained", reward=no_leading_zero, num_samples=64)
    assert np.isnan(pre.rewards).sum() > 10
    assert np.isnan(res.rewards).sum() <= 2
    # a chosen value is invalid only where every candidate of its row was: the fallback rows
    assert sum(step["invalid"] for step in res.trace) == res.stats["fallback_rows"]

    everything_invalid = sample(masked_toy, "svdd", reward=lambda s: [math.nan] * len(s))
    assert everything_invalid.stats["fallback_rows"] == N * len(masked_toy.timesteps)
    assert np.isnan(everything_invalid.rewards).all()
    assert all(step["invalid"] == N for step in everything_invalid.trace)


def test_neg_inf_and_huge_values_do_not_break_selection(masked_toy):
    def extreme(seqs):
        return [-math.inf if s[0] == 0 else 1e300 * (1 + s[1]) for s in seqs]

    for alpha in (0.0, 0.01):
        res = sample(masked_toy, "svdd", reward=extreme, alpha=alpha, num_candidates=16)
        assert np.isfinite(res.rewards).all()
    res = sample(masked_toy, "smc", reward=extreme, alpha=0.01)
    assert np.isfinite(res.rewards).all()


def test_a_raising_reward_names_itself_and_the_object(masked_toy):
    def picky(seqs):
        if any(s[0] == 1 for s in seqs):
            raise ValueError("cannot score this")
        return [0.0] * len(seqs)

    with pytest.raises(RewardError, match=r"picky.*\(1, "):
        sample(masked_toy, "svdd", reward=picky)
    penalised = sample(masked_toy, "svdd", reward=Reward(picky, on_error=-5.0), num_candidates=1)
    assert set(np.unique(penalised.rewards)) <= {0.0, -5.0}


# -- argument errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        (dict(num_candidates=0), ValueError, "num_candidates must be an integer >= 1"),
        (dict(num_candidates=2.5), ValueError, "num_candidates"),
        (dict(num_samples=0), ValueError, "num_samples"),
        (dict(alpha=-0.1), ValueError, "alpha must be a finite number >= 0"),
        (dict(alpha=math.nan), ValueError, "alpha"),
        (dict(method="beam_search"), ValueError, "unknown method 'beam_search'; choose one of pretrained"),
        (dict(max_batch=0), ValueError, "max_batch"),
        (dict(generator=[torch.Generator()] * 2), ValueError, "one generator per sample"),
        (dict(generator=7), TypeError, "generator must be"),
        (dict(value=lambda x, t: x), TypeError, "svdd.LearnedValue"),
        (dict(method="smc", alpha=0.0), ValueError, "smc needs alpha > 0"),
        (dict(method="smc", alpha=1.0, resampling="magic"), ValueError, "multinomial, systematic"),
        (dict(method="svdd", beam_width=3), TypeError, "unknown option.*beam_width"),
        (dict(method="dps"), TypeError, "black box"),
    ],
)
def test_bad_arguments_get_clear_errors(masked_toy, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        sample(masked_toy, **kwargs)


def test_dps_refuses_discrete_states(masked_toy):
    reward = TorchReward(lambda x: x.sum(-1).float())
    with pytest.raises(TypeError, match="continuous process"):
        sample(masked_toy, "dps", reward=reward)


@pytest.mark.parametrize("method", ["svdd", "svdd_r", "smc"])
def test_deterministic_transition_is_refused(method):
    ddim_eta0 = GaussianMixtureDiffusion(num_steps=10, eta=0.0)
    with pytest.raises(ValueError, match="deterministic.*DDIM with eta > 0"):
        sample(ddim_eta0, method, reward=near_two, alpha=0.5)
    # pretrained sampling with it is fine
    assert len(sample(ddim_eta0, "pretrained", reward=near_two).samples) == N


def test_identical_masked_children_are_not_refused(masked_toy):
    """A masked step that unmasks nothing yields identical children; that is normal."""
    frozen = Recording(masked_toy)
    frozen.transition = lambda x, t, out, generator=None: (
        x if t != masked_toy.timesteps[-1] else masked_toy.transition(x, t, out, generator)
    )
    res = sample(frozen, "svdd")
    assert len(res.samples) == N


class Broken(Recording):
    def __init__(self, process, where):
        super().__init__(process)
        self.where = where

    def prior(self, n, generator=None):
        x = super().prior(n, generator)
        return x[:-1] if self.where == "prior" else x

    def model(self, x, t):
        out = super().model(x, t)
        return out[:1] if self.where == "model" else out

    def transition(self, x, t, out, generator=None):
        x = super().transition(x, t, out, generator)
        return x[:, :-1] if self.where == "transition" else x

    def decode(self, x0):
        objs = super().decode(x0)
        return objs[:-1] if self.where == "decode" else objs


@pytest.mark.parametrize(
    "where, pattern",
    [
        ("prior", r"prior returned shape \(5, 3\); expected 6 rows"),
        ("model", "model returned a batch of 1 for 6 inputs"),
        ("transition", "changed the state shape"),
        ("decode", "decode returned"),
    ],
)
def test_mismatched_shapes_are_reported(masked_toy, where, pattern):
    with pytest.raises(ValueError, match=pattern):
        sample(Broken(masked_toy, where), "svdd")


def test_wrong_length_outputs_from_reward_and_value(masked_toy):
    with pytest.raises(RewardError, match="returned 1 values for"):
        sample(masked_toy, reward=lambda seqs: [0.0])
    with pytest.raises(ValueError, match=r"value function .* returned shape \(2,\)"):
        sample(masked_toy, value=svdd.LearnedValue(lambda x, t: torch.zeros(2)))


def test_not_a_process():
    with pytest.raises(TypeError, match="lacks .*transition"):
        svdd.sample(object(), weighted_sum)


def test_result_records_trace_and_config(masked_toy):
    res = sample(masked_toy, "smc", ess_threshold=0.5)
    assert [step["t"] for step in res.trace] == masked_toy.timesteps
    assert all({"value_mean", "value_median", "ess", "resampled"} <= set(step) for step in res.trace)
    assert res.config["method"] == "smc" and res.config["ess_threshold"] == 0.5
    assert res.stats["wall_time_s"] > 0
    assert "smc" in repr(res)


def test_sparse_selection_schedule_costs_and_trace(masked_toy):
    """select_steps=2 on 3 steps selects at steps 0 and 2 (the last), plain steps between."""
    process = Recording(masked_toy)
    res = sample(process, "svdd", select_steps=2)
    t0, t1, t2 = masked_toy.timesteps
    assert process.rows_at == {t0: N, t1: N * M, t2: N}  # step 1 reuses the winner's output
    assert requested(res.stats) == 2 * N * M  # PM values at step 0 + clean candidates at step 2
    assert [step.get("selected") for step in res.trace] == [True, False, True]


def test_sparse_schedule_still_guides_and_validates(mixture):
    K = len(mixture.timesteps)
    sparse = sample(mixture, "svdd", reward=near_two, num_samples=64, num_candidates=8, select_steps=[K // 2, K - 1])
    pre = sample(mixture, "pretrained", reward=near_two, num_samples=64)
    assert np.median(sparse.rewards) > np.median(pre.rewards) + 0.3
    assert sparse.stats["model_calls"] == K * 64 + 64 * 8 - 64  # one step of N·M instead of N
    with pytest.raises(ValueError, match=r"select_steps \[20\] are outside the 20 steps"):
        sample(mixture, "svdd", reward=near_two, select_steps=[3, 20])
    with pytest.raises(ValueError, match="period and must be >= 1"):
        sample(mixture, "svdd", reward=near_two, select_steps=0)
