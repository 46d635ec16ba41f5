"""The molecules domain as a `svdd generate` plug-in (registered in pyproject.toml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from svdd.runs.plugins import Domain


def _load_process(*, steps: int | None = None, device: Any = "cpu") -> Any:
    from .pretrained import load_pretrained

    return load_pretrained("moses-selfies", **({"num_steps": steps} if steps else {}), device=device)


def _rewards() -> dict:
    from .rewards import REWARD_NAMES, load_reward

    return {name: (lambda arg, name=name: load_reward(f"{name}={arg}" if arg else name)) for name in REWARD_NAMES}


def _values() -> dict:
    from .pretrained import load_value

    shipped = {"docking": "docking", "docking=PARP1": "docking", "qed": "qed", "sa": "sa"}  # reward spec -> value
    return {
        spec: (lambda device="cpu", name=name: load_value(f"moses-selfies-{name}", device=device))
        for spec, name in shipped.items()
    }


def _value_net(process: Any) -> Any:
    from svdd.processes.nets import ConvValue

    return ConvValue(vocab_size=process.vocab_size, length=process.length, channels=64, num_blocks=4)


def _write_sdf(out_dir: Path, samples: list, rewards: np.ndarray, columns: dict) -> list[Path]:
    from .io import write_sdf

    return [write_sdf(out_dir / "samples.sdf", samples, rewards.tolist())]


DOMAIN = Domain(
    name="molecules",
    summary="drug-like molecules as SELFIES (masked diffusion on MOSES); rewards qed, sa, logp, docking",
    load_process=_load_process,
    rewards=_rewards,
    values=_values,
    value_net=_value_net,
    write=_write_sdf,
    requires="pip install 'svdd[molecules]'",
    needs=("rdkit", "selfies", "vina", "meeko", "dockstring"),
)
