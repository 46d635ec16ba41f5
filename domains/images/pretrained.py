"""The shipped pretrained image models (Fashion-MNIST, 1x32x32), loaded offline from the installed package.

| name                      | pipeline     | what                                                              |
|---------------------------|--------------|-------------------------------------------------------------------|
| "fashion-mnist-ddpm"      | DDPMPipeline | unconditional UNet DDPM (1000 steps, epsilon), `weights/ddpm/`      |
| "fashion-mnist-dit-flow"  | DiTPipeline  | class-conditional DiT, flow matching on a tiny VAE's 4x8x8 latents, |
|                           |              | DPM-Solver flow scheduler, `weights/dit_flow/` (train_dit_flow.py)  |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..weights import shipped

DDPM_DIR = Path(__file__).resolve().parent / "weights" / "ddpm"
DIT_FLOW_DIR = Path(__file__).resolve().parent / "weights" / "dit_flow"
MODELS = {"fashion-mnist-ddpm": DDPM_DIR, "fashion-mnist-dit-flow": DIT_FLOW_DIR}
PIPELINES = ("DDPMPipeline", "DiTPipeline")  # the pipeline classes a shipped or local folder may name
DEFAULT_STEPS = 50
NULL_CLASS = 1000  # DiTPipeline's unconditional class id (the DiT was trained with class dropout to it)


def load_pipeline(path: Path | str = DDPM_DIR, device: str | torch.device = "cpu"):
    """The diffusers pipeline saved in `path` (a `DDPMPipeline` or a `DiTPipeline`), local files only.

    Default: the shipped DDPM (UNet2DModel + DDPMScheduler(1000)), whose images are 1x32x32
    Fashion-MNIST-like clothing; `pipe.unet` works on [-1, 1] states (trained by
    `python -m svdd.domains.images.train_ddpm`, see `weights/ddpm/training.json`).
    `DIT_FLOW_DIR`: the class-conditional DiT flow model (`train_dit_flow.py`).
    """
    import json

    import diffusers
    from diffusers.utils import logging

    path = Path(path)
    if path in MODELS.values():
        shipped(path, "model_index.json", f"Fashion-MNIST model {path.name}")
    elif not (path / "model_index.json").exists():
        raise FileNotFoundError(f"no diffusers pipeline at {path} (model_index.json missing)")
    name = json.loads((path / "model_index.json").read_text()).get("_class_name")
    if name not in PIPELINES:
        raise ValueError(f"{path} holds a {name}; the images domain loads {', '.join(PIPELINES)}")
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()  # silence the "accelerate is missing" notice
    logging.disable_progress_bar()
    try:
        # safetensors only: a pickled diffusion_pytorch_model.bin in `path` is refused, never unpickled
        pipe = getattr(diffusers, name).from_pretrained(str(path), local_files_only=True, use_safetensors=True)
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_pretrained(
    name: str = "fashion-mnist-ddpm",
    num_steps: int = DEFAULT_STEPS,
    device: str | torch.device = "cpu",
    pipeline: Any = None,
    class_label: int = NULL_CLASS,
):
    """A shipped model as a `svdd.diffusers.DiffusersProcess` with `num_steps` steps.

    "fashion-mnist-ddpm": states [n, 1, 32, 32] in the DDPM's space, timesteps the scheduler's
    integer timesteps (980, 960, ..., 0 for 50 steps). "fashion-mnist-dit-flow": states are the
    VAE's latents [n, 4, 8, 8], timesteps the flow sigmas x 1000, the DPM-Solver schedule stepped
    stochastically (`SVDDScheduler`'s eta); `class_label` 0-9 conditions on a Fashion-MNIST class,
    the default `NULL_CLASS` samples unconditionally (no classifier-free guidance). `decode` gives
    CPU float [1, 32, 32] in [0, 1]. `process.pipeline` is the pipeline (pass `pipeline=` to reuse
    one already loaded).
    """
    from svdd.diffusers import DiffusersProcess

    if name not in MODELS:
        raise ValueError(f"unknown pretrained model {name!r}; choose one of {', '.join(MODELS)}")
    pipe = pipeline if pipeline is not None else load_pipeline(MODELS[name], device=device)
    if type(pipe).__name__ == "DiTPipeline":
        if not (0 <= int(class_label) < 10 or int(class_label) == NULL_CLASS):
            raise ValueError(
                f"class_label must be a Fashion-MNIST class 0-9 or NULL_CLASS ({NULL_CLASS}); got {class_label!r}"
            )
        return DiffusersProcess.from_pipeline_call(
            pipe, num_steps, class_labels=[int(class_label)], guidance_scale=1.0, output_type="np"
        )
    return DiffusersProcess.from_pipeline(pipe, num_inference_steps=num_steps)
