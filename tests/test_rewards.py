from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
import torch

from svdd.rewards import (
    Reward,
    RewardError,
    TorchReward,
    Transformed,
    WeightedSum,
    clipped,
    evaluate,
    is_differentiable,
    negated,
    reward_name,
    scaled,
)


# Module-level so that process pools can pickle them.
def string_length(objects):
    return [float(len(s)) for s in objects]


def fails_on_bad(objects):
    if "bad" in objects:
        raise ValueError("cannot parse")
    return [1.0] * len(objects)


class Counting:
    """A batch reward that records every object it is asked to score."""

    def __init__(self, fn=lambda o: float(np.sum(np.asarray(o, dtype=float)))):
        self.fn, self.seen, self.invocations = fn, [], 0

    def __call__(self, objects):
        self.invocations += 1
        self.seen.extend(objects)
        return np.array([self.fn(o) for o in objects])


# ------------------------------------------------------------------------ names and evaluate


def test_reward_name_prefers_name_attribute_then_qualname_then_class():
    class Scorer:
        def __call__(self, objects):
            return [0.0] * len(objects)

    named = Scorer()
    named.name = "qed"
    assert reward_name(named) == "qed"
    assert reward_name(string_length) == "string_length"
    assert reward_name(Scorer()) == "Scorer"
    assert reward_name(Reward(string_length)) == "string_length"


def test_evaluate_returns_float64_and_accepts_lists_arrays_tensors():
    objs = ["a", "bb", "ccc"]
    for fn in (
        string_length,
        lambda o: np.arange(len(o), dtype=np.int32),
        lambda o: torch.ones(len(o), requires_grad=True) * 2,
        lambda o: [None, 1, torch.tensor(2.0)],
    ):
        out = evaluate(fn, objs)
        assert out.dtype == np.float64 and out.shape == (3,)
    assert np.isnan(evaluate(lambda o: [None, 1, 2], objs)[0])


def test_evaluate_rejects_wrong_length():
    with pytest.raises(RewardError, match=r"reward 'short' returned 2 values for 3 objects"):
        evaluate(Reward(lambda o: [1.0, 2.0], name="short"), ["a", "b", "c"])
    with pytest.raises(RewardError, match="scalar.*per_item=True"):
        evaluate(lambda o: 1.0, ["a"])
    with pytest.raises(RewardError, match=r"shape \(2, 1\)"):
        evaluate(lambda o: np.ones((2, 1)), ["a", "b"])


def test_evaluate_rejects_non_numeric_output():
    with pytest.raises(RewardError, match="<lambda>' returned list.*not convertible to float"):
        evaluate(lambda o: ["high"] * len(o), ["a"])
    with pytest.raises(RewardError, match="returned ndarray.*1-D numpy array"):
        evaluate(lambda o: np.array(["x"]), ["a"])
    with pytest.raises(RewardError, match="returned None"):
        evaluate(lambda o: None, ["a"])


def test_evaluate_empty_does_not_call_reward():
    def boom(objects):
        raise AssertionError("called")

    out = evaluate(boom, [])
    assert out.dtype == np.float64 and out.shape == (0,)


def test_evaluate_names_reward_and_offending_object():
    with pytest.raises(RewardError) as info:
        evaluate(fails_on_bad, ["ok", "fine", "bad", "good"])
    msg = str(info.value)
    assert "'fails_on_bad'" in msg and "ValueError: cannot parse" in msg
    assert "on object 2 ('bad')" in msg and "on_error='nan'" in msg
    assert isinstance(info.value.__cause__, ValueError)


def test_evaluate_truncates_long_object_repr():
    with pytest.raises(RewardError) as info:
        evaluate(lambda o: [1 / 0], ["x" * 10_000])
    assert len(str(info.value)) < 600


def test_evaluate_reports_batch_only_failures():
    def needs_small_batches(objects):
        if len(objects) > 2:
            raise MemoryError("out of memory")
        return [0.0] * len(objects)

    with pytest.raises(RewardError, match="batch of 3 objects, but on none of them alone"):
        evaluate(needs_small_batches, ["a", "b", "c"])


def test_evaluate_does_not_catch_keyboard_interrupt():
    def interrupted(objects):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate(interrupted, ["a"])


# ------------------------------------------------------------------------------ Reward policy


@pytest.mark.parametrize("on_error, expected", [("nan", math.nan), (-5.0, -5.0)])
def test_on_error_penalty_only_hits_failing_items(on_error, expected):
    reward = Reward(fails_on_bad, on_error=on_error)
    out = evaluate(reward, ["ok", "bad", "fine", "bad2"])
    np.testing.assert_array_equal(out, [1.0, expected, 1.0, 1.0])
    assert reward.failures == 1
    assert reward.batches == 1 + 4  # the failed batch, then one call per object


def test_on_error_raise_propagates_and_evaluate_locates_object():
    reward = Reward(fails_on_bad, name="parser")
    with pytest.raises(ValueError):
        reward(["bad"])
    with pytest.raises(RewardError, match="'parser'.*object 1 \\('bad'\\).*pass on_error='nan'"):
        evaluate(reward, ["ok", "bad"])


def test_returned_nan_and_inf_are_kept():
    reward = Reward(lambda o: [math.nan, math.inf, -math.inf], on_error="nan")
    out = reward(["a", "b", "c"])
    assert np.isnan(out[0]) and out[1] == math.inf and out[2] == -math.inf
    assert reward.failures == 0


def test_dedupe_strings_scores_each_once_and_copies_back():
    fn = Counting(len)
    reward = Reward(fn)
    out = reward(["aa", "b", "aa", "ccc", "b", "aa"])
    np.testing.assert_array_equal(out, [2, 1, 2, 3, 1, 2])
    assert fn.seen == ["aa", "b", "ccc"]
    assert reward.calls == 3 and reward.batches == 1


def test_dedupe_arrays_and_tensors_by_value():
    fn = Counting()
    reward = Reward(fn)
    a = np.arange(3.0)
    objs = [a, a.copy(), np.arange(3), a + 1, np.arange(3.0).reshape(3, 1)]
    np.testing.assert_array_equal(reward(objs), [3, 3, 3, 6, 3])
    assert len(fn.seen) == 4  # int dtype and the reshaped copy are different objects

    fn = Counting(lambda t: float(t.detach().sum()))
    reward = Reward(fn)
    t = torch.tensor([1.0, 2.0], requires_grad=True)
    out = reward([t, t.detach().clone(), torch.tensor([1.0, 3.0]), torch.tensor([1.0, 2.0])])
    np.testing.assert_array_equal(out, [3, 3, 4, 3])
    assert len(fn.seen) == 2


def test_dedupe_lists_and_images():
    from PIL import Image  # PIL is optional for the library, present in the test env

    fn = Counting(lambda o: 1.0)
    reward = Reward(fn)
    img = Image.new("RGB", (4, 4), (10, 20, 30))
    reward(
        [
            img,
            Image.new("RGB", (4, 4), (10, 20, 30)),
            Image.new("L", (4, 4)),
            [1, np.zeros(2)],
            [1, np.zeros(2)],
            {"unhashable": 1},
            {"unhashable": 1},
        ]
    )
    assert len(fn.seen) == 2 + 1 + 2  # two images, one list, two dicts (never deduped)


def test_dedupe_off_scores_everything():
    fn = Counting(len)
    Reward(fn, dedupe=False)(["a", "a", "a"])
    assert fn.seen == ["a", "a", "a"]


def test_key_canonicalises():
    fn = Counting(len)
    reward = Reward(fn, key=str.lower)
    np.testing.assert_array_equal(reward(["CCO", "cco", "CcO", "N"]), [3, 3, 3, 1])
    assert fn.seen == ["CCO", "N"]


def test_cache_across_calls_counts_hits_and_skips_failures():
    fn = Counting(lambda s: 0.0 if s == "bad" else float(len(s)))

    def flaky(objects):
        if "bad" in objects:
            raise RuntimeError("oracle down")
        return fn(objects)

    reward = Reward(flaky, cache=True, on_error="nan")
    reward(["ab", "abc", "bad"])
    assert reward.cache_hits == 0
    out = reward(["abc", "new", "ab", "bad", "abc"])
    np.testing.assert_array_equal(out[[0, 1, 2, 4]], [3, 3, 2, 3])
    assert np.isnan(out[3])
    assert reward.cache_hits == 3  # abc, ab, abc; "bad" failed so it is not cached
    assert "new" in fn.seen and fn.seen.count("abc") == 1
    reward.clear_cache()
    reward.reset_counters()
    reward(["ab"])
    assert reward.cache_hits == 0 and reward.calls == 1


def test_per_item_functions():
    def parse(s):
        if s == "bad":
            raise ValueError("nope")
        return torch.tensor([float(len(s))])  # one-element tensor is accepted

    reward = Reward(parse, per_item=True, on_error=0.0)
    np.testing.assert_array_equal(reward(["abc", "bad", "a"]), [3, 0, 1])
    assert reward.batches == 3 and reward.failures == 1
    with pytest.raises(RewardError, match="per-item reward.*expected one float"):
        Reward(lambda s: "x", per_item=True)(["a"])


def test_chunk_size_serial_counts_batches():
    fn = Counting(len)
    reward = Reward(fn, chunk_size=2)
    np.testing.assert_array_equal(reward(["a", "bb", "ccc", "dddd", "eeeee"]), [1, 2, 3, 4, 5])
    assert fn.invocations == 3 and reward.batches == 3 and reward.calls == 5


@pytest.mark.parametrize("make", [lambda: ThreadPoolExecutor(3), lambda: ProcessPoolExecutor(max_workers=2)])
def test_executor_matches_serial_and_keeps_order(make):
    objs = [("x" * (i % 7)) + str(i) for i in range(23)] + ["bad", "ok"]
    serial = Reward(string_length)(objs)
    with make() as executor:
        parallel = Reward(string_length, executor=executor)
        np.testing.assert_array_equal(parallel(objs), serial)
        assert parallel.batches > 1 and parallel.calls == len(objs)
        chunked = Reward(fails_on_bad, executor=executor, chunk_size=5, on_error=-1.0)
        out = chunked(objs)
        assert chunked.failures == 1 and out[-2] == -1.0 and (out[:-2] == 1.0).all()
        with pytest.raises(RewardError, match="object 0 \\('bad'\\)"):
            evaluate(Reward(fails_on_bad, executor=executor), ["bad", "ok"])


def test_constructor_validation():
    with pytest.raises(ValueError, match="on_error"):
        Reward(string_length, on_error="ignore")
    with pytest.raises(ValueError, match="on_error"):
        Reward(string_length, on_error=True)
    with pytest.raises(ValueError, match="chunk_size"):
        Reward(string_length, chunk_size=0)
    with pytest.raises(TypeError, match="executor"):
        Reward(string_length, executor=object())
    with pytest.raises(TypeError, match="callable"):
        Reward("not a function")


def test_repr_mentions_name_policy_and_counters():
    reward = Reward(string_length, on_error="nan", chunk_size=8)
    reward(["a"])
    text = repr(reward)
    assert "string_length" in text and "on_error='nan'" in text and "calls=1" in text


# ------------------------------------------------------------------------------ composition


def test_weighted_sum_values_name_and_nan():
    length = Reward(lambda o: [len(s) for s in o], name="len")
    vowels = Reward(lambda o: [math.nan if s == "?" else sum(c in "aeiou" for c in s) for s in o], name="vowels")
    total = WeightedSum([(length, 1.0), (vowels, -0.5)])
    assert total.name == "1.0*len - 0.5*vowels"
    out = evaluate(total, ["banana", "xyz", "?"])
    np.testing.assert_allclose(out[:2], [6 - 1.5, 3])
    assert np.isnan(out[2])
    with pytest.raises(TypeError):
        WeightedSum([length])


def test_weighted_sum_errors_name_the_term():
    total = WeightedSum([(string_length, 1.0), (fails_on_bad, 2.0)])
    with pytest.raises(RewardError, match="'fails_on_bad'.*'bad'"):
        evaluate(total, ["ok", "bad"])


def test_transforms():
    base = Reward(lambda o: [-2.0, 0.5, math.nan, 3.0], name="r")
    objs = ["a", "b", "c", "d"]
    neg = negated(base)
    assert neg.name == "-r"
    np.testing.assert_array_equal(neg(objs), [2.0, -0.5, math.nan, -3.0])
    np.testing.assert_array_equal(scaled(base, 2.0, 1.0)(objs), [-3.0, 2.0, math.nan, 7.0])
    np.testing.assert_array_equal(clipped(base, low=0.0)(objs), [0.0, 0.5, math.nan, 3.0])
    np.testing.assert_array_equal(clipped(base, 0.0, 1.0)(objs), [0.0, 0.5, math.nan, 1.0])
    with pytest.raises(ValueError):
        clipped(base, 1.0, 0.0)
    np.testing.assert_array_equal(Transformed(base, np.abs)(objs), [2.0, 0.5, math.nan, 3.0])
    with pytest.raises(RewardError, match="returned 1 values for 4 objects"):
        Transformed(base, lambda v: v[:1], name="first")(objs)


# --------------------------------------------------------------------------- differentiable


def test_torch_reward_gradient_flows():
    reward = TorchReward(lambda x: -((x - 2.0) ** 2).sum(dim=1), name="peak")
    assert reward.differentiable and is_differentiable(reward)
    assert not is_differentiable(string_length) and not is_differentiable(Reward(string_length))
    x = torch.tensor([[0.0, 1.0], [3.0, 2.0]], requires_grad=True)
    values = reward.tensor(x)
    assert values.requires_grad
    values.sum().backward()
    torch.testing.assert_close(x.grad, -2 * (x.detach() - 2.0))


def test_torch_reward_call_on_objects():
    reward = TorchReward(lambda x: x.sum(dim=1))
    out = evaluate(reward, [torch.tensor([1.0, 2.0]), np.array([3, 4]), [0.5, 0.5]])
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [3.0, 7.0, 1.0])
    assert evaluate(reward, []).shape == (0,)
    with pytest.raises(RewardError, match="shape"):
        reward.tensor(torch.ones(3, 2)[:, None].expand(3, 2, 2))  # returns [3, 2]
    with pytest.raises(RewardError, match="one shape"):
        reward([torch.ones(2), torch.ones(3)])
