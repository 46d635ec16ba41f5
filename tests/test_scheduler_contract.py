"""`SVDDScheduler` held to the contract diffusers' common scheduler tests hold every scheduler to
(written here from their checks): config round trips, step shapes, tuple/dataclass outputs, the
public members, add_noise, trained betas, compatibles and attribute access; over each stochastic
base it wraps, and over the deterministic defaults it makes stochastic."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers", reason="the diffusers integration needs the images extra")

from conftest import seeded
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    LCMScheduler,
)

from svdd.diffusers import SVDDScheduler

BASES = [
    DDPMScheduler(),
    DDIMScheduler(),
    EulerAncestralDiscreteScheduler(),
    DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++"),
    LCMScheduler(),
    FlowMatchEulerDiscreteScheduler(stochastic_sampling=True),
    FlowMatchEulerDiscreteScheduler(),  # deterministic: svdd gives it its stochastic flow step
    DPMSolverMultistepScheduler(),  # deterministic: run as its SDE variant
]
IDS = [f"{type(b).__name__}{'-sde' if 'sde' in str(b.config.get('algorithm_type')) else ''}" for b in BASES]
IDS[-2], IDS[-1] = "FlowMatchEuler-ode", "DPMSolverMultistep-ode"
SAMPLE = torch.randn(2, 3, 8, 8, generator=seeded(0))


def wrap(base, **kwargs):
    return SVDDScheduler(base_scheduler_class=type(base).__name__, base_scheduler_config=dict(base.config), **kwargs)


def one_step(scheduler, k=0, **kwargs):
    scheduler.set_timesteps(10)
    t = scheduler.timesteps[k]
    return scheduler.step(0.1 * SAMPLE, t, SAMPLE, generator=seeded(1), **kwargs)


@pytest.fixture(params=BASES, ids=IDS)
def base(request):
    return request.param


@pytest.mark.parametrize("given", ["defaults", "everything"])
def test_save_and_load_give_an_equal_config_and_identical_steps(base, given, tmp_path):
    extra = {} if given == "defaults" else dict(num_candidates=1, alpha=0.0, max_batch=None, decode_batch=16)
    scheduler = wrap(base, **extra)
    scheduler.save_pretrained(tmp_path)
    loaded = SVDDScheduler.from_pretrained(tmp_path)
    config = {k: v for k, v in dict(scheduler.config).items() if k != "_use_default_values"}
    assert config == dict(loaded.config)
    assert "_use_default_values" not in loaded.config
    one = wrap(base, num_candidates=1)  # one candidate and no reward: the base scheduler itself
    one.save_config(tmp_path)
    again = SVDDScheduler.from_pretrained(tmp_path)
    assert torch.equal(one_step(one).prev_sample, one_step(again).prev_sample)


def test_one_candidate_without_a_reward_is_the_base(base):
    ours = wrap(base, num_candidates=1)
    plain = type(ours.base).from_config(ours.base.config)
    for scheduler in (ours, plain):
        scheduler.set_timesteps(10)
    for k in range(3):  # consecutive steps, so stateful bases (step index, solver history) walk along
        t = plain.timesteps[k]
        mine = ours.step(0.1 * SAMPLE, t, SAMPLE, generator=seeded(k)).prev_sample
        theirs = plain.step(0.1 * SAMPLE, t, SAMPLE, generator=seeded(k)).prev_sample
        assert torch.equal(mine, theirs)


def test_step_shape_and_tuple_equal_the_dataclass(base):
    scheduler = wrap(base, num_candidates=1)
    first, second = one_step(scheduler, 0), one_step(scheduler, 3)
    assert first.prev_sample.shape == SAMPLE.shape == second.prev_sample.shape
    as_tuple = one_step(scheduler, 0, return_dict=False)
    for value, field in zip(as_tuple, first.to_tuple()):
        if isinstance(value, torch.Tensor):
            assert torch.allclose(torch.nan_to_num(value), torch.nan_to_num(field), atol=1e-5)


def test_public_members_and_add_noise(base):
    scheduler = wrap(base, num_candidates=1)
    assert hasattr(scheduler, "init_noise_sigma") and hasattr(scheduler, "step")
    assert scheduler.scale_model_input(SAMPLE, 0.0).shape == SAMPLE.shape
    scheduler.set_timesteps(10)
    t = scheduler.timesteps[5][None]
    if isinstance(scheduler.base, FlowMatchEulerDiscreteScheduler):
        noised = scheduler.scale_noise(SAMPLE, t, torch.randn_like(SAMPLE))
    else:
        noised = scheduler.add_noise(SAMPLE, torch.randn_like(SAMPLE), t)
    assert noised.shape == SAMPLE.shape
    init = inspect.signature(SVDDScheduler.__init__).parameters
    assert "kwargs" not in init and not SVDDScheduler._deprecated_kwargs


def test_compatibles_build_from_the_config(base):
    scheduler = wrap(base)
    assert scheduler.compatibles and all(c is not None for c in scheduler.compatibles)
    for other in scheduler.compatibles:
        assert other.from_config(scheduler.config) is not None
    same = type(base).from_config(scheduler.config)  # the base's own keys sit beside the wrapper's
    keys = [k for k in dict(scheduler.base.config) if not k.startswith("_")]
    assert {k: same.config[k] for k in keys} == {k: scheduler.base.config[k] for k in keys} or isinstance(
        base, DPMSolverMultistepScheduler
    )  # a deterministic DPM-Solver's config holds the user's algorithm_type, the SDE variant is stepped


def test_trained_betas_survive_save_and_load_with_a_two_step_training_schedule(tmp_path):
    base = DDPMScheduler(num_train_timesteps=2, trained_betas=np.array([0.1, 0.3]))
    scheduler = wrap(base)
    scheduler.save_pretrained(tmp_path)
    loaded = SVDDScheduler.from_pretrained(tmp_path)
    assert scheduler.base.betas.tolist() == loaded.base.betas.tolist() == pytest.approx([0.1, 0.3])


def test_attribute_access_follows_diffusers():
    scheduler = wrap(DDPMScheduler())
    scheduler.dummy_attribute = 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert scheduler.dummy_attribute == 5 and callable(scheduler.save_pretrained)
    scheduler.register_to_config(test_attribute=5)
    with pytest.warns(FutureWarning):
        assert scheduler.test_attribute == 5
    with pytest.raises(AttributeError, match="'SVDDScheduler' object has no attribute 'does_not_exist'"):
        scheduler.does_not_exist  # noqa: B018
