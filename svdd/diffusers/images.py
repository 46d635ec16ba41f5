"""Turning clean diffusion states into images in [0, 1]."""

from __future__ import annotations

from typing import Any

import torch


def decode_images(x0: torch.Tensor, vae: Any = None, batch_size: int = 16) -> list[torch.Tensor]:
    """Clean states x0 [B, C, H, W] -> B CPU float32 images [C', H', W'] in [0, 1].

    Pixel-space models (no `vae`): x0 is in [-1, 1] (the diffusers convention) and is mapped by
    x/2 + 0.5 and clamped. Latent models: `vae.decode(x0 / scaling_factor + shift_factor)` in
    chunks of `batch_size` rows (bounding the decoder's memory), then the same mapping.
    """
    if x0.dim() == 5:
        raise ValueError(
            f"got video latents {tuple(x0.shape)} [B, C, F, H, W]: video pipelines (Wan, CogVideoX) are not "
            "covered yet (their VAEs normalise latents per channel and decode frames); score children "
            "without decoding them: value=svdd.LearnedValue(fn)"
        )
    if x0.dim() != 4:
        raise ValueError(f"expected clean states of shape [B, C, H, W]; got {tuple(x0.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size!r}")
    with torch.no_grad():
        if vae is None:
            pixels = x0
        else:
            scale = vae.config.scaling_factor
            shift = getattr(vae.config, "shift_factor", None) or 0.0
            chunks = []
            for start in range(0, x0.shape[0], batch_size):
                z = x0[start : start + batch_size].to(vae.dtype) / scale + shift
                chunks.append(vae.decode(z, return_dict=False)[0])
            pixels = torch.cat(chunks) if chunks else x0
        images = (pixels.float() / 2 + 0.5).clamp(0, 1).cpu()
    return list(images.unbind(0))
