"""`MoleculeTransformer`: the denoiser of "moses-selfies" v2, an MDLM-style pre-norm transformer.

Contract of `svdd.masked.MaskedDiffusion`: `(x_t Long[B, L], t float[B]) -> logits float[B, L, V]`
over the V real tokens (the mask id V is an input token only). Differences from
`svdd.processes.nets.TransformerDenoiser`:

- no time conditioning by default (`time_conditioning=False`): for masked diffusion with the
  "subs" parameterisation the fraction of masks already tells the net the time, and MDLM
  (Sahoo et al. 2024) reports no loss from dropping it; `t` is accepted and ignored. With
  `time_conditioning=True` a sinusoidal time embedding drives adaLN (shift, scale, gate) in
  every block as in DiT/MDLM.
- its own blocks (LayerNorm -> attention via `scaled_dot_product_attention` -> residual,
  LayerNorm -> GELU MLP -> residual), learned absolute positions (L is fixed), output head tied
  to the token embedding when `tie_weights` (mask row excluded).

It keeps its constructor arguments in `config` like the nets of `svdd.processes.nets`, and is
bias-free by default (`bias=False`; the output head keeps its bias). `save_denoiser` /
`load_denoiser` are svdd's `save_net` / `load_net` with this class added through their `nets=`
table (`NETS` here), so its weight files are the project's usual X.safetensors + X.json pair;
`load_denoiser` also reads an older single-file X.pt (torch.load(weights_only=True)).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


def _time_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32) * (-math.log(1000.0) / max(half - 1, 1)))
    angles = 1000.0 * t.float().reshape(-1, 1) * freqs.reshape(1, -1)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "relu2": lambda x: F.relu(x).square(),
}


class _Block(nn.Module):
    def __init__(
        self,
        channels: int,
        num_heads: int,
        mlp_ratio: int,
        dropout: float,
        time_conditioning: bool,
        bias: bool,
        activation: str,
    ):
        super().__init__()
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(channels, elementwise_affine=not time_conditioning, bias=bias)
        self.qkv = nn.Linear(channels, 3 * channels, bias=bias)
        self.proj = nn.Linear(channels, channels, bias=bias)
        self.norm2 = nn.LayerNorm(channels, elementwise_affine=not time_conditioning, bias=bias)
        self.fc1 = nn.Linear(channels, mlp_ratio * channels, bias=bias)
        self.fc2 = nn.Linear(mlp_ratio * channels, channels, bias=bias)
        self.act = ACTIVATIONS[activation]
        self.dropout = dropout
        self.ada = None
        if time_conditioning:  # shift, scale, gate for both sub-blocks; zero-init so blocks start as identity-ish
            self.ada = nn.Linear(channels, 6 * channels)
            nn.init.zeros_(self.ada.weight)
            nn.init.zeros_(self.ada.bias)

    def forward(self, h: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        b, length, c = h.shape
        if self.ada is not None and cond is not None:
            s1, c1, g1, s2, c2, g2 = self.ada(cond).unsqueeze(1).chunk(6, dim=-1)
            x = self.norm1(h) * (1 + c1) + s1
        else:
            x, g1 = self.norm1(h), None
        q, k, v = self.qkv(x).view(b, length, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        drop = self.dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, dropout_p=drop).transpose(1, 2).reshape(b, length, c)
        a = F.dropout(self.proj(a), drop, self.training)
        h = h + (a if g1 is None else (1 + g1) * a)
        if self.ada is not None and cond is not None:
            x = self.norm2(h) * (1 + c2) + s2
        else:
            x = self.norm2(h)
        m = F.dropout(self.fc2(self.act(self.fc1(x))), drop, self.training)
        return h + (m if g1 is None else (1 + g2) * m)


class MoleculeTransformer(nn.Module):
    """Denoiser `(x_t Long[B, L], t float[B]) -> logits float[B, L, V]`: a pre-norm transformer.

    Args:
        vocab_size: V (the mask id V is an input token, never an output).
        length: L (learned absolute position embeddings).
        channels, num_layers, num_heads, mlp_ratio, dropout: the trunk.
        time_conditioning: adaLN time conditioning (False: `t` is ignored, MDLM's time-free variant).
        tie_weights: output head = token embedding (rows 0..V-1) plus a bias.
        bias: biases in the attention / MLP linears and LayerNorms (False: bias-free, cheaper on CPU).
        activation: the MLP nonlinearity, "gelu" (erf), "gelu_tanh", "silu" or "relu2".
    """

    config: dict[str, Any]

    def __init__(
        self,
        vocab_size: int,
        length: int,
        channels: int = 192,
        num_layers: int = 4,
        num_heads: int = 6,
        mlp_ratio: int = 4,
        dropout: float = 0.0,
        time_conditioning: bool = False,
        tie_weights: bool = False,
        bias: bool = False,
        activation: str = "gelu",
    ):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"channels ({channels}) must be a multiple of num_heads ({num_heads})")
        self.config = dict(
            vocab_size=vocab_size,
            length=length,
            channels=channels,
            num_layers=num_layers,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            dropout=dropout,
            time_conditioning=time_conditioning,
            tie_weights=tie_weights,
            bias=bias,
            activation=activation,
        )
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        self.vocab_size, self.length = vocab_size, length
        self.tokens = nn.Embedding(vocab_size + 1, channels)
        nn.init.normal_(self.tokens.weight, std=0.02)
        self.position = nn.Parameter(torch.randn(length, channels) * 0.02)
        self.time = (
            nn.Sequential(nn.Linear(channels, channels), nn.SiLU(), nn.Linear(channels, channels))
            if time_conditioning
            else None
        )
        self.layers = nn.ModuleList(
            _Block(channels, num_heads, mlp_ratio, dropout, time_conditioning, bias, activation)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(channels, bias=bias)
        self.tie_weights = tie_weights
        if tie_weights:
            self.head_bias = nn.Parameter(torch.zeros(vocab_size))
        else:
            self.head = nn.Linear(channels, vocab_size)  # the head keeps its bias (token frequencies)
        for name, p in self.named_parameters():  # GPT-2 style init of the residual projections
            if name.endswith(("proj.weight", "fc2.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * num_layers))
            elif name.endswith(("qkv.weight", "fc1.weight")) or name == "head.weight":
                nn.init.normal_(p, std=0.02)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.length:
            raise ValueError(f"expected tokens of shape [B, {self.length}]; got {tuple(x.shape)}")
        if x.dtype != torch.long:
            raise TypeError(f"expected Long token ids; got {x.dtype}")
        h = self.tokens(x) + self.position
        cond = None
        if self.time is not None:
            cond = F.silu(self.time(_time_features(t.reshape(-1).to(h.device), h.shape[-1])))
        for layer in self.layers:
            h = layer(h, cond)
        h = self.norm(h)
        if self.tie_weights:
            return F.linear(h, self.tokens.weight[: self.vocab_size], self.head_bias)
        return self.head(h)


def flops_per_token(net: nn.Module) -> float:
    """Approximate forward multiply-adds x 2 per token: 2 x (non-embedding weights) + attention."""
    cfg: dict[str, Any] = dict(getattr(net, "config", {}))
    n = sum(
        p.numel() for name, p in net.named_parameters() if p.dim() == 2 and name not in ("tokens.weight", "position")
    )
    attn = 4 * cfg["length"] * cfg["channels"] * cfg["num_layers"] if "num_layers" in cfg else 0
    return 2.0 * n + attn


NETS = {"MoleculeTransformer": MoleculeTransformer}  # pass as `nets=` to svdd's save_net / load_net


def save_denoiser(net: MoleculeTransformer, path: str | Path, **metadata: Any) -> Path:
    """Write `net` as X.safetensors + X.json {class, config, metadata} with svdd's `save_net`
    (`path` X or X.safetensors) -> the .safetensors path."""
    from svdd.processes.weights import save_net

    return save_net(net, Path(path), nets=NETS, **metadata)


def load_denoiser(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """(network in eval mode, metadata) from a `save_denoiser` or svdd `save_net` file: X.safetensors
    (+ X.json), or an older single-file X.pt (read with torch.load(weights_only=True))."""
    from svdd.processes.nets import NETS as SVDD_NETS
    from svdd.processes.weights import load_net

    return load_net(Path(path), nets={**SVDD_NETS, **NETS})
