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

These three are `svdd.samplers.svdd_step`, the step `svdd.sample(method="svdd")` takes, run through
`svdd.diffusers.pipeline_calls.PipelineCalls`. After a pipeline call, `scheduler.stats` holds the
counters of `svdd.Result.stats` (`model_calls`: the child rows the scheduler replayed through the
UNet; `model_batches`, `reward_calls`, `value_calls`, `fallback_rows`, the `*_time_s` timings) plus
`steps` and `pipeline_unet_rows` (the UNet rows of the pipeline's own calls), and
`scheduler.trace` one entry per step with the keys of `svdd.Result.trace`.

Values (`value=`):
* None or `svdd.PosteriorMean(reward)` (PM, exact SVDD-PM): r(decode(x0_hat(child))), x0_hat from
  the base's `pred_original_sample` on the pipeline's prediction *for the child*. The scheduler
  cannot see the prompt or CFG settings, so it replays the pipeline's own last UNet call on the
  children (`svdd.diffusers.replay.UNetReplay`, a forward hook on the UNet, checked to reproduce
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

Serialization: `save_pretrained` stores `base_scheduler_class`, `base_scheduler_config`,
`num_candidates`, `alpha` and `max_batch`; the reward, the value and the module references are
Python objects and are not saved. After `from_pretrained` (alone or inside
`DiffusionPipeline.from_pretrained`) re-attach them: `pipe.scheduler.attach(reward=...,
unet=pipe.unet, vae=getattr(pipe, "vae", None))`, or call `SVDDScheduler.from_pipeline(pipe, ...)`
again.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import diffusers
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from ..calls import new_stats
from ..rng import check_generator
from ..samplers import svdd_step
from ..values import Value, as_value
from .pipeline_calls import PipelineCalls
from .replay import UNetReplay
from .stepping import check_order, check_stochastic, init_noise_sigma, step_parameters, timestep_index


class SVDDScheduler(SchedulerMixin, ConfigMixin):
    """SVDD around a diffusers scheduler; see the module docstring.

    Args:
        base_scheduler_class: name of a diffusers scheduler class, e.g. "DDPMScheduler".
        base_scheduler_config: its config (`dict(base.config)`).
        num_candidates: M, children per sample and step.
        alpha: selection temperature (0: argmax).
        max_batch: most children per replayed UNet call (None: all at once).
        reward: the objective, `list[image] -> array[float]` (images [C, H, W] in [0, 1]).
        value: None (PM on `reward`), `svdd.PosteriorMean(r)`, `svdd.LearnedValue(fn)` or any
            `svdd.values.Value`.
        unet: the pipeline's UNet (needed by PM; a forward hook records its calls).
        vae: the pipeline's VAE for latent models (None for pixel models).
        decode_batch: rows per `vae.decode` call.
    """

    config_name = "scheduler_config.json"
    ignore_for_config = ["reward", "value", "unet", "vae"]
    _compatibles: list[str] = []

    @register_to_config
    def __init__(
        self,
        base_scheduler_class: str = "DDPMScheduler",
        base_scheduler_config: dict | None = None,
        num_candidates: int = 8,
        alpha: float = 0.0,
        max_batch: int | None = None,
        decode_batch: int = 16,
        reward: Any = None,
        value: Any = None,
        unet: Any = None,
        vae: Any = None,
    ):
        if isinstance(num_candidates, bool) or not isinstance(num_candidates, int) or num_candidates < 1:
            raise ValueError(f"num_candidates must be an integer >= 1; got {num_candidates!r}")
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not alpha >= 0 or alpha == float("inf"):
            raise ValueError(f"alpha must be a finite number >= 0 (0 selects by argmax); got {alpha!r}")
        base_class = getattr(diffusers, base_scheduler_class, None)
        if base_class is None or not isinstance(base_class, type) or not issubclass(base_class, SchedulerMixin):
            raise ValueError(f"base_scheduler_class {base_scheduler_class!r} is not a diffusers scheduler class")
        if base_class is SVDDScheduler:
            raise ValueError("cannot wrap an SVDDScheduler in another SVDDScheduler")
        self.base = base_class.from_config(dict(base_scheduler_config or {}))
        check_order(self.base)
        if "eta" not in step_parameters(self.base):
            check_stochastic(self.base)
        self.reward: Any = None
        self.value: Value | None = None
        self.vae: Any = None
        self.replay: UNetReplay | None = None
        self.stats: dict[str, Any] = {}
        self.trace: list[dict[str, Any]] = []
        self.attach(reward=reward, value=value, unet=unet, vae=vae)
        self._reset()

    @classmethod
    def from_pipeline(cls, pipe: Any, reward: Any = None, num_candidates: int = 8, alpha: float = 0.0,
                      value: Any = None, max_batch: int | None = None, decode_batch: int = 16) -> "SVDDScheduler":
        """Wrap `pipe.scheduler` (or the base of an SVDDScheduler already there), hook `pipe.unet`
        for PM values and take `pipe.vae` for decoding. Assign the result to `pipe.scheduler`."""
        base = pipe.scheduler
        if isinstance(base, SVDDScheduler):
            base.detach()
            base = base.base
        config = {k: v for k, v in dict(base.config).items() if not k.startswith("_")}
        return cls(base_scheduler_class=type(base).__name__, base_scheduler_config=config,
                   num_candidates=num_candidates, alpha=alpha, max_batch=max_batch, decode_batch=decode_batch,
                   reward=reward, value=value, unet=getattr(pipe, "unet", None), vae=getattr(pipe, "vae", None))

    def attach(self, reward: Any = None, value: Any = None, unet: Any = None, vae: Any = None) -> "SVDDScheduler":
        """Set the Python objects that are not saved with the config (arguments left None are kept)."""
        if reward is not None:
            if not callable(reward):
                raise TypeError(f"reward must be callable list[image] -> array[float]; got {type(reward).__name__}")
            self.reward = reward
        if value is not None:
            self.value = as_value(value, None)
        if unet is not None:
            if self.replay is not None:
                self.replay.remove()
            self.replay = UNetReplay(unet)
        if vae is not None:
            self.vae = vae
        return self

    def detach(self) -> None:
        """Remove the forward hook from the UNet (the scheduler can no longer compute PM values)."""
        if self.replay is not None:
            self.replay.remove()
            self.replay = None

    # -- the scheduler interface pipelines use -------------------------------------------------

    @property
    def step(self):
        """`step` with the base scheduler's signature (pipelines inspect it for `eta`/`generator`)."""
        def step(*args: Any, **kwargs: Any) -> Any:
            return self._svdd_step(*args, **kwargs)
        step.__signature__ = inspect.signature(self.base.step)
        step.__doc__ = SVDDScheduler._svdd_step.__doc__
        return step

    @property
    def set_timesteps(self):
        """`set_timesteps` with the base scheduler's signature (pipelines inspect it)."""
        def set_timesteps(*args: Any, **kwargs: Any) -> None:
            self.base.set_timesteps(*args, **kwargs)
            self._reset()
        set_timesteps.__signature__ = inspect.signature(self.base.set_timesteps)
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

    # -- SVDD --------------------------------------------------------------------------------

    def _reset(self) -> None:
        self.stats = {"steps": 0, **new_stats(), "pipeline_unet_rows": 0}
        self.trace = []
        self._index = None
        if self.replay is not None:
            self.replay.take_pipeline_rows()  # count only the rows of this run's own UNet calls
        if getattr(self.base, "timesteps", None) is not None and getattr(self.base, "num_inference_steps", None):
            self._index = timestep_index([float(t) for t in self.base.timesteps])

    def _svdd_step(self, *args: Any, **kwargs: Any) -> Any:
        """One SVDD step: M children per sample from one base step, keep one per sample.

        Takes the base scheduler's arguments (model_output [B, ...], timestep, sample [B, ...],
        its options such as eta, generator, return_dict) and returns its usual output (or
        tuple when return_dict=False) holding the kept children.
        """
        model_output, timestep, sample, generator, return_dict, extra = self._bind_step(args, kwargs)
        if self.reward is None:
            raise ValueError(
                "SVDDScheduler has no reward (rewards are not saved with the config): call "
                "scheduler.attach(reward=..., unet=pipe.unet) or SVDDScheduler.from_pipeline(pipe, reward=...)"
            )
        if self._index is None:
            raise ValueError("call set_timesteps before step")
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

        calls = PipelineCalls(self, model_output, timestep, k, extra, self.stats)
        kept = svdd_step(calls, sample, timestep, t_next, model_output, m, self.config.alpha, generator)
        self.stats["steps"] += 1
        calls.record(self.trace, timestep, kept.values, selected=True)
        assert kept.pick is not None  # svdd_step always says which child won
        winners = torch.arange(b, device=sample.device) * m + kept.pick.to(sample.device)
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


def _take_rows(result: Any, index: torch.Tensor, rows: int) -> Any:
    """The same output dataclass with rows `index` of each batch-first tensor field."""
    values = {}
    for field in dataclasses.fields(result):
        v = getattr(result, field.name)
        if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == rows:
            v = v.index_select(0, index)
        values[field.name] = v
    return type(result)(**values)
