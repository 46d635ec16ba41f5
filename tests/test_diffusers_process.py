"""DiffusersProcess (a diffusers UNet + scheduler as a DenoisingProcess) and SVDDPipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers", reason="the diffusers adapter needs the images extra")

from conftest import RowCounter, brightness, seeded
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    HeunDiscreteScheduler,
    KDPM2DiscreteScheduler,
    LCMScheduler,
    PNDMScheduler,
    UniPCMultistepScheduler,
)

import svdd
from svdd.diffusers import DiffusersProcess, SVDDPipeline
from svdd.diffusers.tiny import tiny_unet

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def unet():
    return tiny_unet()


STOCHASTIC = [
    (DDPMScheduler, {}, {}),
    (DDIMScheduler, {}, {"eta": 1.0}),
    (EulerAncestralDiscreteScheduler, {}, {}),
    (DPMSolverMultistepScheduler, {"algorithm_type": "sde-dpmsolver++", "solver_order": 1}, {}),
    (LCMScheduler, {}, {}),
    (FlowMatchEulerDiscreteScheduler, {"stochastic_sampling": True}, {}),
]


@pytest.mark.parametrize("cls, config, kwargs", STOCHASTIC, ids=[c[0].__name__ for c in STOCHASTIC])
def test_pm_costs_m_unet_rows_per_step(unet, cls, config, kwargs):
    n, m, k = 3, 4, 5
    process = DiffusersProcess(unet, cls(**config), k, **kwargs)
    counter = RowCounter(unet)
    try:
        res = svdd.sample(process, brightness, num_samples=n, num_candidates=m, generator=seeded(), progress=False)
    finally:
        counter.remove()
    expected = n + (k - 1) * n * m  # first step: the N parents; then the N·M children per step
    assert res.stats["model_calls"] == expected
    assert counter.rows == expected
    assert len(res.samples) == n and res.samples[0].shape == (1, 8, 8)
    assert all(float(s.min()) >= 0.0 and float(s.max()) <= 1.0 for s in res.samples)


def test_max_batch_chunks_unet_calls_without_changing_samples(unet):
    process = DiffusersProcess(unet, DDPMScheduler(), 4)
    whole = svdd.sample(process, brightness, num_samples=2, num_candidates=3, generator=seeded(), progress=False)
    counter = RowCounter(unet)
    try:
        chunked = svdd.sample(
            process, brightness, num_samples=2, num_candidates=3, generator=seeded(), max_batch=4, progress=False
        )
    finally:
        counter.remove()
    assert counter.calls == 1 + 3 * 2  # 2 rows once, then 6 children in chunks of 4 and 2
    for a, b in zip(whole.samples, chunked.samples):
        assert torch.allclose(a, b, atol=1e-5)


def test_pm_raises_brightness_above_pretrained(unet):
    process = DiffusersProcess(unet, DDPMScheduler(), 10)
    base = svdd.sample(process, brightness, method="pretrained", num_samples=16, generator=seeded(1), progress=False)
    guided = svdd.sample(process, brightness, num_samples=16, num_candidates=4, generator=seeded(1), progress=False)
    assert np.median(guided.rewards) > np.percentile(base.rewards, 90)


def test_identical_seeds_identical_images(unet):
    process = DiffusersProcess(unet, DDIMScheduler(), 5, eta=1.0)
    a = svdd.sample(
        process, brightness, num_samples=3, num_candidates=3, alpha=0.05, generator=seeded(7), progress=False
    )
    b = svdd.sample(
        process, brightness, num_samples=3, num_candidates=3, alpha=0.05, generator=seeded(7), progress=False
    )
    c = svdd.sample(
        process, brightness, num_samples=3, num_candidates=3, alpha=0.05, generator=seeded(8), progress=False
    )
    assert all(torch.equal(x, y) for x, y in zip(a.samples, b.samples))
    assert not torch.equal(a.samples[0], c.samples[0])


def test_generator_list_makes_each_sample_independent_of_the_batch(unet):
    process = DiffusersProcess(unet, DDPMScheduler(), 5)
    pair = svdd.sample(
        process, brightness, num_samples=2, num_candidates=3, generator=[seeded(10), seeded(11)], progress=False
    )
    alone = svdd.sample(process, brightness, num_samples=1, num_candidates=3, generator=[seeded(10)], progress=False)
    other = svdd.sample(process, brightness, num_samples=1, num_candidates=3, generator=[seeded(11)], progress=False)
    assert torch.allclose(pair.samples[0], alone.samples[0], atol=1e-5)
    assert torch.allclose(pair.samples[1], other.samples[0], atol=1e-5)


DETERMINISTIC = [
    (EulerDiscreteScheduler, {}, "deterministic"),
    (PNDMScheduler, {}, "deterministic"),
    (UniPCMultistepScheduler, {}, "deterministic"),
    (HeunDiscreteScheduler, {}, "order 2"),
    (KDPM2DiscreteScheduler, {}, "order 2"),
]


@pytest.mark.parametrize("cls, config, says", DETERMINISTIC, ids=[c[0].__name__ for c in DETERMINISTIC])
def test_refuses_deterministic_and_order_2_schedulers(unet, cls, config, says):
    with pytest.raises(ValueError) as err:
        DiffusersProcess(unet, cls(**config), 5)
    message = str(err.value)
    assert says in message
    assert "DDPMScheduler" in message and "EulerAncestralDiscreteScheduler" in message


@pytest.mark.parametrize(
    "cls", [DDIMScheduler, DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler], ids=lambda c: c.__name__
)
def test_deterministic_defaults_get_a_stochastic_step(unet, cls):
    """DDIM steps at eta (default 1), DPM-Solver as its first-order SDE variant, flow matching with
    the re-noising flow step; two draws from one state differ, and eta = 0 is refused where it applies."""
    process = DiffusersProcess(unet, cls(), 5)
    x = process.prior(1, seeded(0)).expand(2, -1, -1, -1).clone()
    t = process.timesteps[0]
    children = process.transition(x, t, process.model(x, t), [seeded(1), seeded(2)])
    assert not torch.equal(children[0], children[1])
    if cls is DPMSolverMultistepScheduler:
        assert (
            process.scheduler.config.algorithm_type == "sde-dpmsolver++" and process.scheduler.config.solver_order == 1
        )
    else:
        assert process.eta == (1.0 if cls is DDIMScheduler else 0.5)
        with pytest.raises(ValueError, match="eta = 0 is deterministic"):
            DiffusersProcess(unet, cls(), 5, eta=0.0)


def test_refuses_multistep_history_and_bad_eta(unet):
    sde2 = DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++", solver_order=2)
    with pytest.raises(ValueError, match="solver_order=1"):
        DiffusersProcess(unet, sde2, 5)
    with pytest.raises(ValueError, match="eta"):
        DiffusersProcess(unet, DDPMScheduler(), 5, eta=1.0)


def test_transition_pins_a_stateful_scheduler_to_its_timestep(unet):
    """The samplers' stochasticity probe calls transition once more at the first timestep; a
    stateful scheduler (EulerAncestral keeps _step_index) must not move along its schedule."""
    process = DiffusersProcess(unet, EulerAncestralDiscreteScheduler(), 5)
    x = process.prior(2, seeded(0))
    t = process.timesteps[0]
    out = process.model(x, t)
    first = process.transition(x, t, out, seeded(1))
    again = process.transition(x, t, out, seeded(1))
    assert torch.equal(first, again)
    assert process.scheduler._step_index is None


def test_pretrained_matches_a_plain_diffusers_loop(unet):
    """Ancestral sampling through the adapter = the loop a diffusers pipeline runs."""
    scheduler = EulerAncestralDiscreteScheduler()
    process = DiffusersProcess(unet, scheduler, 6)
    res = svdd.sample(process, brightness, method="pretrained", num_samples=2, generator=seeded(3), progress=False)
    g = seeded(3)
    scheduler.set_timesteps(6)
    x = torch.randn((2, 1, 8, 8), generator=g) * scheduler.init_noise_sigma
    with torch.no_grad():
        for t in scheduler.timesteps:
            eps = unet(scheduler.scale_model_input(x, t), t).sample
            x = scheduler.step(eps, t, x, generator=g).prev_sample
    expected = (x / 2 + 0.5).clamp(0, 1)
    assert torch.allclose(torch.stack(res.samples), expected, atol=1e-5)


def test_denoised_is_the_schedulers_x0_estimate(unet):
    ddpm = DiffusersProcess(unet, DDPMScheduler(clip_sample=False), 5)
    sde = DiffusersProcess(unet, DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++", solver_order=1), 5)
    for process in (ddpm, sde):
        x = process.prior(2, seeded(0))
        t = process.timesteps[1]
        out = process.model(x, t)
        a = process.scheduler.alphas_cumprod[int(t)]
        expected = (x - (1 - a).sqrt() * out) / a.sqrt()
        assert torch.allclose(process.denoised(x, t, out), expected, atol=1e-4)


def test_svdd_pipeline_shares_the_adapter_path(unet):
    pipe = SVDDPipeline(unet=unet, scheduler=DDPMScheduler())
    out = pipe(
        reward=brightness,
        batch_size=2,
        num_candidates=3,
        num_inference_steps=4,
        generator=seeded(5),
        output_type="np",
        progress=False,
    )
    direct = svdd.sample(
        DiffusersProcess(unet, DDPMScheduler(), 4),
        brightness,
        num_samples=2,
        num_candidates=3,
        generator=seeded(5),
        progress=False,
    )
    assert out.images.shape == (2, 8, 8, 1)
    assert np.allclose(out.images, torch.stack(direct.samples).permute(0, 2, 3, 1).numpy())
    assert np.array_equal(out.result.rewards, direct.rewards)
    assert out.result.stats["model_calls"] == 2 + 3 * 2 * 3
    pil = pipe(reward=brightness, batch_size=1, num_candidates=2, num_inference_steps=2, progress=False)
    assert pil.images[0].size == (8, 8)
    best = pipe(
        reward=brightness,
        batch_size=2,
        num_candidates=2,
        num_inference_steps=2,
        method="best_of_n",
        output_type="pt",
        progress=False,
    )
    assert best.images.shape == (2, 1, 8, 8) and best.result.config["method"] == "best_of_n"
