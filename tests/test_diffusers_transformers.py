"""The drop-in scheduler on diffusers' transformer pipelines, built tiny and random locally (no hub):
SD3 (MMDiT, flow matching, CFG or not), Flux (packed latents, timestep/1000, true CFG as two calls),
PixArt-α (learned sigma, DPM-Solver), DiT (class labels, learned sigma, CFG on the doubled batch)
and Sana (DC-AE, flow-prediction DPM-Solver run as its SDE variant).

Each swap must complete with the pipeline's usual output, count exactly the denoiser rows it says,
reproduce under the same seed, and raise a simple reward over the base run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers", reason="the diffusers integration needs the images extra")

from conftest import RowCounter, brightness, seeded
from diffusers import FlowMatchEulerDiscreteScheduler

from svdd.diffusers import SVDDScheduler
from svdd.diffusers.stepping import FLOW_ETA, flow_step
from svdd.diffusers.tiny import tiny_dit, tiny_flux, tiny_pixart, tiny_sana, tiny_sd3

torch.set_num_threads(1)
B, K = 2, 4


def embeds(seed: int, rows: int = B, tokens: int = 5, width: int = 16) -> torch.Tensor:
    return torch.randn(rows, tokens, width, generator=seeded(seed))


SD3_CFG = dict(
    prompt_embeds=embeds(1),
    pooled_prompt_embeds=embeds(2)[:, 0],
    negative_prompt_embeds=embeds(3),
    negative_pooled_prompt_embeds=embeds(4)[:, 0],
    guidance_scale=3.0,
    height=8,
    width=8,
)
FLUX = dict(prompt_embeds=embeds(1), pooled_prompt_embeds=embeds(2)[:, 0], height=16, width=16, max_sequence_length=5)
PIXART = dict(
    prompt_embeds=embeds(1),
    prompt_attention_mask=torch.ones(B, 5),
    negative_prompt_embeds=embeds(3),
    negative_prompt_attention_mask=torch.ones(B, 5),
    negative_prompt=None,
    use_resolution_binning=False,
    height=8,
    width=8,
    guidance_scale=3.0,
)

# (builder, call arguments, denoiser rows per pipeline step, rows per replayed child)
FAMILIES = {
    "sd3_cfg": (tiny_sd3, SD3_CFG, 2 * B, 2),
    "sd3_no_cfg": (tiny_sd3, {**SD3_CFG, "guidance_scale": 1.0}, B, 1),
    "flux": (tiny_flux, FLUX, B, 1),
    "flux_true_cfg": (
        tiny_flux,
        {
            **FLUX,
            "negative_prompt_embeds": embeds(3),
            "negative_pooled_prompt_embeds": embeds(4)[:, 0],
            "true_cfg_scale": 2.0,
        },
        2 * B,
        2,
    ),
    "pixart": (tiny_pixart, PIXART, 2 * B, 2),
    "dit": (tiny_dit, dict(class_labels=[1, 2], guidance_scale=3.0), 2 * B, 2),
}
SANA = {
    **PIXART,
    "prompt_embeds": embeds(1, width=8),
    "negative_prompt_embeds": embeds(3, width=8),
    "height": 32,
    "width": 32,
}


def run(pipe, kwargs, seed=0):
    torch.manual_seed(seed)  # pipelines whose step draws without the call's generator (DiT, SD3) use the global one
    return pipe(num_inference_steps=K, generator=seeded(seed), output_type="pt", **kwargs)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_swap_keeps_the_output_counts_rows_reproduces_and_raises_the_reward(family):
    build, kwargs, pipeline_rows, child_rows = FAMILIES[family]
    m = 6
    pipe = build()
    base = run(pipe, kwargs)
    pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=brightness, num_candidates=m)
    counter = RowCounter(pipe.transformer)
    try:
        out = run(pipe, kwargs)
    finally:
        counter.remove()
    again = run(pipe, kwargs)
    assert type(out) is type(base) and out.images.shape == base.images.shape
    assert torch.equal(out.images, again.images)
    # the pipeline's own rows on every step, plus the replay's rows on every step but the last
    assert counter.rows == K * pipeline_rows + (K - 1) * B * m * child_rows
    assert pipe.scheduler.stats["model_calls"] == (K - 1) * B * m
    assert pipe.scheduler.stats["pipeline_unet_rows"] == K * pipeline_rows
    assert np.mean(brightness(out.images)) > np.mean(brightness(base.images))


def test_flow_pipelines_get_a_stochastic_step_with_eta_in_the_config():
    pipe = tiny_sd3()
    assert not pipe.scheduler.config.stochastic_sampling  # the default scheduler is the ODE
    pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=brightness, num_candidates=3)
    assert pipe.scheduler.config.eta == FLOW_ETA and pipe.scheduler.stochastic_mode == "flow"
    sharper = SVDDScheduler.from_pipeline(pipe, reward=brightness, num_candidates=3, eta=0.2)
    assert sharper.config.eta == 0.2
    with pytest.raises(ValueError, match=r"eta must be a number in \(0, 1\]"):
        SVDDScheduler.from_pipeline(pipe, reward=brightness, eta=1.5)


def test_the_stochastic_flow_step_approaches_the_ode_step_as_eta_goes_to_zero():
    scheduler = FlowMatchEulerDiscreteScheduler()
    scheduler.set_timesteps(10)
    x, v = torch.randn(3, 4, 8, 8, generator=seeded(0)), torch.randn(3, 4, 8, 8, generator=seeded(1))
    for k in (0, 4, 9):
        scheduler._step_index = k
        ode = scheduler.step(v, scheduler.timesteps[k], x)
        near = flow_step(scheduler, ode, x, v, k, 1e-6, seeded(2)).prev_sample
        assert torch.allclose(near, ode.prev_sample, atol=1e-5)
        noisy = flow_step(scheduler, ode, x, v, k, 1.0, seeded(2)).prev_sample
        if k < 9:  # the last step lands on sigma = 0: no noise left
            assert not torch.allclose(noisy, ode.prev_sample, atol=1e-3)


def test_marginals_of_the_stochastic_flow_step_match_the_forward_process():
    """With the exact velocity of a point mass x0, x_sigma = (1 - sigma)·x0 + sigma·eps stays of that
    form after the step: the step keeps the marginals whatever eta."""
    scheduler = FlowMatchEulerDiscreteScheduler()
    scheduler.set_timesteps(8)
    k, n = 2, 20000
    sigma, sigma_next = float(scheduler.sigmas[k]), float(scheduler.sigmas[k + 1])
    x0 = 0.7
    x = (1 - sigma) * x0 + sigma * torch.randn(n, 1, generator=seeded(0))
    v = (x - x0) / sigma  # the exact velocity eps - x0 for data at x0
    scheduler._step_index = k
    ode = scheduler.step(v, scheduler.timesteps[k], x)
    for eta in (0.3, 1.0):
        prev = flow_step(scheduler, ode, x, v, k, eta, seeded(1)).prev_sample
        assert abs(float(prev.mean()) - (1 - sigma_next) * x0) < 0.02
        assert abs(float(prev.std()) - sigma_next) < 0.02


def test_one_candidate_with_a_stochastic_base_is_the_base():
    kwargs = FAMILIES["sd3_cfg"][1]
    pipe = tiny_sd3()
    pipe.scheduler = FlowMatchEulerDiscreteScheduler(stochastic_sampling=True)
    base = run(pipe, kwargs, seed=5)
    pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=brightness, num_candidates=1)
    assert pipe.scheduler.config.eta is None  # the base draws its own noise
    assert torch.allclose(run(pipe, kwargs, seed=5).images, base.images, atol=1e-6)


def test_deterministic_dpm_solver_runs_as_its_sde_variant():
    pipe = tiny_pixart()
    pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=brightness, num_candidates=2)
    assert pipe.scheduler.base.config.algorithm_type == "sde-dpmsolver++"
    assert pipe.scheduler.config.base_scheduler_config["algorithm_type"] == "dpmsolver++"  # as the user gave it


def test_skip_layer_guidance_is_refused_before_any_denoiser_call():
    pipe = tiny_sd3()
    pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=brightness, num_candidates=2)
    counter = RowCounter(pipe.transformer)
    try:
        with pytest.raises(ValueError, match="skip_guidance_layers=.*skip-layer guidance.*LearnedValue"):
            run(pipe, {**SD3_CFG, "skip_guidance_layers": [0]})
    finally:
        counter.remove()
    assert counter.rows == 0


def one_sample(kwargs: dict) -> dict:
    """The call arguments cut to their first sample (a process conditions every row on one)."""
    out = {}
    for key, v in kwargs.items():
        if (isinstance(v, torch.Tensor) and v.dim() >= 1 and v.shape[0] == B) or (isinstance(v, list) and len(v) == B):
            out[key] = v[:1]
        else:
            out[key] = v
    return out


@pytest.mark.parametrize("family", list(FAMILIES))
def test_svdd_sample_runs_on_the_process_of_any_family(family):
    """`DiffusersProcess.from_pipeline_call` stops the pipeline at its first step and replays its
    denoiser call: every method of svdd.sample then runs on SD3, Flux, PixArt and DiT alike."""
    import svdd
    from svdd.diffusers import DiffusersProcess

    build, kwargs, _, _ = FAMILIES[family]
    pipe = build()
    counter = RowCounter(pipe.transformer)
    try:
        process = DiffusersProcess.from_pipeline_call(pipe, K, **one_sample(kwargs))
    finally:
        counter.remove()
    assert len(process.timesteps) == K and counter.calls <= 2  # stopped at the first step
    n, m = 4, 4
    pre = svdd.sample(process, brightness, method="pretrained", num_samples=n, generator=seeded(0), progress=False)
    res = svdd.sample(process, brightness, num_samples=n, num_candidates=m, generator=seeded(0), progress=False)
    assert len(res.samples) == n and res.samples[0].shape == pre.samples[0].shape
    assert res.samples[0].shape[0] == 3 and 0 <= float(res.samples[0].min()) <= float(res.samples[0].max()) <= 1
    assert res.stats["model_calls"] == n + (K - 1) * n * m  # PM: the winner's output is reused
    assert res.rewards.mean() > pre.rewards.mean()


def test_the_process_refuses_a_call_with_several_samples():
    from svdd.diffusers import DiffusersProcess

    with pytest.raises(ValueError, match="made 2 samples.*one prompt or class label"):
        DiffusersProcess.from_pipeline_call(tiny_dit(), K, class_labels=[1, 2], guidance_scale=3.0)


def test_the_process_checks_its_steps_before_running_the_pipeline_and_refine_names_renoise():
    import svdd
    from svdd.diffusers import DiffusersProcess

    pipe = tiny_flux()
    counter = RowCounter(pipe.transformer)
    try:
        for bad in (0, -1, "3", 2.5, None, True):
            with pytest.raises(ValueError, match="num_inference_steps must be a positive int"):
                DiffusersProcess.from_pipeline_call(pipe, bad, **one_sample(FLUX))
    finally:
        counter.remove()
    assert counter.rows == 0  # refused before the pipeline ran
    process = DiffusersProcess.from_pipeline_call(tiny_sd3(), 3, **one_sample(SD3_CFG))
    with pytest.raises(ValueError, match="refine with renoise=0.25 goes back only to the last of the 3 steps"):
        svdd.sample(process, brightness, method="refine", num_samples=2, num_candidates=2, iterations=1, progress=False)


def test_sana_swaps_counts_reproduces_and_guides_its_stochastic_chain():
    """Sana's flow-prediction DPM-Solver runs as its SDE variant. On the tiny random net the
    deterministic base run happens to be brighter than both stochastic chains, so guidance is
    measured against the same chain with one candidate (3 seeds)."""
    pipe = tiny_sana()
    base = run(pipe, SANA)
    pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=brightness, num_candidates=6)
    assert pipe.scheduler.base.config.algorithm_type == "sde-dpmsolver++"
    counter = RowCounter(pipe.transformer)
    try:
        out = run(pipe, SANA)
    finally:
        counter.remove()
    assert type(out) is type(base) and out.images.shape == base.images.shape
    assert torch.equal(out.images, run(pipe, SANA).images)
    assert counter.rows == K * 2 * B + (K - 1) * B * 6 * 2
    means = {}
    for m in (1, 6):
        pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=brightness, num_candidates=m)
        means[m] = np.mean([brightness(run(pipe, SANA, seed=seed).images) for seed in range(3)])
    assert means[6] > means[1]


def test_video_latents_are_refused_with_the_way_out():
    from svdd.diffusers import decode_images

    with pytest.raises(ValueError, match=r"video pipelines \(Wan, CogVideoX\) are not covered yet.*LearnedValue"):
        decode_images(torch.zeros(2, 16, 2, 4, 4))
