"""Issue 12, items 15-19: the diffusers drop-in after a reload, custom timesteps, hooks across
scheduler swaps, the re-swap idiom through `config`, and diffusers' progress-bar settings."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers", reason="the diffusers integration needs the images extra")
pytest.importorskip("transformers", reason="the Stable Diffusion tests need transformers (dev extra)")

from conftest import brightness, seeded
from diffusers import DDPMPipeline, DDPMScheduler, DiffusionPipeline, EulerAncestralDiscreteScheduler

from svdd.diffusers import DiffusersProcess, SVDDPipeline, SVDDScheduler
from svdd.diffusers.tiny import tiny_stable_diffusion, tiny_unet

torch.set_num_threads(1)

CALL = dict(prompt=["a cat", "a dog"], num_inference_steps=3, guidance_scale=3.0, output_type="np")


@pytest.fixture
def sd(tmp_path_factory):
    return tiny_stable_diffusion(directory=str(tmp_path_factory.mktemp("clip")))


@pytest.fixture
def ddpm():
    pipe = DDPMPipeline(unet=tiny_unet(), scheduler=DDPMScheduler(beta_schedule="squaredcos_cap_v2"))
    pipe.set_progress_bar_config(disable=True)
    return pipe


class ShapeRecorder:
    """brightness, remembering the shapes of the objects it scored."""

    def __init__(self):
        self.shapes = set()

    def __call__(self, images):
        self.shapes |= {tuple(img.shape) for img in images}
        return brightness(images)


# -- item 15: a reloaded scheduler scores images, not latents ------------------------------------


def test_reattaching_after_a_reload_scores_decoded_images(sd, tmp_path):
    sd.scheduler = SVDDScheduler.from_pipeline(sd, reward=brightness, num_candidates=2)
    before = sd(**CALL, generator=seeded(0)).images
    sd.save_pretrained(tmp_path / "saved")
    loaded = DiffusionPipeline.from_pretrained(tmp_path / "saved")
    loaded.set_progress_bar_config(disable=True)
    with pytest.raises(ValueError, match=r"attach\(reward=\.\.\., pipe=pipe\)") as err:
        loaded(**CALL, generator=seeded(0))
    assert "vae=pipe.vae" in str(err.value)  # the complete hint
    reward = ShapeRecorder()
    loaded.scheduler.attach(reward=reward, unet=loaded.unet)  # the old, incomplete hint: no vae
    after = loaded(**CALL, generator=seeded(0)).images
    assert reward.shapes == {(3, 8, 8)}  # images decoded by the pipeline's VAE, never 4x8x8 latents
    assert loaded.scheduler.vae is loaded.vae
    assert np.allclose(after, before, atol=1e-5)


def test_attach_takes_the_pipelines_modules(sd):
    wrapper = SVDDScheduler(base_scheduler_config=dict(sd.scheduler.config))
    assert wrapper.attach(reward=brightness, pipe=sd) is wrapper
    assert wrapper.vae is sd.vae and wrapper.replay.unet is sd.unet
    with pytest.raises(TypeError, match="pipe must be"):
        wrapper.attach(pipe=sd.unet)


def test_a_vae_that_cannot_decode_the_samples_is_refused(ddpm, sd):
    ddpm.scheduler = SVDDScheduler.from_pipeline(ddpm, reward=brightness, num_candidates=2)
    ddpm.scheduler.attach(vae=sd.vae)  # 4-channel latents; this pixel model has 1 channel
    with pytest.raises(ValueError, match=r"1 channels.*4-channel latents"):
        ddpm(batch_size=2, num_inference_steps=2, generator=seeded(0), output_type="np")


# -- item 16: custom timesteps -----------------------------------------------------------------


def test_custom_timesteps_run_under_svdd(sd):
    timesteps = [999, 600, 300, 1]
    plain = sd(**{**CALL, "num_inference_steps": None}, timesteps=timesteps, generator=seeded(0))
    assert plain.images.shape == (2, 8, 8, 3)
    sd.scheduler = SVDDScheduler.from_pipeline(sd, reward=brightness, num_candidates=2)
    out = sd(**{**CALL, "num_inference_steps": None}, timesteps=timesteps, generator=seeded(0))
    assert out.images.shape == (2, 8, 8, 3) and np.isfinite(out.images).all()
    assert [step["t"] for step in sd.scheduler.trace] == timesteps and sd.scheduler.stats["steps"] == 4


# -- item 17: one hook per UNet, whatever the swaps ----------------------------------------------


def test_swapping_schedulers_never_piles_up_hooks(ddpm):
    base = ddpm.scheduler
    first = SVDDScheduler.from_pipeline(ddpm, reward=brightness, num_candidates=2)
    ddpm.scheduler = first
    ddpm.scheduler = base  # back to the base, without detaching
    second = SVDDScheduler.from_pipeline(ddpm, reward=brightness, num_candidates=2)
    ddpm.scheduler = second
    assert len(ddpm.unet._forward_hooks) == 1
    ddpm(batch_size=2, num_inference_steps=3, generator=seeded(0), output_type="np")
    assert second.stats["pipeline_unet_rows"] == 3 * 2  # each UNet call recorded once
    first.detach()
    assert len(ddpm.unet._forward_hooks) == 1  # still used by `second`
    second.detach()
    assert len(ddpm.unet._forward_hooks) == 0


def test_a_dropped_scheduler_takes_its_hook_with_it(ddpm):
    ddpm.scheduler = SVDDScheduler.from_pipeline(ddpm, reward=brightness, num_candidates=2)
    assert len(ddpm.unet._forward_hooks) == 1
    ddpm.scheduler = DDPMScheduler.from_config(ddpm.scheduler.config)
    gc.collect()
    assert len(ddpm.unet._forward_hooks) == 0


# -- item 18: the base's schedule survives the usual re-swap idiom ------------------------------


def test_from_config_keeps_the_base_schedule(ddpm, tmp_path):
    ddpm.scheduler = SVDDScheduler.from_pipeline(ddpm, reward=brightness, num_candidates=3, alpha=0.5)
    euler = EulerAncestralDiscreteScheduler.from_config(ddpm.scheduler.config)
    assert euler.config.beta_schedule == "squaredcos_cap_v2"
    assert EulerAncestralDiscreteScheduler in ddpm.scheduler.compatibles
    assert DDPMScheduler in ddpm.scheduler.compatibles
    ddpm.scheduler = euler
    ddpm.scheduler = SVDDScheduler.from_pipeline(ddpm, reward=brightness, num_candidates=2)
    assert isinstance(ddpm.scheduler.base, EulerAncestralDiscreteScheduler)
    assert ddpm.scheduler.base.config.beta_schedule == "squaredcos_cap_v2"
    ddpm.scheduler.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "scheduler_config.json").read_text())
    assert saved["num_candidates"] == 2 and saved["base_scheduler_class"] == "EulerAncestralDiscreteScheduler"
    again = SVDDScheduler.from_pretrained(tmp_path)
    assert again.config.num_candidates == 2 and again.base.config.beta_schedule == "squaredcos_cap_v2"


def test_numpy_settings_are_stored_as_plain_numbers(ddpm, tmp_path):
    wrapper = SVDDScheduler.from_pipeline(ddpm, reward=brightness, num_candidates=np.int64(3), alpha=np.float32(0.5))
    wrapper.save_pretrained(tmp_path)  # numpy scalars would not serialize
    assert type(wrapper.config.alpha) is float and type(wrapper.config.num_candidates) is int
    for bad in (dict(num_candidates=0), dict(alpha=float("nan")), dict(max_batch=0), dict(decode_batch=0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            SVDDScheduler.from_pipeline(ddpm, reward=brightness, **bad)


# -- item 19: diffusers' progress-bar settings -------------------------------------------------


def test_pipelines_follow_set_progress_bar_config(ddpm, capfd):
    explicit = SVDDPipeline(unet=ddpm.unet, scheduler=DDPMScheduler())
    explicit.set_progress_bar_config(disable=True)
    explicit(reward=brightness, batch_size=2, num_candidates=2, num_inference_steps=2)
    ddpm.scheduler = SVDDScheduler.from_pipeline(ddpm, reward=brightness, num_candidates=2)
    ddpm(batch_size=2, num_inference_steps=2, generator=seeded(0), output_type="np")  # the drop-in
    assert capfd.readouterr().err == ""
    explicit.set_progress_bar_config(desc="tiny svdd bar")
    explicit(reward=brightness, batch_size=2, num_candidates=2, num_inference_steps=2)
    assert "tiny svdd bar" in capfd.readouterr().err


# -- found while fuzzing: DiffusersProcess arguments --------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        (dict(eta=float("nan")), ValueError, "eta"),
        (dict(eta="1"), TypeError, "eta"),
        (dict(eta=-1.0), ValueError, "eta"),
        (dict(guidance_scale=float("nan")), ValueError, "guidance_scale"),
        (dict(decode_batch=0), ValueError, "decode_batch"),
        (dict(sample_shape=(3, 8, 8)), ValueError, "sample_shape"),
        (dict(sample_shape=8), TypeError, "sample_shape"),
    ],
)
def test_diffusers_process_names_a_bad_argument(ddpm, kwargs, error, name):
    from diffusers import DDIMScheduler

    with pytest.raises(error, match=name):
        DiffusersProcess(ddpm.unet, DDIMScheduler(), 3, **kwargs)


def test_diffusers_process_takes_modules_and_the_base_of_a_drop_in(ddpm):
    with pytest.raises(TypeError, match="unet must be"):
        DiffusersProcess(None, DDPMScheduler(), 3)
    with pytest.raises(TypeError, match="scheduler must be"):
        DiffusersProcess(ddpm.unet, None, 3)
    ddpm.scheduler = SVDDScheduler.from_pipeline(ddpm, reward=brightness, num_candidates=2)
    process = DiffusersProcess.from_pipeline(ddpm, np.int64(3))
    assert isinstance(process.scheduler, DDPMScheduler) and len(process.timesteps) == 3
