"""`SVDDPipeline`: an explicit diffusers pipeline for reward-guided sampling of an unconditional
UNet (DDPM style). It builds a `DiffusersProcess` and calls `svdd.sample`, so it shares every
method, counter and guarantee of the core library (SVDD-PM costs M UNet rows per sample and step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

from ..api import sample
from ..result import Result
from ..rng import GeneratorLike
from .process import DiffusersProcess


@dataclass
class SVDDPipelineOutput(BaseOutput):
    """images: PIL images, or a float numpy array [B, H, W, C] in [0, 1] (output_type="np"), or a
    float tensor [B, C, H, W] (output_type="pt"); result: the `svdd.Result` (rewards, stats, trace)."""

    images: Any
    result: Result


class SVDDPipeline(DiffusionPipeline):
    """Reward-guided sampling from an unconditional UNet and a stochastic scheduler.

    pipe = SVDDPipeline(unet=ddpm.unet, scheduler=ddpm.scheduler)
    out = pipe(reward=my_reward, batch_size=16, num_candidates=8, generator=torch.Generator().manual_seed(0))
    out.images, out.result.rewards, out.result.stats["model_calls"]
    """

    def __init__(self, unet: Any, scheduler: Any):
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)

    @torch.no_grad()
    def __call__(
        self,
        reward: Any,
        batch_size: int = 1,
        num_candidates: int = 8,
        num_inference_steps: int = 50,
        method: str = "svdd",
        value: Any = None,
        alpha: float = 0.0,
        generator: GeneratorLike = None,
        eta: float | None = None,
        max_batch: int | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        progress: bool = True,
        **options: Any,
    ) -> SVDDPipelineOutput | tuple:
        """Sample `batch_size` images with `svdd.sample(DiffusersProcess(unet, scheduler), reward, ...)`.

        `method`, `value`, `alpha`, `max_batch` and `**options` are those of `svdd.sample`;
        `eta` is passed to a DDIM scheduler's step. The progress bar follows
        `set_progress_bar_config` (its tqdm options; `disable=True` hides it, as does `progress=False`).
        Returns `SVDDPipelineOutput(images, result)` or `(images, result)` when return_dict is False.
        """
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"output_type must be 'pil', 'np' or 'pt'; got {output_type!r}")
        process = DiffusersProcess(self.unet, self.scheduler, num_inference_steps, eta=eta)
        result = sample(
            process,
            reward,
            method=method,
            value=value,
            num_samples=batch_size,
            num_candidates=num_candidates,
            alpha=alpha,
            generator=generator,
            max_batch=max_batch,
            progress=self._progress_options(progress),
            **options,
        )
        images: Any = torch.stack(result.samples)
        if output_type != "pt":
            images = images.permute(0, 2, 3, 1).numpy().astype(np.float32)
            if output_type == "pil":
                images = self.numpy_to_pil(images)
        if not return_dict:
            return images, result
        return SVDDPipelineOutput(images=images, result=result)

    def _progress_options(self, progress: bool) -> dict[str, Any]:
        """tqdm options for `svdd.sample`: the pipeline's `set_progress_bar_config`, off when `progress` is False."""
        options = dict(getattr(self, "_progress_bar_config", None) or {})
        if not progress:
            options["disable"] = True
        return options
