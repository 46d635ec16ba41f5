"""The ARS1 activity oracle network: a small CNN from one-hot 150-bp DNA to selection enrichment.

`ARS1CNN` maps one-hot DNA float[B, 4, 150] to a scalar [B]: the predicted standardised
selection enrichment z = (log((selected_ct + 1)/(library_ct + 1)) - mean) / std of the ARS1
library (mean/std of its training split). `train_oracle.py` fits it; `rewards.ARS1Activity`
loads it from `weights/ars1-oracle.safetensors` (+ `.json`: config and training record).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from svdd.processes.weights import load_net, save_net


class ARS1CNN(nn.Module):
    """One-hot DNA float[B, 4, L] -> predicted enrichment float[B] (two conv+pool stages, MLP head)."""

    config: dict[str, Any]

    def __init__(self, length: int = 150, channels: int = 64, hidden: int = 128, dropout: float = 0.2):
        super().__init__()
        self.config = dict(length=length, channels=channels, hidden=hidden, dropout=dropout)
        self.features = nn.Sequential(
            nn.Conv1d(4, channels, 9, padding=4),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(channels, channels, 9, padding=4),
            nn.ReLU(),
            nn.MaxPool1d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * (length // 4), hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )

    def forward(self, onehot: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(onehot))[:, 0]


def save_oracle(net: ARS1CNN, path: str | Path, **metadata: Any) -> Path:
    """`path` X -> X.safetensors + X.json (`svdd.processes.nets.save_net`)."""
    return save_net(net, path, nets={"ARS1CNN": ARS1CNN}, **metadata)


def load_oracle(path: str | Path) -> tuple[ARS1CNN, dict[str, Any]]:
    """(oracle in eval mode, training record) from `save_oracle`'s files (never unpickled)."""
    net, meta = load_net(path, nets={"ARS1CNN": ARS1CNN})
    return net, meta
