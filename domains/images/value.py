"""A time-conditioned CNN value network for SVDD-MC on the images domain.

`ValueNet(x_t, t) -> values [n]`: x_t float [n, C, H, W], the model's noisy state (the DDPM's
[n, 1, 32, 32], or the DiT flow model's VAE latents [n, 4, 8, 8]; roughly unit scale), t float [n]
(the process's timestep, 0..1000, as `svdd.LearnedValue` passes it). Trained by
`python -m svdd.domains.images.train_value` on rollouts of a pretrained model; outputs are in the
reward's units (an affine de-normalization with the training targets' mean/std is built in).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from svdd.processes.weights import load_net, read_weights

from ..weights import shipped

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
# shipped value networks: the DDPM's by reward name, the DiT flow model's prefixed with "dit-flow-"
VALUES = {
    "jpeg": "value_jpeg",
    "shirt": "value_shirt",
    "dit-flow-jpeg": "value_dit_flow_jpeg",
    "dit-flow-shirt": "value_dit_flow_shirt",
}


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding: t float [n] -> [n, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.cos(), args.sin()], dim=-1)


class _Block(nn.Module):
    """conv -> GroupNorm -> + time shift -> SiLU, then optional 2x downsampling."""

    def __init__(self, c_in: int, c_out: int, t_dim: int, down: bool):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm = nn.GroupNorm(8, c_out)
        self.t_proj = nn.Linear(t_dim, c_out)
        self.pool = nn.AvgPool2d(2) if down else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.conv(x)) + self.t_proj(temb)[:, :, None, None]
        return self.pool(nn.functional.silu(h))


class ValueNet(nn.Module):
    """Four conv blocks (the first `downsamples` halve the size: 32 -> 16 -> 8 -> 4 px for the DDPM's
    images, 8 -> 4 -> 4 -> 4 for latents with downsamples=1), global average pool, MLP head; ~0.1 M params."""

    def __init__(
        self,
        width: int = 32,
        t_dim: int = 64,
        y_mean: float = 0.0,
        y_std: float = 1.0,
        in_channels: int = 1,
        downsamples: int = 3,
    ):
        super().__init__()
        self.config = {"width": width, "t_dim": t_dim, "in_channels": in_channels, "downsamples": downsamples}
        self.t_dim = t_dim
        self.t_mlp = nn.Sequential(nn.Linear(t_dim, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.blocks = nn.ModuleList(
            [
                _Block(in_channels, width, t_dim, down=downsamples > 0),
                _Block(width, 2 * width, t_dim, down=downsamples > 1),
                _Block(2 * width, 2 * width, t_dim, down=downsamples > 2),
                _Block(2 * width, 2 * width, t_dim, down=False),
            ]
        )
        self.head = nn.Sequential(nn.Linear(2 * width + t_dim, 64), nn.SiLU(), nn.Linear(64, 1))
        self.register_buffer("y_mean", torch.tensor(float(y_mean)))
        self.register_buffer("y_std", torch.tensor(float(y_std)))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x float [n, C, H, W], t float [n] (or a scalar) -> values float [n] in reward units."""
        t = torch.as_tensor(t, dtype=torch.float32, device=x.device).reshape(-1).expand(x.shape[0])
        temb = self.t_mlp(timestep_embedding(t, self.t_dim))
        h = x
        for block in self.blocks:
            h = block(h, temb)
        h = torch.cat([h.mean(dim=(2, 3)), temb], dim=-1)
        return self.y_mean + self.y_std * self.head(h)[:, 0]


def load_value_net(reward: str = "jpeg", weights_dir: Path | str = WEIGHTS_DIR) -> ValueNet:
    """The shipped MC value network for `reward` ("jpeg": `JPEGCompressibility()`; "shirt":
    `ClassifierReward("shirt")`; "dit-flow-jpeg", "dit-flow-shirt": the same rewards on the DiT flow
    model's latents) as a plain `ValueNet` in eval mode (CPU)."""
    if reward not in VALUES:
        raise ValueError(f"no shipped value network for {reward!r}; available: {sorted(VALUES)}")
    if Path(weights_dir) == WEIGHTS_DIR:
        path = shipped(WEIGHTS_DIR, f"{VALUES[reward]}.safetensors", f"{reward} value network")
    else:
        path = Path(weights_dir) / f"{VALUES[reward]}.safetensors"
        if not path.exists():
            raise FileNotFoundError(f"{path} not found")
    net, _ = load_net(path, nets={"ValueNet": ValueNet})
    return net


def load_value(reward: str = "jpeg", *, device: str | torch.device = "cpu"):
    """The shipped MC value network for `reward` as `svdd.LearnedValue` (SVDD-MC)."""
    import svdd

    return svdd.LearnedValue(load_value_net(reward).to(device), name=f"value({reward})")


def value_metadata(reward: str = "jpeg", weights_dir: Path | str = WEIGHTS_DIR) -> dict:
    """The training record (rollouts, validation correlation per timestep, ...) of a shipped value net:
    the metadata of its .json record."""
    return read_weights(Path(weights_dir) / f"{VALUES[reward]}.safetensors")[1]["metadata"]
