"""Small time-conditioned networks over token sequences, for masked discrete diffusion.

- `ConvDenoiser(vocab_size, length)`: `(x_t Long[B, L], t float[B]) -> logits [B, L, V]`, the
  denoiser contract of `svdd.masked.MaskedDiffusion` (token ids 0..V-1, mask id V).
- `TransformerDenoiser(vocab_size, length)`: the same contract, with self-attention (long-range pairs).
- `ConvValue(vocab_size, length)`: `(x_t Long[B, L], t float[B]) -> values [B]`, an MC value
  network for `svdd.LearnedValue` trained with `svdd.sampling.value_training.fit_value`.

Both are a stack of residual dilated 1-D convolutions over token + learned position embeddings,
with a sinusoidal time embedding added in every block. They keep their constructor arguments in
`config`, so `svdd.processes.weights.save_net` / `load_net` round-trip them as X.safetensors +
X.json; `NETS` names the classes a weight file may ask for.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from einops import rearrange
from torch import nn


def time_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features float[B, dim] of times t float[B] in [0, 1]."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32) * (-math.log(1000.0) / max(half - 1, 1)))
    angles = 1000.0 * t.float().reshape(-1, 1) * freqs.reshape(1, -1)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class ResidualBlock(nn.Module):
    """x [B, C, L] -> x + conv1x1(gelu(conv_k,d(norm(x)) + time)), time [B, C]."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.norm = nn.GroupNorm(1, channels)
        self.conv = nn.Conv1d(
            channels, channels, kernel_size, dilation=dilation, padding=dilation * (kernel_size - 1) // 2
        )
        self.mix = nn.Conv1d(channels, channels, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        h = self.conv(self.norm(x)) + time.unsqueeze(-1)
        return x + self.drop(self.mix(nn.functional.gelu(h)))


class _ConvTrunk(nn.Module):
    """Token + position embeddings, then residual dilated conv blocks: features [B, C, L]."""

    def __init__(
        self,
        vocab_size: int,
        length: int,
        channels: int,
        num_blocks: int,
        kernel_size: int,
        dilations: tuple[int, ...],
        dropout: float,
    ):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd (so the output keeps length L); got {kernel_size}")
        self.vocab_size, self.length, self.channels = vocab_size, length, channels
        self.tokens = nn.Embedding(vocab_size + 1, channels)  # + the mask token, id vocab_size
        self.position = nn.Parameter(torch.zeros(length, channels))
        self.time = nn.Sequential(nn.Linear(channels, channels), nn.SiLU(), nn.Linear(channels, channels))
        self.blocks = nn.ModuleList(
            ResidualBlock(channels, kernel_size, dilations[i % len(dilations)], dropout) for i in range(num_blocks)
        )
        self.norm = nn.GroupNorm(1, channels)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.length:
            raise ValueError(f"expected tokens of shape [B, {self.length}]; got {tuple(x.shape)}")
        if x.dtype != torch.long:
            raise TypeError(f"expected Long token ids; got {x.dtype}")
        h = rearrange(self.tokens(x) + self.position, "b l c -> b c l")
        time = self.time(time_features(t.reshape(-1).to(h.device), self.channels))
        for block in self.blocks:
            h = block(h, time)
        return self.norm(h)


class ConvDenoiser(nn.Module):
    """Denoiser `(x_t Long[B, L], t float[B]) -> logits float[B, L, V]` over the V real tokens.

    Args:
        vocab_size: V (the mask id V is an input token, never an output).
        length: L, the fixed sequence length (positions have learned embeddings).
        channels, num_blocks, kernel_size, dilations: the conv trunk (receptive field
            1 + sum over blocks of (kernel_size - 1)·dilation).
    """

    config: dict[str, Any]

    def __init__(
        self,
        vocab_size: int,
        length: int,
        channels: int = 128,
        num_blocks: int = 6,
        kernel_size: int = 5,
        dilations: tuple[int, ...] = (1, 2, 4, 8),
        dropout: float = 0.0,
    ):
        super().__init__()
        self.config = dict(
            vocab_size=vocab_size,
            length=length,
            channels=channels,
            num_blocks=num_blocks,
            kernel_size=kernel_size,
            dilations=tuple(dilations),
            dropout=dropout,
        )
        self.trunk = _ConvTrunk(vocab_size, length, channels, num_blocks, kernel_size, tuple(dilations), dropout)
        self.head = nn.Conv1d(channels, vocab_size, 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return rearrange(self.head(self.trunk(x, t)), "b v l -> b l v")


class ConvValue(nn.Module):
    """Value network `(x_t Long[B, L], t float[B]) -> values float[B]` (mean+max pooled conv trunk)."""

    config: dict[str, Any]

    def __init__(
        self,
        vocab_size: int,
        length: int,
        channels: int = 64,
        num_blocks: int = 4,
        kernel_size: int = 5,
        dilations: tuple[int, ...] = (1, 2, 4, 8),
        dropout: float = 0.0,
    ):
        super().__init__()
        self.config = dict(
            vocab_size=vocab_size,
            length=length,
            channels=channels,
            num_blocks=num_blocks,
            kernel_size=kernel_size,
            dilations=tuple(dilations),
            dropout=dropout,
        )
        self.trunk = _ConvTrunk(vocab_size, length, channels, num_blocks, kernel_size, tuple(dilations), dropout)
        self.head = nn.Sequential(nn.Linear(2 * channels, channels), nn.SiLU(), nn.Linear(channels, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x, t)
        pooled = torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=-1)
        return self.head(pooled)[:, 0]


class TransformerDenoiser(nn.Module):
    """Denoiser `(x_t Long[B, L], t float[B]) -> logits float[B, L, V]`: a small pre-norm transformer.

    Token + learned position embeddings; the time embedding is added at every position before
    each layer. Attention sees the whole sequence, so it can model long-range pairs (RNA stems).
    """

    config: dict[str, Any]

    def __init__(
        self,
        vocab_size: int,
        length: int,
        channels: int = 128,
        num_layers: int = 4,
        num_heads: int = 4,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.config = dict(
            vocab_size=vocab_size,
            length=length,
            channels=channels,
            num_layers=num_layers,
            num_heads=num_heads,
            dropout=dropout,
        )
        self.length = length
        self.tokens = nn.Embedding(vocab_size + 1, channels)
        self.position = nn.Parameter(torch.randn(length, channels) * 0.02)
        self.time = nn.Sequential(nn.Linear(channels, channels), nn.SiLU(), nn.Linear(channels, channels))
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                channels, num_heads, 4 * channels, dropout, activation="gelu", batch_first=True, norm_first=True
            )
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(channels)
        self.head = nn.Linear(channels, vocab_size)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.length:
            raise ValueError(f"expected tokens of shape [B, {self.length}]; got {tuple(x.shape)}")
        h = self.tokens(x) + self.position  # [B, L, C]
        time = self.time(time_features(t.reshape(-1).to(h.device), h.shape[-1])).unsqueeze(1)  # [B, 1, C]
        for layer in self.layers:
            h = layer(h + time)
        return self.head(self.norm(h))


# The network classes a weight file may name, by class name. A new network registers here with one
# line; it must keep its constructor arguments in `config` (a dict of plain values).
NETS: dict[str, type[nn.Module]] = {
    "ConvDenoiser": ConvDenoiser,
    "ConvValue": ConvValue,
    "TransformerDenoiser": TransformerDenoiser,
}
