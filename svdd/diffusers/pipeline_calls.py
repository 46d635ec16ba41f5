"""The counted calls `SVDDScheduler` runs `svdd.sampling.samplers.svdd_step` through, inside a pipeline.

`svdd_step` draws, scores and selects children through a `svdd.sampling.calls.Calls`. A scheduler only
sees `step(model_output, t, sample)`, so `PipelineCalls` takes the pieces of a process from the
pipeline's current step (`PipelineStep`):

* transition: one `step` of the base scheduler on the B·M repeated rows, drawing its own noise;
  its whole output is kept (`output`), so the scheduler can return the winners' rows of every field;
* model (PM values only): the pipeline's last UNet call replayed on the children
  (`svdd.diffusers.replay.DenoiserReplay`), in chunks of `max_batch` children;
* denoised: the base scheduler's own x0 estimate (`predicted_x0`) at the children's timestep;
* decode: images in [0, 1], through the pipeline's VAE for latent models.

`SVDDScheduler` builds one per step, counting into its `stats`, whose keys are those of
`Result.stats`: `model_calls` counts the child rows the scheduler replayed (one per child, a CFG
pair included), `model_batches` the replayed UNet passes, and `reward_calls`, `value_calls`,
`fallback_rows` and the `*_time_s` timings mean what they mean there.
"""

from __future__ import annotations

from typing import Any

import torch

from ..sampling.calls import Calls
from ..sampling.values import as_value
from .images import decode_images
from .replay import DenoiserReplay, Layout
from .stepping import at_step, deterministic_error, flow_step, predicted_x0, scale_input, step_parameters


class PipelineStep:
    """The pipeline's step at timestep `timestep` (position k) as the process of a `Calls`:
    transition, denoised and decode; `model_output` [B, ...] is what the pipeline passed to `step`."""

    def __init__(
        self,
        base: Any,
        model_output: torch.Tensor,
        timestep: Any,
        k: int,
        step_kwargs: dict[str, Any],
        num_candidates: int,
        vae: Any,
        decode_batch: int,
        mode: str | None = None,
        eta: float | None = None,
        unpack: Any = None,
    ):
        self.base = base
        self.mode = mode  # svdd.diffusers.stepping.stochastic_mode of the base
        self.eta = eta
        self.unpack = unpack  # packed latents [B, S, D] -> [B, C, H, W] (Flux), or None
        self.model_output = model_output
        self.timestep = timestep
        self.k = k
        self.step_kwargs = step_kwargs
        self.num_candidates = num_candidates
        self.vae = vae
        self.decode_batch = decode_batch
        self.output: Any = None  # the base step's output on all B·M children, once drawn

    @property
    def timesteps(self) -> list[Any]:
        return list(self.base.timesteps)

    def transition(self, x: torch.Tensor, t: Any, out: torch.Tensor, generator: Any = None) -> torch.Tensor:
        """The base scheduler's step from x [R, ...] with model output `out` [R, ...]; its output is kept."""
        kwargs = dict(self.step_kwargs)
        if "generator" in step_parameters(self.base):
            kwargs["generator"] = generator
        if self.mode == "eta" and not kwargs.get("eta"):
            kwargs["eta"] = self.eta  # DDIM called at eta = 0 (the pipelines' default)
        self.output = self.base.step(out, t, x, return_dict=True, **kwargs)
        if self.mode == "flow":
            assert self.eta is not None
            self.output = flow_step(self.base, self.output, x, out, self.k, self.eta, generator)
        children = self.output.prev_sample
        if self.k == 0 and self.num_candidates > 1 and torch.equal(children[0], children[1]):
            raise deterministic_error(self.base, self.step_kwargs)
        return children

    def denoised(self, x: torch.Tensor, t: Any, out: torch.Tensor) -> torch.Tensor:
        """The base scheduler's x0 estimate of children x [R, ...] at the next timestep t."""
        noise_free = {key: v for key, v in self.step_kwargs.items() if key != "generator"}
        return predicted_x0(self.base, x, t, self.k + 1, out, noise_free)

    def decode(self, x0: torch.Tensor) -> list[torch.Tensor]:
        if self.unpack is not None and x0.dim() == 3:
            x0 = self.unpack(x0)
        return decode_images(x0, self.vae, self.decode_batch)


class PipelineCalls(Calls):
    """`svdd.sampling.calls.Calls` for one scheduler step, counting into `stats`, with the model call
    replayed from the pipeline (`scheduler`: its reward, value, UNet hook, VAE and config)."""

    def __init__(
        self,
        scheduler: Any,
        model_output: torch.Tensor,
        timestep: Any,
        k: int,
        step_kwargs: dict[str, Any],
        stats: dict[str, Any],
        layout: Layout | None = None,
    ):
        config = scheduler.config
        step = PipelineStep(
            scheduler.base,
            model_output,
            timestep,
            k,
            step_kwargs,
            config.num_candidates,
            scheduler.vae,
            config.decode_batch,
            scheduler.stochastic_mode,
            config.eta,
            scheduler._unpack,
        )
        super().__init__(
            step, scheduler.reward, as_value(scheduler.value, scheduler.reward), max_batch=None, stats=stats
        )
        self.process: PipelineStep
        self.replay: DenoiserReplay | None = scheduler.replay
        self.replay_batch: int | None = config.max_batch
        self.layout: Layout | None = layout  # how the pipeline made model_output (PM values only)

    def model(self, x: torch.Tensor, t: Any) -> torch.Tensor:
        """The pipeline's prediction on the children x [B·M, ...] at their timestep t (child r
        belongs to sample r // M), replayed in chunks of `replay_batch` children."""
        if self.replay is None:
            raise ValueError(
                "posterior-mean values need the pipeline's denoiser (UNet or transformer): build the "
                "scheduler with SVDDScheduler.from_pipeline(pipe, ...) or call scheduler.attach(pipe=pipe) "
                "(its denoiser and VAE); or pass value=svdd.LearnedValue(fn)"
            )
        step, passes = self.process, self.replay.calls
        with self.timed("model_time_s"):
            with at_step(step.base, step.k + 1):
                child_input = scale_input(step.base, x, t)
            if self.layout is None:
                self.layout = self.replay.layout(step.model_output, step.timestep)
            out = self.replay.replay(self.layout, x, child_input, t, step.num_candidates, self.replay_batch)
        self.stats["model_calls"] += x.shape[0]
        self.stats["model_batches"] += self.replay.calls - passes
        return out
