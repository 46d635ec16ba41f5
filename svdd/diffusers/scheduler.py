"""`SVDDScheduler`: SVDD as a drop-in diffusers scheduler.

    pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=my_reward, num_candidates=8)
    images = pipe(...).images                      # the pipeline's usual call and output

It wraps the pipeline's own (stochastic, order-1) scheduler, the *base*. At each `step(model_output,
t, sample)` with a batch of B samples:

1. the batch is repeated M times (`repeat_interleave`, so rows i·M..i·M+M-1 are sample i's
   children) and the base takes **one** `step` on the B·M rows, drawing its own noise (a per-sample
   generator list is expanded so sample i's children all draw from generator[i]);
2. the children are scored at the next timestep (see "values" below); on the last step they are
   clean and scored by the reward of their decoded images;
3. one child per sample is kept, the argmax (alpha = 0) or a draw from softmax(values / alpha),
   and the base's usual output type is returned with the kept rows.

These three are `svdd.sampling.samplers.svdd_step`, the step `svdd.sample(method="svdd")` takes, run through
`svdd.diffusers.pipeline_calls.PipelineCalls`. After a pipeline call, `scheduler.stats` holds the
counters of `svdd.Result.stats` (`model_calls`: the child rows the scheduler replayed through the
UNet; `model_batches`, `reward_calls`, `value_calls`, `fallback_rows`, the `*_time_s` timings) plus
`steps` and `pipeline_unet_rows` (the UNet rows of the pipeline's own calls), and
`scheduler.trace` one entry per step with the keys of `svdd.Result.trace`.

Values (`value=`):
* None or `svdd.PosteriorMean(reward)` (PM, exact SVDD-PM): r(decode(x0_hat(child))), x0_hat from
  the base's `pred_original_sample` on the pipeline's prediction *for the child*. The scheduler
  cannot see the prompt or CFG settings, so it replays the pipeline's own last UNet call on the
  children (`svdd.diffusers.replay.DenoiserReplay`, a forward hook on the UNet, checked to reproduce
  the pipeline's `model_output` exactly; plain CFG is supported, guidance_rescale is refused).
  Cost per step: the pipeline's own B UNet rows (2B with CFG) plus B·M child rows (2·B·M with
  CFG), i.e. M + 1 UNet evaluations per sample and step instead of SVDD's M: the pipeline
  re-evaluates the kept child, which an outside scheduler cannot prevent. The last step adds
  no UNet call (clean children are scored by the reward directly).
* `svdd.LearnedValue(fn)` (MC): fn(children, t_next) on the raw states, no extra UNet call.

Rewards read images in [0, 1] ([C, H, W] CPU tensors), decoded with the pipeline's VAE for latent
models. Refused bases: order 2 (Heun, KDPM2) at construction; deterministic ones (DDIM at eta = 0,
Euler, PNDM, default DPM-Solver, UniPC) at construction when the step has no `eta`, and on the
first step otherwise (DDIM receives eta from the pipeline call).

Finding the pipeline's modules: when a pipeline calls `set_timesteps` (or `step`), the scheduler
finds that pipeline (the `DiffusionPipeline` whose `scheduler` it is, up the call stack) and takes
its UNet and VAE for whichever of the two it was not given, so the reward always reads the images
the pipeline itself would decode, never raw latents. A scheduler driven by a hand-written loop
gets its modules only from `from_pipeline` or `attach`; given a VAE, it refuses samples whose
channels are not the VAE's latent channels.

Config: `config` holds the wrapper's own keys and, beside them, the base's keys, so the usual
diffusers idiom `EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)` rebuilds a
scheduler on the base's schedule; `compatibles` lists the stochastic schedulers SVDD can wrap.
Swapping schedulers never piles up UNet hooks: one recorder per UNet is shared and its hook goes
with its last user (`svdd.diffusers.replay.DenoiserReplay.shared`).

Serialization: `save_pretrained` stores `base_scheduler_class`, `base_scheduler_config`,
`num_candidates`, `alpha`, `max_batch` and `decode_batch`; the reward, the value and the module
references are Python objects and are not saved. After `from_pretrained` (alone or inside
`DiffusionPipeline.from_pretrained`) re-attach the reward: `pipe.scheduler.attach(reward=...,
pipe=pipe)` (the pipeline's UNet and VAE are also found on its first call), or call
`SVDDScheduler.from_pipeline(pipe, ...)` again.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
import weakref
from typing import Any, ClassVar, cast

import diffusers
import torch
from diffusers import DiffusionPipeline
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from ..rng import check_generator
from ..sampling.calls import new_stats
from ..sampling.samplers import svdd_step
from ..sampling.values import Value, as_value
from .discrete import DISCRETE_SCHEDULERS, DiscreteSVDDScheduler
from .pipeline_calls import PipelineCalls
from .replay import DenoiserReplay, calling_pipeline, latent_unpacker
from .stepping import (
    check_order,
    check_stochastic,
    default_eta,
    init_noise_sigma,
    sde_counterpart,
    stochastic_mode,
    timestep_index,
)


class SVDDScheduler(SchedulerMixin, ConfigMixin):
    """SVDD around a diffusers scheduler; see the module docstring.

    Args:
        base_scheduler_class: name of a diffusers scheduler class, e.g. "DDPMScheduler".
        base_scheduler_config: its config (`dict(base.config)`).
        num_candidates: M, children per sample and step.
        alpha: selection temperature (0: argmax).
        max_batch: most children per replayed UNet call (None: all at once).
        eta: noise level in (0, 1] of the stochastic step svdd gives a deterministic base (flow
            matching: the re-noising of `svdd.diffusers.stepping.flow_step`, default 0.5; DDIM: its
            eta when the pipeline passes 0, default 1.0); None for a base that draws its own noise.
            A deterministic DPM-Solver is run as its SDE variant.
        reward: the objective, `list[image] -> array[float]` (images [C, H, W] in [0, 1]).
        value: None (PM on `reward`), `svdd.PosteriorMean(r)`, `svdd.LearnedValue(fn)` or any
            `svdd.sampling.values.Value`.
        unet: the pipeline's UNet (needed by PM; a forward hook records its calls). Found on the
            pipeline's first call when not given.
        vae: the pipeline's VAE for latent models (None for pixel models). Found on the
            pipeline's first call when not given.
        decode_batch: rows per `vae.decode` call.
    """

    config_name = "scheduler_config.json"
    ignore_for_config: ClassVar[list[str]] = ["reward", "value", "unet", "vae"]
    # the stochastic order-1 schedulers SVDD wraps; each can be built from this config (it holds the base's keys)
    _compatibles: ClassVar[list[str]] = [
        "DDPMScheduler",
        "DDIMScheduler",
        "EulerAncestralDiscreteScheduler",
        "DPMSolverMultistepScheduler",
        "LCMScheduler",
        "FlowMatchEulerDiscreteScheduler",
    ]

    @register_to_config
    def __init__(
        self,
        base_scheduler_class: str = "DDPMScheduler",
        base_scheduler_config: dict | None = None,
        num_candidates: int = 8,
        alpha: float = 0.0,
        max_batch: int | None = None,
        decode_batch: int = 16,
        eta: float | None = None,
        reward: Any = None,
        value: Any = None,
        unet: Any = None,
        vae: Any = None,
    ):
        num_candidates, alpha = _count("num_candidates", num_candidates), _alpha(alpha)
        max_batch = None if max_batch is None else _count("max_batch", max_batch)
        decode_batch = _count("decode_batch", decode_batch)
        if not isinstance(base_scheduler_class, str):
            raise TypeError(
                f"base_scheduler_class must be the name of a diffusers scheduler class; got {base_scheduler_class!r}"
            )
        if base_scheduler_config is not None and not isinstance(base_scheduler_config, dict):
            raise TypeError(
                f"base_scheduler_config must be a dict (dict(base.config)) or None; got "
                f"{type(base_scheduler_config).__name__}"
            )
        # plain Python numbers and lists in the config (numpy scalars and arrays, such as a base's
        # trained_betas, do not serialize inside a nested dict)
        if base_scheduler_config is not None:
            base_scheduler_config = {k: _plain(v) for k, v in base_scheduler_config.items()}
        self.register_to_config(
            num_candidates=num_candidates,
            alpha=alpha,
            max_batch=max_batch,
            decode_batch=decode_batch,
            base_scheduler_config=base_scheduler_config,
        )
        base_class = getattr(diffusers, base_scheduler_class, None)
        if base_class is None or not isinstance(base_class, type) or not issubclass(base_class, SchedulerMixin):
            raise ValueError(f"base_scheduler_class {base_scheduler_class!r} is not a diffusers scheduler class")
        if base_class is SVDDScheduler:
            raise ValueError("cannot wrap an SVDDScheduler in another SVDDScheduler")
        self.base: Any = sde_counterpart(cast(Any, base_class).from_config(dict(base_scheduler_config or {})))
        check_order(self.base)
        self.stochastic_mode = stochastic_mode(self.base)
        if self.stochastic_mode is None:
            check_stochastic(self.base)
        if eta is None:
            eta = default_eta(self.stochastic_mode)
        elif self.stochastic_mode is None:
            raise ValueError(
                f"eta sets the noise of the stochastic step svdd gives a deterministic base; "
                f"{type(self.base).__name__} draws its own noise: leave eta=None"
            )
        elif isinstance(eta, bool) or not isinstance(eta, numbers.Real) or not 0 < eta <= 1:
            raise ValueError(f"eta must be a number in (0, 1] (or None for the default); got {eta!r}")
        self.register_to_config(eta=None if eta is None else float(eta))
        # the base's keys beside the wrapper's, for `OtherScheduler.from_config(svdd.config)`
        own = set(inspect.signature(SVDDScheduler.__init__).parameters)
        self.register_to_config(
            **{k: v for k, v in dict(self.base.config).items() if not k.startswith("_") and k not in own}
        )
        self.reward: Any = None
        self.value: Value | None = None
        self.vae: Any = None
        self.replay: DenoiserReplay | None = None
        self.stats: dict[str, Any] = {}
        self.trace: list[dict[str, Any]] = []
        self._schedule_set = False
        self._pipeline: weakref.ref | None = None  # the pipeline calling this scheduler, if found
        self._searched = False  # whether this run looked for it already
        self._unpack: Any = None  # the pipeline's unpacking of packed latents (Flux), if any
        self.attach(reward=reward, value=value, unet=unet, vae=vae)
        self._reset()

    @classmethod
    def extract_init_dict(cls, config_dict: dict[str, Any], **kwargs: Any) -> tuple[dict, dict, dict]:
        """diffusers' config reading, without the base's keys that `config` carries beside the
        wrapper's (they are rebuilt from `base_scheduler_config`, not passed to `__init__`)."""
        base_keys = set(dict(config_dict).get("base_scheduler_config") or {})
        own = set(inspect.signature(cls.__init__).parameters)
        config_dict = {k: v for k, v in dict(config_dict).items() if k in own or k not in base_keys}
        return super().extract_init_dict(config_dict, **kwargs)

    @classmethod
    def from_pipeline(
        cls,
        pipe: Any,
        reward: Any = None,
        num_candidates: int = 8,
        alpha: float = 0.0,
        value: Any = None,
        max_batch: int | None = None,
        decode_batch: int = 16,
        eta: float | None = None,
    ) -> Any:
        """Wrap `pipe.scheduler` (or the base of an SVDDScheduler already there), hook the pipeline's
        denoiser (`pipe.unet` or `pipe.transformer`) for PM values and take `pipe.vae` for decoding.
        Assign the result to `pipe.scheduler`. `eta`: see the class docstring. A discrete text
        pipeline (LLaDA2Pipeline with BlockRefinementScheduler) gets a `DiscreteSVDDScheduler`
        (svdd.diffusers.discrete) from the same call."""
        base = pipe.scheduler
        if isinstance(base, DiscreteSVDDScheduler) or type(base).__name__ in DISCRETE_SCHEDULERS:
            if value is not None or max_batch is not None or eta is not None:
                raise ValueError(
                    "the discrete drop-in (text pipelines) takes reward, num_candidates and alpha; value, "
                    "max_batch and eta are options of the continuous one"
                )
            return DiscreteSVDDScheduler.from_pipeline(pipe, reward=reward, num_candidates=num_candidates, alpha=alpha)
        if isinstance(base, SVDDScheduler):
            base.detach()
            base = base.base
        config = {k: v for k, v in dict(base.config).items() if not k.startswith("_")}
        return cls(
            base_scheduler_class=type(base).__name__,
            base_scheduler_config=config,
            num_candidates=num_candidates,
            alpha=alpha,
            max_batch=max_batch,
            decode_batch=decode_batch,
            eta=eta,
            reward=reward,
            value=value,
            unet=denoiser_of(pipe),
            vae=getattr(pipe, "vae", None),
        )

    def attach(
        self, reward: Any = None, value: Any = None, unet: Any = None, vae: Any = None, pipe: Any = None
    ) -> SVDDScheduler:
        """Set the Python objects that are not saved with the config (arguments left None are kept).

        `pipe`: take the pipeline's `unet` and `vae` for those not given. Without it they are also
        found on the pipeline's first call (see the module docstring).
        """
        if pipe is not None:
            if not isinstance(pipe, DiffusionPipeline):
                raise TypeError(f"pipe must be a diffusers DiffusionPipeline; got {type(pipe).__name__}")
            unet = unet if unet is not None else denoiser_of(pipe)
            vae = vae if vae is not None else getattr(pipe, "vae", None)
        if reward is not None:
            if not callable(reward):
                raise TypeError(f"reward must be callable list[image] -> array[float]; got {type(reward).__name__}")
            self.reward = reward
        if value is not None:
            self.value = as_value(value, None)
        if unet is not None:
            if not callable(getattr(unet, "register_forward_hook", None)):
                raise TypeError(
                    f"unet must be the pipeline's denoiser (its UNet or transformer, a torch module); "
                    f"got {type(unet).__name__}"
                )
            if self.replay is None or self.replay.unet is not unet:
                self.detach()
                self.replay = DenoiserReplay.shared(unet, self)
        if vae is not None:
            if not callable(getattr(vae, "decode", None)) or not hasattr(vae, "config"):
                raise TypeError(f"vae must be the pipeline's VAE (with decode and config); got {type(vae).__name__}")
            self.vae = vae
        return self

    def detach(self) -> None:
        """Stop recording the UNet's calls (the scheduler can no longer compute PM values); the
        UNet's forward hook is removed when no other scheduler uses it."""
        if self.replay is not None:
            self.replay.release(self)
            self.replay = None

    # -- the scheduler interface pipelines use -------------------------------------------------

    @property
    def step(self):
        """`step` with the base scheduler's signature (pipelines inspect it for `eta`/`generator`)."""

        def step(*args: Any, **kwargs: Any) -> Any:
            return self._svdd_step(*args, **kwargs)

        step.__signature__ = inspect.signature(self.base.step)  # type: ignore[attr-defined]
        step.__doc__ = SVDDScheduler._svdd_step.__doc__
        return step

    @property
    def set_timesteps(self):
        """`set_timesteps` with the base scheduler's signature (pipelines inspect it)."""

        def set_timesteps(*args: Any, **kwargs: Any) -> None:
            self.base.set_timesteps(*args, **kwargs)
            self._schedule_set = True
            self._reset()
            self._adopt_pipeline_modules()

        set_timesteps.__signature__ = inspect.signature(self.base.set_timesteps)  # type: ignore[attr-defined]
        return set_timesteps

    def scale_model_input(self, sample: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if not hasattr(self.base, "scale_model_input"):
            return sample
        return self.base.scale_model_input(sample, *args, **kwargs)

    def set_begin_index(self, begin_index: int = 0) -> None:
        if hasattr(self.base, "set_begin_index"):
            self.base.set_begin_index(begin_index)

    def add_noise(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.base.add_noise(*args, **kwargs)

    def scale_noise(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Flow matching's forward noising (image-to-image pipelines call it), from the base."""
        if not hasattr(self.base, "scale_noise"):
            raise AttributeError(f"{type(self.base).__name__} has no scale_noise (it adds noise with add_noise)")
        return self.base.scale_noise(*args, **kwargs)

    @property
    def timesteps(self) -> torch.Tensor:
        return self.base.timesteps

    @property
    def init_noise_sigma(self) -> float:
        return init_noise_sigma(self.base)

    @property
    def order(self) -> int:
        return self.base.order

    @property
    def num_inference_steps(self) -> int | None:
        return self.base.num_inference_steps

    @property
    def sigmas(self) -> torch.Tensor:
        return self.base.sigmas

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return self.base.alphas_cumprod

    @property
    def step_index(self) -> int | None:
        return getattr(self.base, "step_index", None)

    @property
    def begin_index(self) -> int | None:
        return getattr(self.base, "begin_index", None)

    def __len__(self) -> int:
        return len(self.base)

    @property
    def compatibles(self) -> list[type]:
        """The diffusers schedulers that can be built from this config: the stochastic ones SVDD wraps."""
        return [c for c in self._get_compatibles() if c is not SVDDScheduler]

    # -- the pipeline's modules ----------------------------------------------------------------

    def _adopt_pipeline_modules(self) -> None:
        """Take the calling pipeline's denoiser and VAE for those the scheduler was not given, how it
        unpacks its latents, and refuse call options the posterior-mean replay cannot reproduce."""
        self._searched, self._pipeline, self._unpack = True, None, None
        pipe, arguments = calling_pipeline(self)
        if not isinstance(pipe, DiffusionPipeline):
            return
        self._pipeline = weakref.ref(pipe)
        self.attach(
            unet=None if self.replay is not None else denoiser_of(pipe),
            vae=None if self.vae is not None else getattr(pipe, "vae", None),
        )
        self._unpack = latent_unpacker(pipe, arguments)
        if self._posterior_mean:
            _refuse_unreplayable(arguments)

    @property
    def _posterior_mean(self) -> bool:
        """Whether the value reads the denoiser's output on the children (PM, the default)."""
        return self.value is None or bool(self.value.needs_model_output)

    def _check_latents(self, sample: torch.Tensor) -> None:
        """Refuse samples the attached VAE cannot decode (so a reward never scores the wrong thing)."""
        latent_channels = getattr(getattr(self.vae, "config", None), "latent_channels", None)
        if isinstance(latent_channels, int) and sample.dim() == 4 and sample.shape[1] != latent_channels:
            raise ValueError(
                f"the samples have {sample.shape[1]} channels, but the VAE attached to this SVDDScheduler "
                f"decodes {latent_channels}-channel latents: attach the pipeline's own VAE "
                "(pipe.scheduler.attach(pipe=pipe)), or none for a pixel-space model"
            )

    # -- SVDD --------------------------------------------------------------------------------

    def _reset(self) -> None:
        self.stats = {"steps": 0, **new_stats(), "pipeline_unet_rows": 0}
        self.trace = []
        self._index = None
        if self.replay is not None:
            self.replay.take_pipeline_rows()  # count only the rows of this run's own UNet calls
        # a schedule exists once set_timesteps ran (with num_inference_steps or custom timesteps)
        if self._schedule_set and getattr(self.base, "timesteps", None) is not None:
            self._index = timestep_index([float(t) for t in self.base.timesteps])

    def _svdd_step(self, *args: Any, **kwargs: Any) -> Any:
        """One SVDD step: M children per sample from one base step, keep one per sample.

        Takes the base scheduler's arguments (model_output [B, ...], timestep, sample [B, ...],
        its options such as eta, generator, return_dict) and returns its usual output (or
        tuple when return_dict=False) holding the kept children.
        """
        if self.config.num_candidates == 1 and self.reward is None:
            return self.base.step(*args, **kwargs)  # one candidate and nothing to score: the base itself
        model_output, timestep, sample, generator, return_dict, extra = self._bind_step(args, kwargs)
        if self.reward is None:
            raise ValueError(
                "SVDDScheduler has no reward (rewards are not saved with the config): call "
                "pipe.scheduler.attach(reward=..., pipe=pipe) (the pipeline's UNet and VAE; or "
                "attach(reward=..., unet=pipe.unet, vae=pipe.vae) for a latent model) or "
                "SVDDScheduler.from_pipeline(pipe, reward=...)"
            )
        if self._index is None:
            raise ValueError("call set_timesteps before step")
        if not self._searched:
            self._adopt_pipeline_modules()
        self._check_latents(sample)
        b, m = sample.shape[0], self.config.num_candidates
        if isinstance(generator, (list, tuple)):
            check_generator(list(generator), b)
            generator = list(generator)
        if float(timestep) not in self._index:
            raise ValueError(f"timestep {float(timestep)} is not in the schedule set by set_timesteps")
        k = self._index[float(timestep)]
        t_next = self.base.timesteps[k + 1] if k + 1 < len(self._index) else None
        if self.replay is not None:
            self.stats["pipeline_unet_rows"] += self.replay.take_pipeline_rows()

        layout = None
        if self._posterior_mean and t_next is not None and self.replay is not None:
            layout = self.replay.layout(model_output, timestep)
        if layout is not None and layout.doubled:  # DiT: the halves are the same samples; sample one
            b, model_output, sample = b // 2, model_output[: b // 2], sample[: b // 2]
            if isinstance(generator, list):
                generator = generator[:b]
        calls = PipelineCalls(self, model_output, timestep, k, extra, self.stats, layout)
        kept = svdd_step(calls, sample, timestep, t_next, model_output, m, self.config.alpha, generator)
        self.stats["steps"] += 1
        calls.record(self.trace, timestep, kept.values, selected=True)
        assert kept.pick is not None  # svdd_step always says which child won
        winners = torch.arange(b, device=sample.device) * m + kept.pick.to(sample.device)
        if layout is not None and layout.doubled:
            winners = torch.cat([winners, winners])
        output = _take_rows(calls.process.output, winners, b * m)
        return output if return_dict else output.to_tuple()

    def _bind_step(self, args: tuple, kwargs: dict[str, Any]) -> tuple[Any, Any, Any, Any, bool, dict[str, Any]]:
        """`step`'s arguments by the base's signature: (model_output, timestep, sample, generator,
        return_dict, the base step's other options)."""
        signature = inspect.signature(self.base.step)
        arguments = dict(signature.bind(*args, **kwargs).arguments)
        names = list(signature.parameters)
        model_output = arguments.pop(names[0])
        timestep = arguments.pop(names[1])
        sample = arguments.pop(names[2])
        return_dict = arguments.pop("return_dict", True)
        generator = arguments.pop("generator", None)
        extra: dict[str, Any] = {}
        for name, v in arguments.items():
            kind = signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                extra.update(v)
            elif kind is not inspect.Parameter.VAR_POSITIONAL:
                extra[name] = v
        return model_output, timestep, sample, generator, return_dict, extra


# pipeline call options whose effect on the prediction the posterior-mean replay cannot reproduce
UNREPLAYABLE = {
    "guidance_rescale": "guidance rescale",
    "skip_guidance_layers": "skip-layer guidance",
    "ip_adapter_image": "an IP-adapter image",
    "ip_adapter_image_embeds": "IP-adapter image embeddings",
}


def _refuse_unreplayable(arguments: dict[str, Any]) -> None:
    """Raise before any denoiser call when the pipeline call uses an option in UNREPLAYABLE."""
    for name, feature in UNREPLAYABLE.items():
        v = arguments.get(name)
        if v is not None and not (isinstance(v, (int, float)) and v == 0) and not (isinstance(v, list) and not v):
            raise ValueError(
                f"{name}={v!r}: SVDDScheduler's posterior-mean value replays the pipeline's denoiser "
                f"call on every child and cannot reproduce {feature}; call the pipeline without it, or "
                "score children without a denoiser call: SVDDScheduler.from_pipeline(pipe, reward=..., "
                "value=svdd.LearnedValue(fn))"
            )


def denoiser_of(pipe: Any) -> Any:
    """The pipeline's denoiser: `pipe.unet` (UNet pipelines) or `pipe.transformer` (SD3, Flux,
    PixArt, Sana, DiT, video pipelines); None when it has neither."""
    for name in ("unet", "transformer"):
        module = getattr(pipe, name, None)
        if module is not None:
            return module
    return None


def _plain(value: Any) -> Any:
    """A config value as JSON-serializable Python (arrays and tensors as lists, numpy scalars as numbers)."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return value.tolist()
    return value


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    return int(value)


def _alpha(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"alpha must be a finite number >= 0 (0 selects by argmax); got {value!r}")
    return float(value)


def _take_rows(result: Any, index: torch.Tensor, rows: int) -> Any:
    """The same output dataclass with rows `index` of each batch-first tensor field."""
    values = {}
    for field in dataclasses.fields(result):
        v = getattr(result, field.name)
        if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == rows:
            v = v.index_select(0, index)
        values[field.name] = v
    return type(result)(**values)
