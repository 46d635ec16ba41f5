"""Stable Diffusion (latents, VAE, prompts, negative prompts, CFG) with tiny random components
built locally (no hub access): the scheduler swap, the replay's per-row CFG alignment, and the
adapter's prompt conditioning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers", reason="the diffusers integration needs the images extra")
pytest.importorskip("transformers", reason="the Stable Diffusion tests need transformers (dev extra)")

from conftest import brightness, seeded
from diffusers import DDPMScheduler, EulerAncestralDiscreteScheduler
from diffusers.pipelines.stable_diffusion import StableDiffusionPipelineOutput

import svdd
from svdd.diffusers import DiffusersProcess, SVDDScheduler
from svdd.diffusers.replay import DenoiserReplay, ReplayError
from svdd.diffusers.tiny import tiny_stable_diffusion

torch.set_num_threads(1)


@pytest.fixture
def sd(tmp_path):
    return tiny_stable_diffusion(directory=str(tmp_path))


def embeddings(pipe, prompt, negative):
    cond, uncond = pipe.encode_prompt(prompt, torch.device("cpu"), 1, True, negative)
    return cond, uncond


CALL = dict(
    prompt=["a cat", "a dog"],
    negative_prompt=["blur", "dark"],
    num_inference_steps=4,
    guidance_scale=3.0,
    output_type="np",
)


def test_sd_pipeline_swap_with_prompts_and_cfg(sd):
    b, m, k = 2, 3, 4
    sd.scheduler = SVDDScheduler.from_pipeline(sd, reward=brightness, num_candidates=m)
    rows = []
    handle = sd.unet.register_forward_hook(lambda mod, args, out: rows.append(out[0].shape[0]))
    try:
        out = sd(**CALL, generator=seeded(0))
        again = sd(**CALL, generator=seeded(0))
    finally:
        handle.remove()
    assert isinstance(out, StableDiffusionPipelineOutput) and out.images.shape == (b, 8, 8, 3)
    assert np.array_equal(out.images, again.images)
    # per run: the pipeline's 2B CFG rows per step + the replay's 2·B·M rows on all steps but the last
    assert sum(rows) == 2 * (k * 2 * b + (k - 1) * 2 * b * m)
    # the replay's rows are child rows, as svdd.sample counts them (one per CFG pair); stats of the second run
    assert sd.scheduler.stats["model_calls"] == (k - 1) * b * m
    assert sd.scheduler.stats["pipeline_unet_rows"] == k * 2 * b
    assert sd.scheduler.replay.rows == 2 * (k - 1) * 2 * b * m  # UNet rows of both runs' replays


def test_sd_swap_with_a_stateful_scheduler(sd):
    sd.scheduler = EulerAncestralDiscreteScheduler.from_config(sd.scheduler.config)
    sd.scheduler = SVDDScheduler.from_pipeline(sd, reward=brightness, num_candidates=2)
    out = sd(**CALL, generator=[seeded(1), seeded(2)])
    assert np.isfinite(out.images).all() and sd.scheduler.stats["steps"] == 4


def test_replay_aligns_each_child_with_its_own_prompt(sd):
    """The paper's batched code paired unconditional and conditional embeddings of different rows;
    here child r of parent i must get [uncond_i; cond_i] and the pipeline's guidance scale."""
    unet, g, m = sd.unet, 4.0, 3
    cond, uncond = embeddings(sd, ["a cat", "a dog"], ["blur", "dark"])
    replay = DenoiserReplay(unet)
    try:
        latents = torch.randn(2, 4, 8, 8, generator=seeded(0))
        t = torch.tensor(500)
        with torch.no_grad():
            both = unet(
                torch.cat([latents] * 2), t, encoder_hidden_states=torch.cat([uncond, cond]), return_dict=False
            )[0]
            u, c = both.chunk(2)
            model_output = u + g * (c - u)
            children = torch.randn(6, 4, 8, 8, generator=seeded(1))
            replay.calls = 0  # the pipeline-like call above was recorded, not replayed
            layout = replay.layout(model_output, t)
            assert layout.cfg == "batched" and not layout.cond_first and abs(layout.g - g) < 1e-4
            got = replay.replay(layout, children, children, torch.tensor(400), m, max_batch=4)
            for r in range(6):
                i = r // m
                pair = unet(
                    torch.cat([children[r : r + 1]] * 2),
                    torch.tensor(400),
                    encoder_hidden_states=torch.cat([uncond[i : i + 1], cond[i : i + 1]]),
                ).sample
                expected = pair[0] + g * (pair[1] - pair[0])
                assert torch.allclose(got[r], expected, atol=1e-4)
        assert replay.calls == 2 and replay.rows == 12  # chunks of 4 and 2 children, doubled by CFG
    finally:
        replay.remove()


def test_replay_refuses_guidance_rescale_before_any_unet_call(sd):
    sd.scheduler = SVDDScheduler.from_pipeline(sd, reward=brightness, num_candidates=2)
    rows = []
    handle = sd.unet.register_forward_hook(lambda mod, args, out: rows.append(out[0].shape[0]))
    try:
        with pytest.raises(ValueError, match="guidance_rescale=0.7.*cannot reproduce guidance rescale.*LearnedValue"):
            sd(**CALL, guidance_rescale=0.7, generator=seeded(0))
    finally:
        handle.remove()
    assert rows == []
    # the replay itself also refuses a prediction it cannot reproduce (a hand-written loop)
    wrapper = SVDDScheduler.from_pipeline(sd, reward=brightness, num_candidates=2)
    wrapper.set_timesteps(4)
    t = wrapper.timesteps[0]
    latents = torch.randn(1, 4, 8, 8, generator=seeded(1))
    cond, uncond = embeddings(sd, ["a cat"], ["blur"])
    with torch.no_grad():
        u, c = sd.unet(torch.cat([latents] * 2), t, encoder_hidden_states=torch.cat([uncond, cond])).sample.chunk(2)
    rescaled = (u + 3.0 * (c - u)) * 0.7
    with pytest.raises(ReplayError, match="guidance"):
        wrapper.step(rescaled, t, latents, generator=seeded(2))


def test_process_conditions_every_row_on_its_one_prompt(sd):
    g = 3.0
    process = DiffusersProcess.from_pipeline(
        sd, 4, prompt="a cat", negative_prompt="blur", guidance_scale=g, scheduler=DDPMScheduler()
    )
    cond, uncond = embeddings(sd, "a cat", "blur")
    x = process.prior(3, seeded(0))
    t = process.timesteps[1]
    with torch.no_grad():
        got = process.model(x, t)
        both = sd.unet(
            torch.cat([x, x]), t, encoder_hidden_states=torch.cat([uncond.expand(3, -1, -1), cond.expand(3, -1, -1)])
        ).sample
    u, c = both.chunk(2)
    assert torch.allclose(got, u + g * (c - u), atol=1e-5)
    res = svdd.sample(process, brightness, num_samples=2, num_candidates=2, generator=seeded(0), progress=False)
    assert res.stats["model_calls"] == 2 + 3 * 2 * 2
    assert res.samples[0].shape == (3, 8, 8)  # decoded by the VAE


def test_process_refuses_several_prompts(sd):
    cond, uncond = embeddings(sd, ["a cat", "a dog"], ["", ""])
    with pytest.raises(ValueError, match="one prompt"):
        DiffusersProcess(
            sd.unet,
            DDPMScheduler(),
            4,
            vae=sd.vae,
            prompt_embeds=cond,
            negative_prompt_embeds=uncond,
            guidance_scale=2.0,
        )
    with pytest.raises(ValueError, match="negative_prompt_embeds"):
        DiffusersProcess(sd.unet, DDPMScheduler(), 4, vae=sd.vae, prompt_embeds=cond[:1], guidance_scale=2.0)
