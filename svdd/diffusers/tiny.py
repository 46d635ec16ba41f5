"""Tiny randomly initialised diffusers models, for tests, examples and smoke runs (no downloads).

They produce noise-like images, not data: use them to check that code runs, counts calls and
reproduces, never to judge sample quality.
"""

from __future__ import annotations

import contextlib
import json
import os
import string
import tempfile
from collections.abc import Iterator
from typing import Any

import torch


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seeded weights inside the block; the caller's random stream is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def tiny_unet(channels: int = 1, size: int = 8, seed: int = 0) -> Any:
    """A ~40k-parameter `UNet2DModel` on [channels, size, size] images (size divisible by 2)."""
    from diffusers import UNet2DModel

    with _seeded(seed):
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
    with _seeded(seed):
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


def _tiny_vae(latent_channels: int = 4, shift_factor: float | None = None, scaling_factor: float = 1.0) -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(8,),
        down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",),
        latent_channels=latent_channels,
        norm_num_groups=4,
        sample_size=8,
        shift_factor=shift_factor,
        scaling_factor=scaling_factor,
    )


def tiny_sd3(seed: int = 0) -> Any:
    """A `StableDiffusion3Pipeline` with a tiny random SD3 (MMDiT) transformer on latents [4, 8, 8],
    a tiny VAE (shift 0.1, scale 1.5) and no text encoders: pass `prompt_embeds` [B, S, 16] and
    `pooled_prompt_embeds` [B, 16] (and the negative ones for CFG). Default scheduler: the
    deterministic `FlowMatchEulerDiscreteScheduler`, as the real pipeline ships."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    with _seeded(seed):
        transformer = SD3Transformer2DModel(
            sample_size=8,
            patch_size=1,
            in_channels=4,
            num_layers=1,
            attention_head_dim=8,
            num_attention_heads=2,
            caption_projection_dim=16,
            joint_attention_dim=16,
            pooled_projection_dim=16,
            out_channels=4,
        )
        vae = _tiny_vae(shift_factor=0.1, scaling_factor=1.5)
    pipe = StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=None,
        tokenizer=None,
        text_encoder_2=None,
        tokenizer_2=None,
        text_encoder_3=None,
        tokenizer_3=None,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_flux(seed: int = 0) -> Any:
    """A `FluxPipeline` with a tiny random Flux transformer (packed latents of 16x16 images, 4
    latent channels), a tiny VAE (shift 0.1, scale 1.5) and no text encoders: pass `prompt_embeds`
    [B, 5, 16] and `pooled_prompt_embeds` [B, 16], height = width = 16."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    with _seeded(seed):
        transformer = FluxTransformer2DModel(
            patch_size=1,
            in_channels=16,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=8,
            num_attention_heads=2,
            joint_attention_dim=16,
            pooled_projection_dim=16,
            axes_dims_rope=[2, 2, 4],
            guidance_embeds=False,
        )
        vae = _tiny_vae(shift_factor=0.1, scaling_factor=1.5)
    pipe = FluxPipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=None,
        tokenizer=None,
        text_encoder_2=None,
        tokenizer_2=None,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_dit(seed: int = 0) -> Any:
    """A `DiTPipeline` with a tiny random DiT (class labels, learned sigma: 8 output channels for
    4 latent channels) and a tiny VAE; default scheduler DDIM, as the real pipeline ships."""
    from diffusers import DDIMScheduler, DiTPipeline, DiTTransformer2DModel

    with _seeded(seed):
        transformer = DiTTransformer2DModel(
            sample_size=8,
            num_layers=1,
            patch_size=2,
            attention_head_dim=8,
            num_attention_heads=2,
            in_channels=4,
            out_channels=8,
            num_embeds_ada_norm=1000,
        )
        vae = _tiny_vae()
    pipe = DiTPipeline(transformer=transformer, vae=vae, scheduler=DDIMScheduler())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_pixart(seed: int = 0) -> Any:
    """A `PixArtAlphaPipeline` with a tiny random PixArt transformer (learned sigma) and VAE and no
    text encoder: pass `prompt_embeds` [B, S, 16], `prompt_attention_mask`, the negative ones,
    `negative_prompt=None` and `use_resolution_binning=False`. Default scheduler DPM-Solver."""
    from diffusers import DPMSolverMultistepScheduler, PixArtAlphaPipeline, PixArtTransformer2DModel

    with _seeded(seed):
        transformer = PixArtTransformer2DModel(
            sample_size=8,
            num_layers=1,
            patch_size=2,
            attention_head_dim=8,
            num_attention_heads=2,
            caption_channels=16,
            in_channels=4,
            cross_attention_dim=16,
            out_channels=8,
            attention_bias=True,
            activation_fn="gelu-approximate",
            num_embeds_ada_norm=1000,
            norm_type="ada_norm_single",
            norm_elementwise_affine=False,
            norm_eps=1e-6,
        )
        vae = _tiny_vae()
    pipe = PixArtAlphaPipeline(
        transformer=transformer, vae=vae, text_encoder=None, tokenizer=None, scheduler=DPMSolverMultistepScheduler()
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


class TinyLLaDA(torch.nn.Module):
    """A LLaDA-style masked language model stand-in: `forward(input_ids Long[B, W], attention_mask=None,
    position_ids=None) -> .logits [B, W, V]` (seeded random weights; logits depend on every token;
    the last id, the mask, is never predicted)."""

    def __init__(self, vocab_size: int = 12, width: int = 16, max_length: int = 64, seed: int = 0):
        super().__init__()
        with _seeded(seed):
            self.tokens = torch.nn.Embedding(vocab_size, width)
            self.positions = torch.nn.Embedding(max_length, width)
            self.mix = torch.nn.Linear(width, width)
            self.head = torch.nn.Linear(width, vocab_size)
            for p in self.parameters():
                torch.nn.init.normal_(p, std=0.5)

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.head.weight.dtype

    def forward(self, input_ids: torch.Tensor, attention_mask: Any = None, position_ids: Any = None) -> Any:
        import types

        positions = position_ids if position_ids is not None else torch.arange(input_ids.shape[1])
        h = self.tokens(input_ids) + self.positions(positions)
        h = h + torch.tanh(self.mix(h.mean(1, keepdim=True)))
        logits = self.head(torch.tanh(h))
        logits[..., -1] = -1e9  # the last id is the mask token, which a masked LM never predicts
        return types.SimpleNamespace(logits=logits)


def tiny_word_tokenizer() -> Any:
    """A word-level `PreTrainedTokenizerFast` built in memory (no files): the letters a..i, with
    <pad> 0, <eos> 10 and <mask> 11, matching `TinyLLaDA`'s 12 ids. Needs `transformers`."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<pad>", *"abcdefghi", "<eos>", "<mask>"]
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<pad>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<eos>", mask_token="<mask>", pad_token="<pad>"
    )


def tiny_llada2(seed: int = 0, tokenizer: bool = False) -> Any:
    """An `LLaDA2Pipeline` around `TinyLLaDA` with `BlockRefinementScheduler(block_length=4)`; with
    `tokenizer`, `tiny_word_tokenizer()` (so the pipeline returns texts)."""
    from diffusers import BlockRefinementScheduler, LLaDA2Pipeline

    pipe = LLaDA2Pipeline(
        model=TinyLLaDA(seed=seed).eval(),
        scheduler=BlockRefinementScheduler(block_length=4),
        tokenizer=tiny_word_tokenizer() if tokenizer else None,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_diffusion_gemma(scheduler: Any = None, seed: int = 0, canvas_length: int = 4) -> Any:
    """A `DiffusionGemmaPipeline` around a tiny random `DiffusionGemmaForBlockDiffusion` (vocabulary
    of `tiny_word_tokenizer`'s 12 words, two layers of width 16, two experts, a one-layer vision
    tower: 0.18M parameters) with `canvas_length` 4, the tokenizer as its processor (a plain chat
    template: the messages' contents joined by spaces) and `scheduler` (default
    `BlockRefinementScheduler()`). Needs `transformers` < 5.24 (5.24 renamed the model's
    `past_key_values` argument, which diffusers 0.42's pipeline passes)."""
    from diffusers import BlockRefinementScheduler, DiffusionGemmaPipeline
    from transformers import AutoConfig
    from transformers.models.diffusion_gemma import (
        DiffusionGemmaConfig,
        DiffusionGemmaForBlockDiffusion,
        DiffusionGemmaTextConfig,
    )

    text = DiffusionGemmaTextConfig(
        vocab_size=12, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=8, global_head_dim=8, max_position_embeddings=128, sliding_window=16,
        layer_types=["sliding_attention", "full_attention"], num_experts=2, top_k_experts=1,
        moe_intermediate_size=16, pad_token_id=0, eos_token_id=10, bos_token_id=1,
    )  # fmt: skip
    vision = AutoConfig.for_model(
        "gemma4_vision", hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, head_dim=4,
    )  # fmt: skip
    with _seeded(seed):
        model = DiffusionGemmaForBlockDiffusion(
            DiffusionGemmaConfig(text_config=text, vision_config=vision, canvas_length=canvas_length)
        ).eval()
    processor = tiny_word_tokenizer()
    processor.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    pipe = DiffusionGemmaPipeline(
        model=model, scheduler=scheduler if scheduler is not None else BlockRefinementScheduler(), processor=processor
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_sana(seed: int = 0) -> Any:
    """A `SanaPipeline` with a tiny random Sana transformer, a tiny `AutoencoderDC` (images 32x32)
    and no text encoder: pass `prompt_embeds`
    [B, S, 8], `prompt_attention_mask`, the negative ones, `negative_prompt=None`,
    `use_resolution_binning=False`, height = width = 32. Scheduler: DPM-Solver with flow
    prediction, as the real pipeline ships."""
    from diffusers import AutoencoderDC, DPMSolverMultistepScheduler, SanaPipeline, SanaTransformer2DModel

    with _seeded(seed):
        transformer = SanaTransformer2DModel(
            in_channels=4,
            out_channels=4,
            num_attention_heads=2,
            attention_head_dim=4,
            num_layers=1,
            num_cross_attention_heads=2,
            cross_attention_head_dim=4,
            cross_attention_dim=8,
            caption_channels=8,
            sample_size=8,
            patch_size=1,
        )
        vae = AutoencoderDC(
            in_channels=3,
            latent_channels=4,
            attention_head_dim=2,
            encoder_block_types=("ResBlock", "EfficientViTBlock"),
            decoder_block_types=("ResBlock", "EfficientViTBlock"),
            encoder_block_out_channels=(8, 8),
            decoder_block_out_channels=(8, 8),
            encoder_qkv_multiscales=((), (5,)),
            decoder_qkv_multiscales=((), (5,)),
            encoder_layers_per_block=(1, 1),
            decoder_layers_per_block=[1, 1],
            downsample_block_type="conv",
            upsample_block_type="interpolate",
            decoder_norm_types="rms_norm",
            decoder_act_fns="silu",
            scaling_factor=0.41407,
        )
    scheduler = DPMSolverMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    pipe = SanaPipeline(tokenizer=None, text_encoder=None, vae=vae, transformer=transformer, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe
