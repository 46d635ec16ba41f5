"""SVDD on diffusers models (needs the `images` extra: `pip install svdd[images]`).

* `DiffusersProcess(unet, scheduler, ...)`: a UNet + scheduler (+ VAE, + one prompt with CFG) as a
  `svdd.DenoisingProcess`, for `svdd.sample` and every method (exact SVDD-PM: M UNet rows per
  sample and step).
* `SVDDScheduler.from_pipeline(pipe, reward=..., num_candidates=M)`: a drop-in scheduler;
  `pipe.scheduler = ...` then the pipeline's normal call returns guided images.
* `SVDDPipeline(unet, scheduler)(reward=..., batch_size=..., num_candidates=...)`: an explicit
  pipeline over `DiffusersProcess` + `svdd.sample`, returning images and the `svdd.Result`.

Modules: `scheduler` (the drop-in), `pipeline_calls` (the counted calls a scheduler step runs
through), `replay` (the pipeline's recorded denoiser call, replayed on candidates), `stepping`
(one scheduler step, stochastic bases), `process` (`DiffusersProcess`), `pipeline`, `images`,
`tiny` (tiny random models for tests and examples).

Imports: `svdd.api`, `svdd.sampling`, `svdd.processes` and the shared base; never `svdd.runs`.
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
