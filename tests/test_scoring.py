"""Reward and decode de-duplication, the bounded caches and the background reward path (overlap)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from conftest import requested, seeded, weighted_sum

import svdd
from svdd.rewards import RewardError
from svdd.sampling.scoring import LRU, DecodeCache, RewardCache, object_key

N, M = 20, 8  # 160 candidates per step: three model chunks of at most 64 rows on a CPU
METHOD_ALPHA = {"svdd": 0.0, "svdd_r": 0.5, "best_of_n": 0.0, "smc": 0.5}


class Counting:
    """A reward that records every batch it is given and the thread and grad mode it ran in."""

    def __init__(self, fn=weighted_sum):
        self.fn = fn
        self.batches: list[list] = []
        self.threads: set[str] = set()
        self.grad: set[bool] = set()
        self.name = "counting"

    def __call__(self, objects):
        self.batches.append(list(objects))
        self.threads.add(threading.current_thread().name)
        self.grad.add(torch.is_grad_enabled())
        return self.fn(objects)

    @property
    def seen(self) -> int:
        return sum(len(b) for b in self.batches)


def near_two(xs):
    return [-((x - 2.0) ** 2) for x in xs]


def run(process, method, reward, **kw):
    kw.setdefault("alpha", METHOD_ALPHA[method])
    return svdd.sample(
        process, reward, method=method, num_samples=N, num_candidates=M, generator=seeded(0), progress=False, **kw
    )


@pytest.mark.parametrize("method", ["svdd", "svdd_r", "best_of_n", "smc"])
@pytest.mark.parametrize("toy, fn", [("masked_toy", weighted_sum), ("mixture", near_two)])
def test_cache_and_overlap_never_change_samples_and_counts_stay_exact(request, toy, fn, method):
    process = request.getfixturevalue(toy)
    plain_reward = Counting(fn)
    plain = run(process, method, plain_reward, reward_cache=0)
    assert plain.stats["reward_cache_hits"] == 0 and plain.stats["reward_calls"] == plain_reward.seen
    for overlap in (False, True):
        reward = Counting(fn)
        res = run(process, method, reward, overlap=overlap)
        assert torch.equal(res.states, plain.states)
        assert np.array_equal(res.rewards, plain.rewards)
        assert res.samples == plain.samples
        for key in ("model_calls", "model_batches", "value_calls", "fallback_rows"):
            assert res.stats[key] == plain.stats[key]
        assert requested(res.stats) == plain.stats["reward_calls"]  # every object asked for is accounted for
        assert res.stats["reward_calls"] == reward.seen  # ... and reward_calls is what the reward saw
        assert all(len(set(b)) == len(b) for b in reward.batches)  # never a duplicate in a batch
        assert res.trace == plain.trace
    if toy == "masked_toy" and method != "best_of_n":  # 27 possible sequences: most are repeats
        assert res.stats["reward_calls"] < 0.2 * plain.stats["reward_calls"]


def test_overlap_runs_rewards_on_a_background_thread_without_gradients(mixture):
    reward = Counting(near_two)
    res = run(mixture, "svdd", reward, overlap=True)
    assert "svdd-rewards_0" in reward.threads  # the values of the chunks, while the model ran on
    assert reward.grad == {False}
    assert res.config["overlap"] is True and res.config["reward_cache"] == svdd.sampling.scoring.DEFAULT_CACHE_SIZE
    assert not any(t.name.startswith("svdd-rewards") for t in threading.enumerate())  # the thread is stopped


def test_overlap_gives_the_same_molecules_with_selfies_decoding_and_qed():
    from svdd.domains.molecules import QED, load_pretrained

    process = load_pretrained(num_steps=6)
    kw = dict(num_samples=12, num_candidates=8, progress=False)  # 96 children per step: two model chunks
    plain = svdd.sample(process, QED(), generator=seeded(2), reward_cache=0, **kw)
    fast = svdd.sample(process, QED(), generator=seeded(2), overlap=True, **kw)
    assert torch.equal(fast.states, plain.states) and fast.samples == plain.samples
    assert np.array_equal(fast.rewards, plain.rewards, equal_nan=True)
    assert requested(fast.stats) == plain.stats["reward_calls"] > fast.stats["reward_calls"]
    assert fast.stats["decode_calls"] + fast.stats["decode_cache_hits"] == plain.stats["decode_calls"]
    assert fast.stats["decode_cache_hits"] > 0


def test_discrete_states_are_decoded_once_per_distinct_row(masked_toy):
    decoded_rows = []
    decode = masked_toy.decode

    def recording(x0):
        decoded_rows.extend(tuple(r) for r in x0.tolist())
        return decode(x0)

    masked_toy.decode = recording
    res = run(masked_toy, "svdd", weighted_sum)
    assert len(decoded_rows) == len(set(decoded_rows)) == res.stats["decode_calls"] <= 27
    K = len(masked_toy.timesteps)
    assert res.stats["decode_calls"] + res.stats["decode_cache_hits"] == K * N * M


def test_continuous_states_are_decoded_whole():
    cache = DecodeCache(10)
    x = torch.zeros(4, 2)  # four equal float rows
    seen = []
    objects, decoded, hits = cache.decode(x, lambda s: seen.append(s.shape[0]) or s.tolist())
    assert seen == [4] and decoded == 4 and hits == 0 and len(objects) == 4


def test_lru_bound_and_order():
    lru = LRU(3)
    for k in "abc":
        lru.put(k, k.upper())
    assert lru.get("a") == "A"  # now the most recent
    lru.put("d", "D")  # drops b, the least recently used
    assert len(lru) == 3 and lru.get("b") is None and lru.get("a") == "A" and lru.get("d") == "D"


def test_reward_cache_respects_its_size_and_is_shared_across_calls(masked_toy):
    cache = RewardCache(size=5)
    first = run(masked_toy, "svdd", weighted_sum, reward_cache=cache)
    assert len(cache) <= 5
    assert cache.hits + cache.misses == requested(first.stats)
    big = RewardCache(1000)
    a = run(masked_toy, "svdd", weighted_sum, reward_cache=big)
    reward = Counting()
    b = run(masked_toy, "svdd", reward, reward_cache=big)  # another reward object: its own entries
    assert torch.equal(a.states, b.states) and torch.equal(first.states, a.states)
    again = run(masked_toy, "svdd", weighted_sum, reward_cache=big)  # the same reward: all known already
    assert again.stats["reward_calls"] == 0 and torch.equal(again.states, a.states)
    assert b.stats["reward_calls"] == reward.seen > 0


def test_nan_scores_are_shared_within_a_batch_but_never_cached():
    calls = []

    def reward(objects):
        calls.append(list(objects))
        return [float("nan") if o == "bad" else 1.0 for o in objects]

    cache = RewardCache(10)
    values, scored, hits = cache.score(reward, ["bad", "ok", "bad", "ok"])
    assert np.isnan(values[[0, 2]]).all() and (values[[1, 3]] == 1.0).all()
    assert (scored, hits) == (2, 2) and calls == [["bad", "ok"]]
    values, scored, hits = cache.score(reward, ["bad", "ok"])
    assert (scored, hits) == (1, 1) and calls[-1] == ["bad"]  # the NaN is scored again


def test_a_rewards_key_and_cacheable_flag_are_honoured():
    class Lowercase:
        def __init__(self):
            self.seen = []

        def key(self, obj):
            return obj.lower()

        def __call__(self, objects):
            self.seen.append(list(objects))
            return [float(len(o)) for o in objects]

    r = Lowercase()
    values, scored, hits = RewardCache().score(r, ["CCO", "cco", "CCN"])
    assert r.seen == [["CCO", "CCN"]] and (scored, hits) == (2, 1) and list(values) == [3.0, 3.0, 3.0]

    class Noisy(Lowercase):
        cacheable = False

    noisy = Noisy()
    _, scored, hits = RewardCache().score(noisy, ["a", "a"])
    assert noisy.seen == [["a", "a"]] and (scored, hits) == (2, 0)


def test_object_keys():
    assert object_key("CCO") == "CCO"
    assert object_key(1) != object_key(1.0) != object_key(True)
    assert object_key((1, 2)) == object_key((1, 2)) != object_key((2, 1))
    a, b = torch.arange(6.0).reshape(2, 3), torch.arange(6.0).reshape(3, 2)
    assert object_key(a) == object_key(a.clone()) and object_key(a) != object_key(b)
    assert object_key(np.zeros(3)) == object_key(np.zeros(3)) != object_key(np.zeros(3, dtype=np.float32))
    assert object_key(float("nan")) is None and object_key(object()) is None
    assert object_key([np.zeros(2), "x"]) == object_key([np.zeros(2), "x"])


def test_objects_without_a_key_are_scored_every_time():
    seen = []

    def reward(objects):
        seen.extend(objects)
        return [1.0] * len(objects)

    things = [object(), object()]
    _, scored, hits = RewardCache().score(reward, [things[0], things[0], things[1]])
    assert (scored, hits) == (3, 0) and len(seen) == 3


@pytest.mark.parametrize("overlap", [False, True])
def test_a_failing_reward_is_still_named_with_its_object(masked_toy, overlap):
    def fragile(seqs):
        if any(s == (1, 1, 1) for s in seqs):
            raise KeyError("no score for 111")
        return weighted_sum(seqs)

    with pytest.raises(RewardError, match=r"fragile.*KeyError.*\(1, 1, 1\)"):
        run(masked_toy, "svdd", fragile, overlap=overlap)


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (-1, ValueError, "reward_cache must be an integer >= 0"),
        (True, ValueError, "reward_cache must be"),
        ("big", ValueError, "got 'big'"),
    ],
)
def test_bad_reward_cache_is_refused(masked_toy, bad, error, match):
    with pytest.raises(error, match=match):
        run(masked_toy, "svdd", weighted_sum, reward_cache=bad)
    with pytest.raises(ValueError, match="RewardCache size must be an integer >= 1"):
        RewardCache(0)


def test_bad_overlap_is_refused(masked_toy):
    with pytest.raises(TypeError, match="overlap must be True or False; got 'yes'"):
        run(masked_toy, "svdd", weighted_sum, overlap="yes")
