"""SVDDScheduler as a drop-in scheduler for unmodified DDPM/DDIM pipelines."""

from __future__ import annotations

import inspect
import json
import os

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers", reason="the diffusers integration needs the images extra")

from conftest import RowCounter, brightness, seeded
from diffusers import (
    DDIMPipeline,
    DDIMScheduler,
    DDPMPipeline,
    DDPMScheduler,
    DiffusionPipeline,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    ImagePipelineOutput,
    PNDMScheduler,
)

import svdd
from svdd.diffusers import DiffusersProcess, SVDDScheduler
from svdd.diffusers.replay import ReplayError
from svdd.diffusers.tiny import tiny_unet

torch.set_num_threads(1)


@pytest.fixture
def ddpm():
    pipe = DDPMPipeline(unet=tiny_unet(), scheduler=DDPMScheduler(beta_schedule="squaredcos_cap_v2"))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run(pipe, seed=0, batch=2, steps=4, **kwargs):
    return pipe(
        batch_size=batch,
        num_inference_steps=steps,
        generator=seeded(seed) if isinstance(seed, int) else seed,
        output_type="np",
        **kwargs,
    )


def test_ddpm_pipeline_swap_counts_and_output_type(ddpm):
    b, m, k = 2, 3, 4
    ddpm.scheduler = SVDDScheduler.from_pipeline(ddpm, reward=brightness, num_candidates=m)
    counter = RowCounter(ddpm.unet)
    try:
        out = run(ddpm, batch=b, steps=k)
    finally:
        counter.remove()
    assert isinstance(out, ImagePipelineOutput) and out.images.shape == (b, 8, 8, 1)
    # the pipeline's own B rows per step, plus PM's replay on the B·M children of every step but
    # the last (clean children are scored by the reward without a UNet call)
    assert counter.rows == k * b + (k - 1) * b * m
    stats = ddpm.scheduler.stats
    assert stats["model_calls"] == (k - 1) * b * m and stats["model_batches"] == k - 1
    assert stats["pipeline_unet_rows"] == k * b
    assert stats["reward_calls"] == k * b * m and stats["steps"] == k


def test_scheduler_equals_the_adapter_path(ddpm):
    """Exact SVDD-PM: the scheduler in the pipeline picks the same children as svdd.sample."""
    base = ddpm.scheduler
    ddpm.scheduler = SVDDScheduler.from_pipeline(ddpm, reward=brightness, num_candidates=3)
    images = run(ddpm, seed=4, batch=3, steps=5).images
    res = svdd.sample(
        DiffusersProcess(ddpm.unet, base, 5),
        brightness,
        num_samples=3,
        num_candidates=3,
        generator=seeded(4),
        progress=False,
    )
    expected = torch.stack(res.samples).permute(0, 2, 3, 1).numpy()
    assert np.allclose(images, expected, atol=1e-4)


def test_scheduler_and_sample_share_counters_and_trace(ddpm):
    """One step function behind both: the same counter names and trace keys, the same counts
    (but the first step's B rows, which the pipeline makes itself) and the same kept values."""
    b, m, k = 3, 3, 5
    base = ddpm.scheduler
    ddpm.scheduler = SVDDScheduler.from_pipeline(ddpm, reward=brightness, num_candidates=m)
    run(ddpm, seed=4, batch=b, steps=k)
    res = svdd.sample(
        DiffusersProcess(ddpm.unet, base, k),
        brightness,
        num_samples=b,
        num_candidates=m,
        generator=seeded(4),
        progress=False,
    )
    stats = ddpm.scheduler.stats
    assert set(res.stats) - {"wall_time_s"} <= set(stats)
    assert stats["model_calls"] == res.stats["model_calls"] - b == (k - 1) * b * m
    for key in ("value_calls", "fallback_rows"):
        assert stats[key] == res.stats[key]
    # the scheduler scores every child; svdd.sample scores the distinct ones (the cache answers the rest)
    requested = res.stats["reward_calls"] + res.stats["reward_cache_hits"]
    assert stats["reward_calls"] + stats["reward_cache_hits"] == requested
    assert stats["pipeline_unet_rows"] == k * b
    assert [set(step) for step in ddpm.scheduler.trace] == [set(step) for step in res.trace]
    for ours, theirs in zip(ddpm.scheduler.trace, res.trace):
        assert ours["t"] == theirs["t"]
        assert np.isclose(ours["value_median"], theirs["value_median"], atol=1e-4)


def test_one_candidate_is_the_base_scheduler(ddpm):
    """M = 1 has nothing to choose from: no replay and no values, and the base's own samples."""
    plain = run(ddpm, seed=6, batch=3, steps=4).images
    ddpm.scheduler = SVDDScheduler.from_pipeline(ddpm, reward=brightness, num_candidates=1, alpha=0.5)
    assert np.array_equal(run(ddpm, seed=6, batch=3, steps=4).images, plain)
    stats = ddpm.scheduler.stats
    assert stats["model_calls"] == stats["value_calls"] == 0 and stats["reward_calls"] == 3  # the last step


def test_guidance_raises_reward_and_seeds_reproduce(ddpm):
    plain = run(ddpm, seed=1, batch=8, steps=8).images
    ddpm.scheduler = SVDDScheduler.from_pipeline(ddpm, reward=brightness, num_candidates=4)
    guided = run(ddpm, seed=1, batch=8, steps=8).images
    again = run(ddpm, seed=1, batch=8, steps=8).images
    other = run(ddpm, seed=2, batch=8, steps=8).images
    assert np.array_equal(guided, again)
    assert not np.array_equal(guided, other)
    assert np.median(guided.mean(axis=(1, 2, 3))) > np.percentile(plain.mean(axis=(1, 2, 3)), 90)


def test_generator_lists_are_expanded_per_sample(ddpm):
    ddpm.scheduler = SVDDScheduler.from_pipeline(ddpm, reward=brightness, num_candidates=3, alpha=0.1)
    pair = run(ddpm, seed=[seeded(20), seeded(21)]).images
    alone = run(ddpm, seed=[seeded(21)], batch=1).images
    assert np.allclose(pair[1], alone[0], atol=1e-5)
    with pytest.raises(ValueError, match="generators"):
        ddpm.scheduler.step(
            torch.zeros(2, 1, 8, 8), ddpm.scheduler.timesteps[0], torch.zeros(2, 1, 8, 8), generator=[seeded(0)] * 3
        )


def test_ddim_pipeline_with_eta(ddpm):
    pipe = DDIMPipeline(unet=ddpm.unet, scheduler=DDPMScheduler())
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=brightness, num_candidates=2)
    assert "eta" in inspect.signature(pipe.scheduler.step).parameters
    assert isinstance(pipe.scheduler.base, DDIMScheduler)
    out = run(pipe, steps=3, eta=1.0)
    assert isinstance(out, ImagePipelineOutput) and pipe.scheduler.stats["steps"] == 3
    # DDIM at eta = 0 (the pipelines' default) is deterministic: svdd steps it at its own eta (1.0)
    assert pipe.scheduler.config.eta == 1.0
    at_zero, at_one = run(pipe, steps=3, eta=0.0), run(pipe, steps=3, eta=1.0)
    assert np.array_equal(at_zero.images, at_one.images)


def test_step_and_set_timesteps_declare_the_base_parameters(ddpm):
    wrapper = SVDDScheduler.from_pipeline(ddpm, reward=brightness)
    step = inspect.signature(wrapper.step).parameters
    assert list(step) == list(inspect.signature(ddpm.scheduler.step).parameters)
    assert "generator" in step and "eta" not in step
    assert "timesteps" in inspect.signature(wrapper.set_timesteps).parameters
    assert wrapper.order == 1 and wrapper.init_noise_sigma == 1.0


@pytest.mark.parametrize(
    "base",
    [EulerDiscreteScheduler(), PNDMScheduler(), HeunDiscreteScheduler()],
    ids=lambda s: type(s).__name__,
)
def test_refuses_deterministic_or_order_2_bases(ddpm, base):
    ddpm.scheduler = base
    with pytest.raises(ValueError, match="DDPMScheduler") as err:
        SVDDScheduler.from_pipeline(ddpm, reward=brightness)
    assert "deterministic" in str(err.value) or "order 2" in str(err.value)


def test_stateful_and_multistep_bases_run(ddpm):
    for base in (EulerAncestralDiscreteScheduler(), DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++")):
        ddpm.scheduler = base
        ddpm.scheduler = SVDDScheduler.from_pipeline(ddpm, reward=brightness, num_candidates=2)
        out = run(ddpm, steps=4)
        assert out.images.shape == (2, 8, 8, 1) and np.isfinite(out.images).all()
        assert ddpm.scheduler.stats["steps"] == 4


def test_learned_value_needs_no_extra_unet_call(ddpm):
    seen = []

    def value(x, t):
        seen.append((x.shape[0], float(t[0])))
        return x.mean(dim=(1, 2, 3))

    ddpm.scheduler = SVDDScheduler.from_pipeline(
        ddpm, reward=brightness, num_candidates=3, value=svdd.LearnedValue(value)
    )
    counter = RowCounter(ddpm.unet)
    try:
        run(ddpm, steps=4)
    finally:
        counter.remove()
    assert counter.rows == 4 * 2
    timesteps = [float(t) for t in ddpm.scheduler.timesteps]
    assert seen == [(6, t) for t in timesteps[1:]]  # children are scored at the next timestep
    assert ddpm.scheduler.stats["reward_calls"] == 6  # the last step's clean children


def test_save_and_reload_round_trip(ddpm, tmp_path):
    ddpm.scheduler = SVDDScheduler.from_pipeline(ddpm, reward=brightness, num_candidates=3, alpha=0.0)
    before = run(ddpm, seed=3).images
    ddpm.save_pretrained(tmp_path)
    with open(os.path.join(tmp_path, "scheduler", "scheduler_config.json")) as f:
        config = json.load(f)
    assert config["base_scheduler_class"] == "DDPMScheduler"
    assert config["base_scheduler_config"]["beta_schedule"] == "squaredcos_cap_v2"
    assert config["num_candidates"] == 3 and "reward" not in config

    alone = SVDDScheduler.from_pretrained(tmp_path, subfolder="scheduler")
    assert alone.base.config.beta_schedule == "squaredcos_cap_v2" and alone.reward is None

    loaded = DiffusionPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert isinstance(loaded.scheduler, SVDDScheduler)
    with pytest.raises(ValueError, match="attach"):
        run(loaded, seed=3)
    loaded.scheduler.attach(reward=brightness, unet=loaded.unet)
    assert np.allclose(run(loaded, seed=3).images, before, atol=1e-6)


def test_replay_refuses_a_model_output_it_cannot_reproduce(ddpm):
    wrapper = SVDDScheduler.from_pipeline(ddpm, reward=brightness, num_candidates=2)
    wrapper.set_timesteps(4)
    t = wrapper.timesteps[0]
    x = torch.randn(2, 1, 8, 8, generator=seeded(0))
    eps = ddpm.unet(x, t).sample
    with pytest.raises(ReplayError, match="not the UNet's output"):
        wrapper.step(eps * 0.5, t, x, generator=seeded(1))
    with pytest.raises(ReplayError, match="timestep"):
        wrapper.step(eps, wrapper.timesteps[1], x, generator=seeded(1))
    fresh = SVDDScheduler(base_scheduler_config=dict(ddpm.scheduler.config), reward=brightness)
    fresh.set_timesteps(4)
    with pytest.raises(ValueError, match="UNet"):
        fresh.step(eps, t, x)


def test_rewrapping_replaces_the_hook(ddpm):
    first = SVDDScheduler.from_pipeline(ddpm, reward=brightness, num_candidates=2)
    ddpm.scheduler = first
    second = SVDDScheduler.from_pipeline(ddpm, reward=brightness, num_candidates=2)
    assert first.replay is None and isinstance(second.base, DDPMScheduler)
    assert len(ddpm.unet._forward_hooks) == 1
