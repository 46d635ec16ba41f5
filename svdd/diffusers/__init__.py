"""SVDD on diffusers models (needs the `images` extra: `pip install svdd[images]`).

* `DiffusersProcess(unet, scheduler, ...)`: a UNet + scheduler (+ VAE, + one prompt with CFG) as a
  `svdd.DenoisingProcess`, for `svdd.sample` and every method (exact SVDD-PM: M UNet rows per
  sample and step).
* `SVDDScheduler.from_pipeline(pipe, reward=..., num_candidates=M)`: a drop-in scheduler;
  `pipe.scheduler = ...` then the pipeline's normal call returns guided images.
* `SVDDPipeline(unet, scheduler)(reward=..., batch_size=..., num_candidates=...)`: an explicit
  pipeline over `DiffusersProcess` + `svdd.sample`, returning images and the `svdd.Result`.
"""

from .images import decode_images
from .pipeline import SVDDPipeline, SVDDPipelineOutput
from .process import DiffusersProcess
from .scheduler import SVDDScheduler
from .stepping import check_stochastic

__all__ = [
    "DiffusersProcess",
    "SVDDPipeline",
    "SVDDPipelineOutput",
    "SVDDScheduler",
    "check_stochastic",
    "decode_images",
]
