"""Property-style fuzzing of `svdd.sample`'s arguments and of what rewards return (issue 12).

Every draw must end in one of two ways:
* a clear error: a ValueError or TypeError whose message names one of the arguments given (or a
  `RewardError` naming the reward), raised before the reward saw anything when an argument is bad;
* a result whose every reward is the reward of the returned sample, NaN where the reward said
  the item is invalid (None, NaN) and +-inf kept as valid values.
Anything else is a failure: another exception type (crash), an error naming nothing (unclear),
a reward that does not belong to its sample (silent wrong), or a run past `TIMEOUT_S` (hang).

`python tests/test_fuzz_api.py [examples]` runs more draws and prints the outcome counts.
"""

from __future__ import annotations

import collections
import inspect
import math
import re
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

from conftest import toy_probs

import svdd
from svdd.processes.toys import GaussianMixtureDiffusion, MaskedToy
from svdd.rewards import RewardError, TorchReward, evaluate
from svdd.sampling.samplers import METHODS

TIMEOUT_S = 20
ARGUMENTS = (
    "process",
    "reward",
    "method",
    "value",
    "num_samples",
    "num_candidates",
    "alpha",
    "generator",
    "max_batch",
    "progress",
    "callback",
)
OPTIONS = ("resample_fraction", "select_steps", "ess_threshold", "resampling", "guidance_scale", "bogus_option")

# -- what a draw is made of ------------------------------------------------------------------------

junk = st.sampled_from(
    [
        None,
        "2",
        "abc",
        2.5,
        -1,
        0,
        True,
        math.nan,
        math.inf,
        -math.inf,
        [],
        [1, 2],
        {},
        10**12,
        2**31,
        np.float32(0.5),
        np.int64(2),
        torch.tensor(2),
        b"x",
        object(),
    ]
)
# each argument: left out (3 in 6), a valid value (2 in 6) or junk (1 in 6); method and options junk 1 in 10
MODES = st.sampled_from(["default"] * 3 + ["valid"] * 2 + ["junk"])
RARELY_JUNK = st.sampled_from(["valid"] * 9 + ["junk"])
valid = {
    "num_samples": st.one_of(st.integers(1, 4), st.just(np.int64(2))),
    "num_candidates": st.one_of(st.integers(1, 5), st.just(np.int32(3))),
    "alpha": st.one_of(st.just(0.0), st.floats(0.01, 3), st.just(np.float32(0.5))),
    "max_batch": st.one_of(st.none(), st.just("auto"), st.integers(1, 8)),
    "resample_fraction": st.floats(0, 0.9),
    "select_steps": st.one_of(st.none(), st.integers(1, 3), st.lists(st.integers(0, 2), max_size=3)),
    "ess_threshold": st.one_of(st.none(), st.floats(0.01, 1.0)),
    "resampling": st.sampled_from(["multinomial", "systematic", "stratified", "residual"]),
    "guidance_scale": st.floats(-2, 2),
    "bogus_option": junk,
}
invalid = {
    "num_samples": st.one_of(st.integers(-2, 0), junk),
    "num_candidates": st.one_of(st.integers(-2, 0), junk),
    "alpha": st.one_of(st.floats(allow_nan=True, allow_infinity=True), junk),
    "max_batch": st.one_of(st.integers(-2, 0), junk),
    "resample_fraction": st.one_of(st.floats(allow_nan=True, allow_infinity=True), junk),
    "select_steps": st.one_of(
        st.integers(-2, 0),
        st.lists(st.integers(-1, 5), min_size=1, max_size=4),
        st.lists(st.floats(-1, 4), min_size=1, max_size=3),
        junk,
    ),
    "ess_threshold": st.one_of(st.floats(-0.5, 1.5), junk),
    "resampling": st.one_of(st.just("bad"), junk),
    "guidance_scale": st.one_of(st.floats(allow_nan=True, allow_infinity=True), junk),
    "bogus_option": junk,
}
# one score per object: valid floats, invalid markers, values out of float range, junk types
scores = st.one_of(
    st.floats(-1e6, 1e6),
    st.floats(-1e6, 1e6),
    st.sampled_from(
        [
            math.nan,
            math.inf,
            -math.inf,
            None,
            10**400,
            -(10**400),
            1e308,
            -1e308,
            np.float32(1.5),
            np.int64(3),
            True,
            "x",
            [1.0],
            complex(1, 1),
            b"1",
        ]
    ),
)


@dataclass
class RewardSpec:
    """A deterministic reward: object -> pattern[key(object) % len(pattern)], returned as `container`,
    or a broken batch behaviour (`kind`)."""

    pattern: list[Any]
    container: str = "list"
    kind: str = "values"  # values | raises | wrong_length | scalar | none | two_d | mutates
    calls: int = field(default=0, compare=False)

    def score(self, obj: Any) -> Any:
        if isinstance(obj, float):
            key = int(abs(obj) * 1000)
        else:
            key = int(sum((i + 1) * int(v) for i, v in enumerate(obj)))
        return self.pattern[key % len(self.pattern)]

    def __call__(self, objects: list) -> Any:
        self.calls += 1
        values = [self.score(o) for o in objects]
        if self.kind == "raises" and any(self.score(o) is None for o in objects):
            raise KeyError("this reward cannot score an object whose pattern entry is None")
        if self.kind == "wrong_length":
            values = values[:-1]
        elif self.kind == "scalar":
            return 1.0
        elif self.kind == "none":
            return None
        elif self.kind == "two_d":
            return np.ones((len(objects), 2))
        elif self.kind == "mutates":
            objects.pop()
        if self.container == "tuple":
            return tuple(values)
        if self.container == "object_array":
            out = np.empty(len(values), dtype=object)
            out[:] = values
            return out
        if self.container == "float_array":
            try:
                return np.array(values, dtype=np.float64)
            except (TypeError, ValueError, OverflowError):
                return values
        if self.container == "tensor":
            try:
                return torch.tensor(values, dtype=torch.float64)
            except (TypeError, ValueError, RuntimeError, OverflowError):
                return values
        return values


reward_specs = st.builds(
    RewardSpec,
    pattern=st.lists(scores, min_size=1, max_size=4),
    container=st.sampled_from(["list", "tuple", "object_array", "float_array", "tensor"]),
    kind=st.sampled_from(["values"] * 12 + ["raises", "wrong_length", "scalar", "none", "two_d", "mutates"]),
)


@st.composite
def draws(draw: Callable) -> dict[str, Any]:
    """Keyword arguments for `svdd.sample` (each argument left out, valid, or junk) plus the reward spec."""
    kwargs: dict[str, Any] = {"progress": False}
    good = draw(RARELY_JUNK) == "valid"
    kwargs["method"] = draw(st.sampled_from(list(METHODS)) if good else st.sampled_from(["bogus", None, 3]))
    for name in ("num_samples", "num_candidates", "alpha", "max_batch"):
        mode = draw(MODES)
        if mode != "default":
            kwargs[name] = draw(valid[name] if mode == "valid" else invalid[name])
    generator = draw(st.sampled_from(["none"] * 3 + ["one"] * 2 + ["list"] * 3 + ["short_list", "junk"]))
    if generator != "none":
        n = kwargs.get("num_samples", 64)
        length = n if isinstance(n, int) and 0 < n < 10 else 3
        kwargs["generator"] = {
            "one": lambda: torch.Generator().manual_seed(0),
            "list": lambda: [torch.Generator().manual_seed(i) for i in range(length)],
            "short_list": lambda: [torch.Generator().manual_seed(0)],
            "junk": lambda: draw(junk),
        }[generator]()
    takes = [o for o in OPTIONS if o in inspect.signature(METHODS[kwargs["method"]]).parameters] if good else []
    names = st.sampled_from(takes) if takes and draw(RARELY_JUNK) == "valid" else st.sampled_from(OPTIONS)
    for name in draw(st.lists(names, max_size=2, unique=True)):
        kwargs[name] = draw(valid[name] if draw(RARELY_JUNK) == "valid" else invalid[name])
    kwargs["value"] = draw(st.sampled_from([None] * 6 + ["learned", "learned", "learned_bad", "junk"]))
    process = draw(st.sampled_from(["masked", "masked", "mixture"]))
    return {"kwargs": kwargs, "spec": draw(reward_specs), "process": process}


@st.composite
def reward_draws(draw: Callable) -> dict[str, Any]:
    """Valid arguments for a black-box method, and a random reward: the reward outputs are what varies."""
    method = draw(st.sampled_from(["pretrained", "best_of_n", "svdd", "svdd_r", "smc"]))
    kwargs: dict[str, Any] = {
        "progress": False,
        "method": method,
        "num_samples": draw(st.integers(1, 4)),
        "num_candidates": draw(st.integers(1, 4)),
        "alpha": draw(st.floats(0.05, 2) if method == "smc" else st.sampled_from([0.0, 0.5])),
        "value": draw(st.sampled_from([None, None, "learned"])),
    }
    if method == "svdd_r":
        kwargs["resample_fraction"] = draw(st.floats(0.1, 0.9))
    return {"kwargs": kwargs, "spec": draw(reward_specs), "process": draw(st.sampled_from(["masked", "mixture"]))}


# -- running one draw and classifying its outcome ---------------------------------------------------


class Hang(Exception):
    pass


def build(case: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    kwargs = dict(case["kwargs"])
    kwargs.setdefault("num_samples", 3)  # the defaults (64 x 10) are slow for a fuzz draw
    kwargs.setdefault("num_candidates", 3)
    if case["process"] == "mixture":
        process: Any = GaussianMixtureDiffusion(num_steps=3)
    else:
        process = MaskedToy(toy_probs(), vocab_size=3, length=3, num_steps=3)
    reward: Any = case["spec"]
    if kwargs.get("method") == "dps" and case["process"] == "mixture":
        reward = TorchReward(lambda x: -(x**2).reshape(x.shape[0], -1).sum(-1), name="torch_reward")
    value = kwargs.pop("value", None)
    if value == "learned":
        kwargs["value"] = svdd.LearnedValue(lambda x, t: x.reshape(x.shape[0], -1).double().sum(-1))
    elif value == "learned_bad":
        kwargs["value"] = svdd.LearnedValue(lambda x, t: [math.nan, math.inf] * x.shape[0], name="bad_value")
    elif value == "junk":
        kwargs["value"] = "not a value"
    return process, reward, kwargs


def classify(case: dict[str, Any]) -> tuple[str, str]:
    """(outcome, detail): outcome in clear_error, nan_per_item, ok (allowed); crash, unclear,
    silent_wrong, hang (failures)."""
    process, reward, kwargs = build(case)
    # an argument's own name, a member of the process, the reward by name, or the value function
    names = [rf"\b{name}\b" for name in ARGUMENTS + OPTIONS if name not in ("process", "reward", "value")]
    names += [
        rf"\b{type(process).__name__}\.",
        re.escape(repr(svdd.rewards.reward_name(reward))),
        r"\bvalue (function|must)\b",
        r"needs a differentiable reward",
    ]

    def clear(text: str) -> bool:
        return any(re.search(pattern, text) for pattern in names)

    def on_alarm(signum: int, frame: Any) -> None:
        raise Hang()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT_S)
    try:
        result = svdd.sample(process, reward, **kwargs)
    except Hang:
        return "hang", repr(kwargs)
    except (RewardError, ValueError, TypeError) as exc:
        return ("clear_error" if clear(str(exc)) else "unclear"), str(exc)
    except Exception as exc:
        return "crash", f"{type(exc).__name__}: {exc}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    n = kwargs["num_samples"]
    rewards = result.rewards
    if rewards.dtype != np.float64 or rewards.shape != (n,) or len(result.samples) != n:
        return "silent_wrong", f"rewards {rewards.dtype} {rewards.shape} for {n} samples"
    if isinstance(reward, RewardSpec):
        expected = np.array([evaluate(reward, [s])[0] for s in result.samples])
        same = (rewards == expected) | (np.isnan(rewards) & np.isnan(expected))
        if not same.all():
            return "silent_wrong", f"rewards {rewards} but the samples score {expected}"
    return ("nan_per_item" if np.isnan(rewards).any() else "ok"), ""


ALLOWED = {"clear_error", "nan_per_item", "ok"}


@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(draws())
def test_every_draw_is_a_clear_error_or_a_scored_result(case):
    outcome, detail = classify(case)
    assert outcome in ALLOWED, f"{outcome}: {detail} for {case}"


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(reward_draws())
def test_every_reward_output_is_a_clear_error_or_scored_per_item(case):
    outcome, detail = classify(case)
    assert outcome in ALLOWED, f"{outcome}: {detail} for {case}"


@pytest.mark.parametrize("pattern", [[math.nan, 1.0], [None, math.inf], [-math.inf, None, 2.0]])
def test_invalid_items_are_nan_and_infinities_are_kept(pattern):
    """The properties the fuzz test relies on, on fixed draws that hit them."""
    outcome, detail = classify(
        {
            "kwargs": {"progress": False, "method": "best_of_n", "num_samples": 4, "num_candidates": 1},
            "spec": RewardSpec(pattern),
            "process": "masked",
        }
    )
    assert outcome in ("nan_per_item", "ok"), detail


def main(examples: int) -> None:
    """Draw `examples` cases of each strategy and print how many ended in each outcome (with a few failures)."""
    tally: collections.Counter[str] = collections.Counter()
    failures: list[str] = []

    for strategy in (draws(), reward_draws()):

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(strategy)
        def fuzz(case: dict[str, Any]) -> None:
            outcome, detail = classify(case)
            tally[outcome] += 1
            if outcome not in ALLOWED and len(failures) < 20:
                failures.append(f"{outcome}: {detail[:300]}")

        fuzz()
    print(f"{sum(tally.values())} draws: {dict(tally)}")
    for line in failures:
        print(" ", line)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
