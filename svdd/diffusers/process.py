"""`DiffusersProcess`: a diffusers UNet + scheduler (+ VAE, + one prompt with CFG) as a
`svdd.DenoisingProcess`, so `svdd.sample` can run every method on it.

Per call, with x [B, C, H, W] (pixels, or latents for a latent model):
* `prior(n)`     randn [n, C, H, W] · scheduler.init_noise_sigma (per-row generator lists honoured)
* `model(x, t)`  the UNet's prediction at t on `scheduler.scale_model_input(x, t)`; with a
                 prompt and guidance_scale > 1 one UNet pass on 2B rows, [uncond; cond], combined
                 as uncond + g·(cond - uncond) row by row. Returns a tensor [B, C, H, W].
* `transition`   one `scheduler.step(out, t, x, generator=...)`: the scheduler's own noise.
* `denoised`     the scheduler's x0 estimate (`pred_original_sample` or a conversion).
* `decode`       images in [0, 1] (through `vae.decode` for latent models), CPU [3, H', W'].

Conditioning is **one prompt shared by every row**: the samplers repeat and chunk rows, so a
model call cannot tell which sample a row belongs to. Build one process per prompt (cheap: it
holds references to the modules), or use `SVDDScheduler` inside the pipeline, which sees the
pipeline's own per-row prompt embeddings.

The scheduler is copied at construction, so the pipeline's own scheduler is never modified.
Stateful schedulers are pinned to the step of the timestep they are called with, so the extra
`transition` of the samplers' stochasticity probe and the x0 estimates never advance them.
"""

from __future__ import annotations

import copy
import math
import numbers
from typing import Any

import torch

from ..rng import GeneratorLike, randn
from .images import decode_images
from .replay import DenoiserReplay, Layout, calling_pipeline, latent_unpacker
from .scheduler import SVDDScheduler, denoiser_of
from .stepping import (
    at_step,
    check_stochastic,
    default_eta,
    flow_step,
    init_noise_sigma,
    predicted_x0,
    scale_input,
    sde_counterpart,
    stochastic_mode,
    timestep_index,
)


class DiffusersProcess:
    """A diffusers UNet and scheduler as a `svdd.DenoisingProcess`.

    Args:
        unet: a diffusers `UNet2DModel` or `UNet2DConditionModel` (anything called as
            `unet(sample, t, encoder_hidden_states=..., return_dict=False)[0]`).
        scheduler: an order-1 stochastic diffusers scheduler (DDPM, DDIM with eta > 0,
            EulerAncestral, DPM-Solver SDE with solver_order=1, LCM, ...); others are refused.
            An `SVDDScheduler` stands for its base scheduler.
        num_inference_steps: K, passed to `scheduler.set_timesteps`.
        eta: DDIM's eta (passed to every `step`); DDIM needs eta > 0 here.
        vae: the decoder of a latent model (`AutoencoderKL`); None for pixel-space models.
        prompt_embeds: text-encoder states of the one prompt, [L, D] or [1, L, D].
        negative_prompt_embeds: the unconditional states for CFG, same shape (required when
            guidance_scale > 1).
        guidance_scale: g, classifier-free guidance scale; 1 means no CFG.
        sample_shape: per-sample state shape [C, H, W]; default from `unet.config`.
        decode_batch: rows per `vae.decode` call.
        pipeline: the pipeline the modules came from (`from_pipeline` sets it), kept for the user.
    """

    def __init__(
        self,
        unet: Any,
        scheduler: Any,
        num_inference_steps: int = 50,
        *,
        eta: float | None = None,
        vae: Any = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        guidance_scale: float = 1.0,
        sample_shape: tuple[int, ...] | None = None,
        decode_batch: int = 16,
        pipeline: Any = None,
        schedule_set: bool = False,
    ):
        num_inference_steps = _positive_int("num_inference_steps", num_inference_steps)
        decode_batch = _positive_int("decode_batch", decode_batch)
        guidance_scale = _finite("guidance_scale", guidance_scale)
        if not callable(unet) or not hasattr(unet, "device") or not hasattr(unet, "dtype"):
            raise TypeError(
                f"unet must be a diffusers UNet (a torch module with device and dtype); got {type(unet).__name__}"
            )
        if isinstance(scheduler, SVDDScheduler):  # a pipeline swapped to the drop-in: the process runs its base
            scheduler = scheduler.base
        if not callable(getattr(scheduler, "step", None)) or not callable(getattr(scheduler, "set_timesteps", None)):
            raise TypeError(
                f"scheduler must be a diffusers scheduler (with step and set_timesteps); got {type(scheduler).__name__}"
            )
        self.unet = unet
        self.vae = vae
        self.pipeline = pipeline
        self.scheduler = sde_counterpart(copy.deepcopy(scheduler), solver_order=1)
        self.step_kwargs: dict[str, Any] = {}
        self.mode = stochastic_mode(self.scheduler)
        if eta is not None:
            if self.mode is None:
                raise ValueError(
                    f"eta sets the noise of DDIM's step or of the stochastic flow-matching step; "
                    f"{type(scheduler).__name__}.step draws its own noise and takes no eta"
                )
            eta = _finite("eta", eta)
            if not 0 <= eta <= (1 if self.mode == "flow" else math.inf):
                raise ValueError(f"eta must be in (0, 1] (DDIM: > 0; SVDD needs noise); got {eta!r}")
        self.eta = default_eta(self.mode) if eta is None else eta
        if self.mode == "eta":
            self.step_kwargs["eta"] = self.eta
        self.device = unet.device
        self.dtype = unet.dtype
        # a captured call's shape is the pipeline's own (packed latents [S, D] for Flux): not checked
        self.sample_shape = tuple(sample_shape) if schedule_set and sample_shape else _sample_shape(sample_shape, unet)
        if schedule_set:  # the pipeline set the schedule itself (from_pipeline_call)
            num_inference_steps = len(self.scheduler.timesteps)
        else:
            self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        if self.mode is None:
            check_stochastic(self.scheduler, self.step_kwargs, self.sample_shape)
        elif not self.eta:
            raise ValueError(
                f"{type(scheduler).__name__} at eta = 0 is deterministic: SVDD's candidates would all be "
                "the same. Use eta > 0 (e.g. eta=1.0 for DDIM)"
            )
        if getattr(self.scheduler.config, "solver_order", 1) > 1:
            raise ValueError(
                f"{type(scheduler).__name__} with solver_order={self.scheduler.config.solver_order} "
                "is a multistep solver: its next state depends on earlier model outputs, not on x "
                "alone. Use solver_order=1 (e.g. DPMSolverMultistepScheduler.from_config(config, "
                "algorithm_type='sde-dpmsolver++', solver_order=1)), or SVDDScheduler, which keeps "
                "each sample's history"
            )
        self._t = list(self.scheduler.timesteps)
        self.timesteps = [t.item() for t in self._t]
        self._captured: tuple[DenoiserReplay, Layout] | None = None  # set by from_pipeline_call
        self._unpack: Any = None  # packed latents [B, S, D] -> [B, C, H, W] (Flux), set by from_pipeline_call
        self._index = timestep_index(self.timesteps)
        self.decode_batch = decode_batch
        self.guidance_scale = float(guidance_scale)
        self.prompt_embeds = _as_prompt(prompt_embeds, "prompt_embeds", self.device, self.dtype)
        self.negative_prompt_embeds = _as_prompt(
            negative_prompt_embeds, "negative_prompt_embeds", self.device, self.dtype
        )
        if self.guidance_scale > 1:
            if self.prompt_embeds is None or self.negative_prompt_embeds is None:
                raise ValueError("guidance_scale > 1 needs both prompt_embeds and negative_prompt_embeds")
            if self.negative_prompt_embeds.shape != self.prompt_embeds.shape:
                raise ValueError(
                    f"negative_prompt_embeds has shape {tuple(self.negative_prompt_embeds.shape)}, "
                    f"prompt_embeds {tuple(self.prompt_embeds.shape)}; they must match"
                )

    @classmethod
    def from_pipeline(
        cls,
        pipe: Any,
        num_inference_steps: int = 50,
        *,
        prompt: str | None = None,
        negative_prompt: str | None = None,
        guidance_scale: float = 1.0,
        scheduler: Any = None,
        **kwargs: Any,
    ) -> DiffusersProcess:
        """The process of a loaded pipeline: its UNet, scheduler (or `scheduler`) and VAE.

        With `prompt` (Stable Diffusion style pipelines), the prompt is encoded once with
        `pipe.encode_prompt`; `negative_prompt` defaults to the empty prompt.
        """
        embeds: dict[str, Any] = {}
        if prompt is not None:
            if not isinstance(prompt, str):
                raise TypeError("prompt must be one string (one prompt per process; build one process per prompt)")
            if not hasattr(pipe, "encode_prompt"):
                raise TypeError(f"{type(pipe).__name__} has no encode_prompt; pass prompt_embeds to DiffusersProcess")
            cfg = guidance_scale > 1
            cond, uncond = pipe.encode_prompt(prompt, pipe.unet.device, 1, cfg, negative_prompt)
            embeds = {"prompt_embeds": cond, "negative_prompt_embeds": uncond if cfg else None}
        return cls(
            pipe.unet,
            scheduler if scheduler is not None else pipe.scheduler,
            num_inference_steps,
            vae=getattr(pipe, "vae", None),
            guidance_scale=guidance_scale,
            pipeline=pipe,
            **embeds,
            **kwargs,
        )

    @classmethod
    def from_pipeline_call(
        cls, pipe: Any, num_inference_steps: int = 28, *, eta: float | None = None, decode_batch: int = 16, **call: Any
    ) -> DiffusersProcess:
        """The process of one call of any pipeline the drop-in scheduler covers (Stable Diffusion
        1.x/2.x/XL, SD3, Flux, PixArt, Sana, DiT): `pipe(num_inference_steps=..., **call)` runs up to
        its first scheduler step, which stops it. That step shows everything the process needs: the
        pipeline's schedule (with its own shift or `mu`), the latent shape of one sample, and the
        denoiser call(s) that made the step's model output (prompt embeddings, pooled projections,
        class labels, CFG layout, timestep scale, learned-sigma channels), which `model` replays on
        any rows (`svdd.diffusers.replay`). The call must make one sample (one prompt or class
        label): every row of the process is that sample. Deterministic default schedulers get the
        stochastic step of `SVDDScheduler` (eta).

            process = DiffusersProcess.from_pipeline_call(flux, 28, prompt="a cat", guidance_scale=3.5)
            res = svdd.sample(process, reward, num_samples=16, num_candidates=8)
        """
        num_inference_steps = _positive_int("num_inference_steps", num_inference_steps)
        denoiser = denoiser_of(pipe)
        if denoiser is None:
            raise TypeError(f"{type(pipe).__name__} has neither a unet nor a transformer to replay")
        scheduler = pipe.scheduler.base if isinstance(pipe.scheduler, SVDDScheduler) else pipe.scheduler
        stopper = _FirstStep(
            sde_counterpart(copy.deepcopy(scheduler), solver_order=1)
        )  # the pipeline sets its schedule
        replay = DenoiserReplay(denoiser)
        original = pipe.scheduler
        arguments: dict[str, Any] = {}
        try:
            pipe.scheduler = stopper
            try:
                pipe(num_inference_steps=num_inference_steps, **call)
            except _Stopped as stop:
                arguments = stop.arguments
            else:
                raise ValueError(f"{type(pipe).__name__} never called its scheduler's step; nothing to capture")
            assert stopper.seen is not None  # _Stopped is raised only after seen is set
            model_output, timestep, sample = stopper.seen
            layout = replay.layout(model_output, timestep)
        finally:
            pipe.scheduler = original
            replay.remove()
        rows = sample.shape[0] // (2 if layout.doubled else 1)
        if rows != 1:
            raise ValueError(
                f"the pipeline call made {rows} samples; a process conditions every row on one sample's "
                "inputs: call with one prompt or class label (num_images_per_prompt=1)"
            )
        process = cls(
            denoiser,
            stopper.base,
            num_inference_steps,
            eta=eta,
            vae=getattr(pipe, "vae", None),
            sample_shape=tuple(sample.shape[1:]),
            decode_batch=decode_batch,
            pipeline=pipe,
            schedule_set=True,
        )
        process._captured = (replay, layout)
        process._unpack = latent_unpacker(pipe, arguments)
        return process

    # -- the DenoisingProcess protocol -------------------------------------------------------

    def _k(self, t: Any) -> int:
        try:
            return self._index[t.item() if isinstance(t, torch.Tensor) else t]
        except KeyError:
            raise ValueError(f"{t!r} is not one of this process's timesteps") from None

    def prior(self, n: int, generator: GeneratorLike = None) -> torch.Tensor:
        """x_T [n, C, H, W]: standard normal scaled by the scheduler's init_noise_sigma."""
        x = randn((n, *self.sample_shape), generator, device=self.device)
        return (x * init_noise_sigma(self.scheduler)).to(self.dtype)

    def model(self, x: torch.Tensor, t: Any) -> torch.Tensor:
        """The (CFG-combined) UNet prediction [B, C, H, W] at timestep t."""
        k = self._k(t)
        tt = self._t[k]
        with at_step(self.scheduler, k):
            x_in = scale_input(self.scheduler, x, tt)
        b = x.shape[0]
        if self._captured is not None:  # every row is the one sample of the captured pipeline call
            replay, layout = self._captured
            return replay.replay(layout, x, x_in, tt, num_candidates=max(b, 1))
        if self.prompt_embeds is None:
            return self.unet(x_in, tt, return_dict=False)[0]
        cond = self.prompt_embeds.expand(b, -1, -1)
        if self.guidance_scale <= 1:
            return self.unet(x_in, tt, encoder_hidden_states=cond, return_dict=False)[0]
        assert self.negative_prompt_embeds is not None  # checked at construction when guidance_scale > 1
        uncond = self.negative_prompt_embeds.expand(b, -1, -1)
        both = self.unet(
            torch.cat([x_in, x_in]), tt, encoder_hidden_states=torch.cat([uncond, cond]), return_dict=False
        )[0]
        out_uncond, out_cond = both.chunk(2)
        return out_uncond + self.guidance_scale * (out_cond - out_uncond)

    def transition(self, x: torch.Tensor, t: Any, out: torch.Tensor, generator: GeneratorLike = None) -> torch.Tensor:
        """One scheduler step from timestep t: x [B, ...] -> x_prev [B, ...], drawing the
        scheduler's noise from `generator` (a list: row i from generator[i])."""
        k = self._k(t)
        kwargs = dict(self.step_kwargs)
        if generator is not None:
            kwargs["generator"] = list(generator) if isinstance(generator, (list, tuple)) else generator
        with at_step(self.scheduler, k):
            if self.mode == "flow":  # the deterministic Euler step, re-noised at eta (same marginals)
                kwargs.pop("generator", None)
                step = self.scheduler.step(out, self._t[k], x, return_dict=True, **kwargs)
                assert self.eta is not None  # the flow mode always has one (default FLOW_ETA)
                return flow_step(self.scheduler, step, x, out, k, self.eta, generator).prev_sample
            return self.scheduler.step(out, self._t[k], x, return_dict=True, **kwargs).prev_sample

    def denoised(self, x: torch.Tensor, t: Any, out: torch.Tensor) -> torch.Tensor:
        """The scheduler's x0 estimate [B, C, H, W] (see `svdd.diffusers.stepping.predicted_x0`)."""
        k = self._k(t)
        return predicted_x0(self.scheduler, x, self._t[k], k, out, self.step_kwargs)

    def decode(self, x0: torch.Tensor) -> list[torch.Tensor]:
        """B CPU float images [3, H, W] in [0, 1]."""
        if self._unpack is not None and x0.dim() == 3:
            x0 = self._unpack(x0)
        return decode_images(x0, self.vae, self.decode_batch)

    def renoise(
        self, x0: torch.Tensor, level: float, generator: GeneratorLike = None
    ) -> tuple[torch.Tensor, list[Any]]:
        """Forward-noise clean states x0 [B, C, H, W] (latents for a latent model) to the timestep
        of this schedule nearest level·num_train_timesteps (ties to the noisier), with the
        scheduler's own `add_noise` (`scale_noise` for flow matching) and noise from `generator`.
        Returns (x_t, the timesteps left, from t on), for iterative refinement."""
        train = float(getattr(self.scheduler.config, "num_train_timesteps", 1000))
        k = min(range(len(self.timesteps)), key=lambda i: (abs(float(self.timesteps[i]) - level * train), i))
        noise = randn(x0.shape, generator, device=x0.device).to(x0.dtype)
        t = self._t[k].reshape(1).expand(x0.shape[0]).to(x0.device)
        with at_step(self.scheduler, k):
            if hasattr(self.scheduler, "add_noise"):
                x_t = self.scheduler.add_noise(x0, noise, t)
            elif hasattr(self.scheduler, "scale_noise"):
                x_t = self.scheduler.scale_noise(x0, t, noise)
            else:
                raise TypeError(
                    f"{type(self.scheduler).__name__} has neither add_noise nor scale_noise; "
                    "it cannot noise a clean sample for refine"
                )
        return x_t.to(self.dtype), self.timesteps[k:]

    def __repr__(self) -> str:
        cond = "" if self.prompt_embeds is None else f", prompt, guidance_scale={self.guidance_scale}"
        return (
            f"DiffusersProcess({type(self.unet).__name__}, {type(self.scheduler).__name__}, "
            f"steps={len(self.timesteps)}, shape={self.sample_shape}{cond})"
        )


class _Stopped(Exception):
    """Raised by `_FirstStep.step` to stop a pipeline call once its first step is seen."""

    def __init__(self, arguments: dict[str, Any]):
        super().__init__("stopped at the first scheduler step")
        self.arguments = arguments


class _FirstStep:
    """A pipeline's scheduler for one call that stops it at its first `step`: everything else goes
    to the real scheduler `base` (so the pipeline sets its own schedule on it)."""

    def __init__(self, base: Any):
        self.base = base
        self.seen: tuple[torch.Tensor, Any, torch.Tensor] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    def step(self, model_output: torch.Tensor, timestep: Any, sample: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        self.seen = (model_output.detach(), timestep, sample.detach())
        raise _Stopped(calling_pipeline(self)[1])  # the call's arguments: height, width for unpacking


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}")
    return int(value)


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number; got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value!r}")
    return float(value)


def _sample_shape(shape: Any, unet: Any) -> tuple[int, ...]:
    """The per-sample state shape [C, H, W]: `shape` checked against the UNet's input channels, or the UNet's own."""
    if shape is None:
        return _unet_sample_shape(unet)
    if (
        isinstance(shape, (str, bytes))
        or not hasattr(shape, "__iter__")
        or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in shape)
    ):
        raise TypeError(f"sample_shape must be a tuple of positive ints (C, H, W); got {shape!r}")
    shape = tuple(int(d) for d in shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"sample_shape must be a tuple of positive ints (C, H, W); got {shape!r}")
    channels = getattr(getattr(unet, "config", None), "in_channels", None)
    if isinstance(channels, int) and (not shape or shape[0] != channels):
        raise ValueError(f"sample_shape {shape} does not start with the UNet's {channels} input channels")
    return shape


def _unet_sample_shape(unet: Any) -> tuple[int, ...]:
    config = unet.config
    size = config.sample_size
    if size is None:
        raise ValueError("unet.config.sample_size is None; pass sample_shape=(C, H, W)")
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    return (config.in_channels, h, w)


def _as_prompt(embeds: torch.Tensor | None, name: str, device: Any, dtype: torch.dtype) -> torch.Tensor | None:
    if embeds is None:
        return None
    if not isinstance(embeds, torch.Tensor):
        raise TypeError(f"{name} must be a tensor [L, D] or [1, L, D]; got {type(embeds).__name__}")
    if embeds.dim() == 2:
        embeds = embeds[None]
    if embeds.dim() != 3 or embeds.shape[0] != 1:
        raise ValueError(
            f"{name} must hold one prompt, shape [L, D] or [1, L, D]; got {tuple(embeds.shape)}. "
            "The samplers repeat and chunk rows, so a process conditions every row on the same "
            "prompt: build one process per prompt, or use SVDDScheduler in the pipeline"
        )
    return embeds.to(device, dtype)
