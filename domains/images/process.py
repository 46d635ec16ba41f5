"""The shipped DDPM as a `svdd.DenoisingProcess` (through the `svdd.diffusers` adapter)."""
from __future__ import annotations

from typing import Any

from .pretrained import load_pretrained


def make_process(pipe: Any = None, num_inference_steps: int = 50):
    """`svdd.diffusers.DiffusersProcess` over `pipe` (default: `load_pretrained()`).

    States are [n, 1, 32, 32] in the DDPM's space; timesteps are the scheduler's integer
    timesteps (e.g. 980, 960, ..., 0 for 50 steps); `decode` gives CPU float [1, 32, 32] in [0, 1].
    """
    from svdd.diffusers import DiffusersProcess

    return DiffusersProcess.from_pipeline(pipe if pipe is not None else load_pretrained(),
                                          num_inference_steps=num_inference_steps)
