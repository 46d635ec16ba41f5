"""Tiny randomly initialised diffusers models, for tests, examples and smoke runs (no downloads).

They produce noise-like images, not data: use them to check that code runs, counts calls and
reproduces, never to judge sample quality.
"""

from __future__ import annotations

import json
import os
import string
import tempfile
from typing import Any

import torch


def tiny_unet(channels: int = 1, size: int = 8, seed: int = 0) -> Any:
    """A ~40k-parameter `UNet2DModel` on [channels, size, size] images (size divisible by 2)."""
    from diffusers import UNet2DModel

    with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's RNG is left alone
        torch.manual_seed(seed)
        return UNet2DModel(
            sample_size=size,
            in_channels=channels,
            out_channels=channels,
            block_out_channels=(8, 16),
            layers_per_block=1,
            norm_num_groups=4,
            down_block_types=("DownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "UpBlock2D"),
        ).eval()


def tiny_stable_diffusion(scheduler: Any = None, seed: int = 0, directory: str | None = None) -> Any:
    """A `StableDiffusionPipeline` with a tiny random UNet2DConditionModel (latents [4, 8, 8]),
    AutoencoderKL (images [3, 8, 8]) and CLIP text encoder, and a character-level CLIPTokenizer
    whose vocabulary is written to `directory` (a new temporary directory by default).
    Needs `transformers`.
    """
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    directory = directory or tempfile.mkdtemp(prefix="svdd-tiny-clip-")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in string.ascii_lowercase:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    with open(os.path.join(directory, "vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(directory, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n")
    tokenizer = CLIPTokenizer(
        os.path.join(directory, "vocab.json"), os.path.join(directory, "merges.txt"), model_max_length=12
    )
    with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's RNG is left alone
        torch.manual_seed(seed)
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(vocab),
                hidden_size=16,
                intermediate_size=32,
                num_attention_heads=2,
                num_hidden_layers=1,
                max_position_embeddings=12,
                bos_token_id=0,
                eos_token_id=1,
                pad_token_id=1,
            )
        )
        unet = UNet2DConditionModel(
            sample_size=8,
            in_channels=4,
            out_channels=4,
            block_out_channels=(8, 16),
            layers_per_block=1,
            norm_num_groups=4,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=16,
            attention_head_dim=2,
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            block_out_channels=(8,),
            down_block_types=("DownEncoderBlock2D",),
            up_block_types=("UpDecoderBlock2D",),
            latent_channels=4,
            norm_num_groups=4,
            sample_size=8,
        )
    scheduler = scheduler or DDPMScheduler(steps_offset=1, clip_sample=False)
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
