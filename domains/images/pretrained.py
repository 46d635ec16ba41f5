"""The shipped pretrained DDPM (Fashion-MNIST, 1x32x32), loaded offline from the repository."""
from __future__ import annotations

from pathlib import Path

DDPM_DIR = Path(__file__).resolve().parent / "weights" / "ddpm"


def load_pretrained(path: Path | str = DDPM_DIR):
    """A diffusers `DDPMPipeline` (UNet2DModel + DDPMScheduler(1000)) read from local files only.

    Its images are 1x32x32 Fashion-MNIST-like clothing; `pipe.unet` works on [-1, 1] states.
    Trained by `python -m svdd.domains.images.train_ddpm` (see `weights/ddpm/training.json`).
    """
    from diffusers import DDPMPipeline
    from diffusers.utils import logging

    path = Path(path)
    if not (path / "model_index.json").exists():
        raise FileNotFoundError(f"no DDPM pipeline at {path} (model_index.json missing); "
                                "train it with `python -m svdd.domains.images.train_ddpm`")
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()  # silence the "accelerate is missing" notice
    logging.disable_progress_bar()
    try:
        pipe = DDPMPipeline.from_pretrained(str(path), local_files_only=True)
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()
    pipe.set_progress_bar_config(disable=True)
    return pipe
