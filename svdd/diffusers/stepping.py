"""Driving a diffusers scheduler one step at a time, from anywhere in its schedule.

SVDD calls a scheduler's `step` in ways a pipeline never does: once more on two rows to check
that it is stochastic, on the same timestep for x0 estimates, and on batches whose size changes.
The helpers here make that safe:

* `at_step(scheduler, k)` pins a stateful scheduler (Euler, LCM, DPM-Solver, FlowMatch keep a
  private `_step_index` that `step` advances) to step k for the duration of a block, then
  restores it, so extra calls never move the scheduler along its schedule.
* `predicted_x0` is the scheduler's own estimate of the clean sample (`pred_original_sample`,
  LCM's `denoised`), with conversions for the schedulers that do not report one.
* `check_stochastic` refuses schedulers SVDD cannot use (order 2; deterministic steps) with an
  error naming stochastic alternatives.
* Deterministic defaults get a stochastic step with the same marginals (`stochastic_mode`):
  `FlowMatchEulerDiscreteScheduler` (SD3, Flux, Sana, video pipelines) a DDIM-style re-noising of
  the predicted x0 at noise level eta (`flow_step`); DDIM its own `eta`; DPM-Solver its SDE
  variant (`sde_counterpart`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import math
from collections.abc import Iterator
from typing import Any

import torch

from .. import rng

STOCHASTIC_ALTERNATIVES = (
    "DDPMScheduler, DDIMScheduler with eta > 0 (pass eta=1.0), EulerAncestralDiscreteScheduler, "
    "DPMSolverMultistepScheduler(algorithm_type='sde-dpmsolver++'), LCMScheduler or "
    "FlowMatchEulerDiscreteScheduler (svdd makes its step stochastic); for example "
    "pipe.scheduler = DDPMScheduler.from_config(pipe.scheduler.config)"
)


def step_parameters(scheduler: Any) -> set[str]:
    """Names of the parameters of `scheduler.step`."""
    return set(inspect.signature(scheduler.step).parameters)


def has_history(scheduler: Any) -> bool:
    """True for multistep solvers that keep past model outputs (DPM-Solver, UniPC, DEIS...)."""
    return hasattr(scheduler, "model_outputs")


@contextlib.contextmanager
def at_step(scheduler: Any, k: int) -> Iterator[Any]:
    """Pin `scheduler` to step index k inside the block, restoring its own index afterwards.

    Schedulers without a step index (DDPM, DDIM) are stateless and left untouched.
    """
    if not hasattr(scheduler, "_step_index"):
        yield scheduler
        return
    saved = scheduler._step_index
    scheduler._step_index = k
    try:
        yield scheduler
    finally:
        scheduler._step_index = saved


def timestep_index(timesteps: list[float]) -> dict[float, int]:
    """{timestep value: position} for a schedule; raises if a timestep repeats (order-2 schedules)."""
    index: dict[float, int] = {}
    for k, t in enumerate(timesteps):
        if t in index:
            raise ValueError(
                f"the scheduler's timesteps repeat ({t!r} at positions {index[t]} and {k}); SVDD "
                f"needs an order-1 scheduler with distinct timesteps. Use {STOCHASTIC_ALTERNATIVES}"
            )
        index[t] = k
    return index


def init_noise_sigma(scheduler: Any) -> float:
    """The prior's standard deviation (1 for schedulers without `init_noise_sigma`, e.g. flow matching)."""
    return float(getattr(scheduler, "init_noise_sigma", 1.0))


def scale_input(scheduler: Any, x: torch.Tensor, t: Any) -> torch.Tensor:
    """`scheduler.scale_model_input(x, t)`, or x for schedulers without one (flow matching)."""
    if hasattr(scheduler, "scale_model_input"):
        return scheduler.scale_model_input(x, t)
    return x


def _throwaway_generator(device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(0)


def predicted_x0(
    scheduler: Any, x: torch.Tensor, t: Any, k: int, out: torch.Tensor, step_kwargs: dict[str, Any] | None = None
) -> torch.Tensor:
    """The scheduler's estimate of x0 from state x [B, ...] at timestep t (position k) and the
    model output `out` [B, ...] -> x0_hat [B, ...] (same space as x: pixels or latents).

    In order of preference:
    1. history-free schedulers: `step(...).pred_original_sample` (or LCM's `denoised`), computed
       at step k with a throwaway generator, so it includes the scheduler's own clipping or
       thresholding and leaves the scheduler's state and the caller's random stream untouched;
    2. DPM-Solver++ variants: `convert_model_output` (their data prediction) at step k;
    3. flow matching: x - sigma_k * out;
    4. otherwise the conversion from `alphas_cumprod[t]` and `config.prediction_type`
       (epsilon, v_prediction or sample).
    """
    step_kwargs = dict(step_kwargs or {})
    name = type(scheduler).__name__
    if not has_history(scheduler):
        if "generator" in step_parameters(scheduler):
            step_kwargs["generator"] = _throwaway_generator(x.device)
        with at_step(scheduler, k):
            result = scheduler.step(out, t, x, return_dict=True, **step_kwargs)
        for field in ("pred_original_sample", "denoised"):
            x0 = getattr(result, field, None)
            if x0 is not None:
                return x0
    algorithm = getattr(scheduler.config, "algorithm_type", "")
    if hasattr(scheduler, "convert_model_output") and str(algorithm).endswith("dpmsolver++"):
        with at_step(scheduler, k):
            return scheduler.convert_model_output(out, sample=x)
    if name.startswith("FlowMatch") and hasattr(scheduler, "sigmas"):
        sigma = scheduler.sigmas[k].to(x.device, x.dtype)
        return x - sigma * out
    if not hasattr(scheduler, "alphas_cumprod"):
        raise TypeError(
            f"cannot estimate x0 for {name}: its step output has no pred_original_sample and it has "
            "no alphas_cumprod to convert the model output with"
        )
    a = scheduler.alphas_cumprod.to(x.device)[int(t)].to(torch.float32)
    prediction = scheduler.config.prediction_type
    if prediction == "epsilon":
        x0 = (x - (1 - a).sqrt() * out) / a.sqrt()
    elif prediction == "v_prediction":
        x0 = a.sqrt() * x - (1 - a).sqrt() * out
    elif prediction == "sample":
        x0 = out
    else:
        raise ValueError(f"{name} has prediction_type {prediction!r}; expected epsilon, v_prediction or sample")
    return x0.to(x.dtype)


def check_order(scheduler: Any) -> None:
    """Refuse schedulers whose `step` is called more than once per timestep (Heun, KDPM2)."""
    order = getattr(scheduler, "order", 1)
    if order != 1:
        raise ValueError(
            f"{type(scheduler).__name__} has order {order}: a pipeline calls its step {order} times "
            "per timestep (a predictor-corrector pair), so a step is not one draw from "
            f"p(x_prev | x) that SVDD can branch on. Use an order-1 stochastic scheduler: "
            f"{STOCHASTIC_ALTERNATIVES}"
        )


def deterministic_error(scheduler: Any, step_kwargs: dict[str, Any] | None = None) -> ValueError:
    hint = ""
    if "eta" in step_parameters(scheduler) and not (step_kwargs or {}).get("eta"):
        hint = " (DDIM is deterministic at eta = 0: pass eta > 0, e.g. eta=1.0)"
    return ValueError(
        f"{type(scheduler).__name__} is deterministic{hint}: two draws of its step from the same "
        "state are identical, so SVDD's candidates would all be the same and there would be "
        f"nothing to choose from. Use a stochastic order-1 scheduler: {STOCHASTIC_ALTERNATIVES}"
    )


def check_stochastic(
    scheduler: Any, step_kwargs: dict[str, Any] | None = None, shape: tuple[int, ...] = (4, 8, 8)
) -> None:
    """Raise ValueError unless `scheduler` is order 1 and its step draws fresh noise.

    The probe runs on a copy of the scheduler (its state and timesteps are left alone): one
    step from two identical rows at the first timestep; identical results mean deterministic.
    `shape` is the per-sample shape [C, H, W] used for the probe.
    """
    check_order(scheduler)
    probe = copy.deepcopy(scheduler)
    if getattr(probe, "num_inference_steps", None) is None:
        probe.set_timesteps(min(10, int(probe.config.get("num_train_timesteps", 10))))
    t = probe.timesteps[0]
    g = torch.Generator().manual_seed(0)
    x = torch.randn((1, *shape), generator=g).expand(2, *shape).clone() * init_noise_sigma(probe)
    eps = torch.randn((1, *shape), generator=g).expand(2, *shape).clone()
    kwargs = dict(step_kwargs or {})
    if "generator" in step_parameters(probe):
        kwargs["generator"] = torch.Generator().manual_seed(1)
    with at_step(probe, 0):
        scale_input(probe, x, t)
        prev = probe.step(eps, t, x, return_dict=True, **kwargs).prev_sample
    if torch.equal(prev[0], prev[1]):
        raise deterministic_error(scheduler, step_kwargs)


# default noise levels of the stochastic steps given to deterministic bases (recorded in the config)
FLOW_ETA = 0.5  # half of the step's noise fresh: samples stay sharp at a flow pipeline's usual 20-50 steps
DDIM_ETA = 1.0  # DDIM at eta = 1 has DDPM's marginals


def stochastic_mode(scheduler: Any) -> str | None:
    """How svdd draws distinct children from `scheduler`'s step: "flow" (a deterministic flow-matching
    Euler step, made stochastic by `flow_step`), "eta" (the step takes DDIM's eta), or None (the step
    is taken as it is; `check_stochastic` says whether it draws noise)."""
    if type(scheduler).__name__ == "FlowMatchEulerDiscreteScheduler" and not scheduler.config.get(
        "stochastic_sampling", False
    ):
        return "flow"
    if "eta" in step_parameters(scheduler):
        return "eta"
    return None


def default_eta(mode: str | None) -> float | None:
    return {"flow": FLOW_ETA, "eta": DDIM_ETA}.get(mode or "")


def sde_counterpart(scheduler: Any, **overrides: Any) -> Any:
    """A DPM-Solver with a deterministic algorithm_type rebuilt as its SDE variant (same schedule,
    `overrides` such as solver_order=1 applied); any other scheduler as it is."""
    algorithm = scheduler.config.get("algorithm_type", None)
    if type(scheduler).__name__ == "DPMSolverMultistepScheduler" and algorithm in ("dpmsolver++", "dpmsolver"):
        return type(scheduler).from_config(scheduler.config, algorithm_type="sde-" + algorithm, **overrides)
    return scheduler


def flow_step(
    scheduler: Any, output: Any, x: torch.Tensor, v: torch.Tensor, k: int, eta: float, generator: Any = None
) -> Any:
    """The deterministic flow-matching Euler step's `output` with a stochastic prev_sample that keeps
    the marginals: from x [B, ...] at sigma = sigmas[k] with velocity v,

        x0 = x - sigma·v,  eps = (x - (1 - sigma)·x0)/sigma = x + (1 - sigma)·v,
        x' = (1 - sigma')·x0 + sigma'·(sqrt(1 - eta²)·eps + eta·z),  z ~ N(0, I),

    sigma' = sigmas[k + 1]. eta = 0 is the Euler (ODE) step itself; eta = 1 re-noises fully (as
    `stochastic_sampling=True` does). z is drawn per row from `generator` (a list: one per row).
    """
    sigma = float(scheduler.sigmas[k])
    sigma_next = float(scheduler.sigmas[k + 1])
    xf, vf = x.to(torch.float32), v.to(torch.float32)
    x0 = xf - sigma * vf
    eps = xf + (1.0 - sigma) * vf
    z = rng.randn(x.shape, generator, dtype=torch.float32, device=x.device)
    prev = (1.0 - sigma_next) * x0 + sigma_next * (math.sqrt(max(0.0, 1.0 - eta * eta)) * eps + eta * z)
    return dataclasses.replace(output, prev_sample=prev.to(output.prev_sample.dtype))
