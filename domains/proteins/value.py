"""The shipped MC value networks (SVDD-MC) for the protein domain.

- "1ubi-instability" (weights/1ubi-instability-value.safetensors): InstabilityIndex() (= -II) of the
  final design, regressed on rollouts of `load_pretrained("1ubi", temperature=0.1, num_steps=25)`.

Made by `python -m svdd.domains.proteins.train_value` (data source, seed and held-out
correlation in the metadata of the .json next to the weights). A value network only fits the process it was
trained on: the same backbone, temperature and number of steps.
"""

from __future__ import annotations

from pathlib import Path

import svdd
from svdd.processes.weights import load_net

from ..weights import shipped

WEIGHTS = Path(__file__).resolve().parent / "weights"
VALUES = {"1ubi-instability": "1ubi-instability-value.safetensors"}


def load_value(
    name: str = "1ubi-instability", *, device: str = "cpu", max_batch: int | None = 2048
) -> svdd.LearnedValue:
    """A shipped MC value network as `svdd.LearnedValue`, scoring raw states Long[n, L] at times t."""
    if name not in VALUES:
        raise ValueError(f"unknown value network {name!r}; choose one of {', '.join(VALUES)}")
    net, _ = load_net(shipped(WEIGHTS, VALUES[name], f"{name} value network"))
    return svdd.LearnedValue(net.to(device), max_batch=max_batch, name=name)
