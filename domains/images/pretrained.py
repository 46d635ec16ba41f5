"""The shipped pretrained DDPM (Fashion-MNIST, 1x32x32), loaded offline from the installed package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..weights import shipped

DDPM_DIR = Path(__file__).resolve().parent / "weights" / "ddpm"
MODELS = {"fashion-mnist-ddpm": DDPM_DIR}
DEFAULT_STEPS = 50


def load_pipeline(path: Path | str = DDPM_DIR, device: str | torch.device = "cpu"):
    """A diffusers `DDPMPipeline` (UNet2DModel + DDPMScheduler(1000)) read from local files only.

    Its images are 1x32x32 Fashion-MNIST-like clothing; `pipe.unet` works on [-1, 1] states.
    Trained by `python -m svdd.domains.images.train_ddpm` (see `weights/ddpm/training.json`).
    """
    from diffusers import DDPMPipeline
    from diffusers.utils import logging

    path = Path(path)
    if path == DDPM_DIR:
        shipped(path, "model_index.json", "Fashion-MNIST DDPM")
    elif not (path / "model_index.json").exists():
        raise FileNotFoundError(f"no diffusers pipeline at {path} (model_index.json missing)")
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()  # silence the "accelerate is missing" notice
    logging.disable_progress_bar()
    try:
        # safetensors only: a pickled diffusion_pytorch_model.bin in `path` is refused, never unpickled
        pipe = DDPMPipeline.from_pretrained(str(path), local_files_only=True, use_safetensors=True)
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
):
    """The shipped DDPM as a `svdd.diffusers.DiffusersProcess` with `num_steps` DDPM steps.

    States are [n, 1, 32, 32] in the DDPM's space; timesteps are the scheduler's integer
    timesteps (e.g. 980, 960, ..., 0 for 50 steps); `decode` gives CPU float [1, 32, 32] in [0, 1].
    `process.pipeline` is the `DDPMPipeline` (pass `pipeline=` to reuse one already loaded).
    """
    from svdd.diffusers import DiffusersProcess

    if name not in MODELS:
        raise ValueError(f"unknown pretrained model {name!r}; choose one of {', '.join(MODELS)}")
    pipe = pipeline if pipeline is not None else load_pipeline(MODELS[name], device=device)
    return DiffusersProcess.from_pipeline(pipe, num_inference_steps=num_steps)
