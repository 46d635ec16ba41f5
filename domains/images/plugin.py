"""The images domain as a `svdd generate` plug-in (registered in pyproject.toml).

Samples are written as PNG files under `samples/` by the run itself (`svdd.runs.encode_sample`).
"""

from __future__ import annotations

from typing import Any

from svdd.runs.plugins import Domain


def _load_process(*, steps: int | None = None, device: Any = "cpu") -> Any:
    from .pretrained import DEFAULT_STEPS, load_pretrained

    return load_pretrained(num_steps=steps or DEFAULT_STEPS, device=device)


def _rewards() -> dict:
    from .rewards import REWARD_NAMES, load_reward

    return {name: (lambda arg, name=name: load_reward(f"{name}={arg}" if arg else name)) for name in REWARD_NAMES}


def _values() -> dict:
    from .value import load_value

    return {
        "jpeg": lambda device="cpu": load_value("jpeg", device=device),
        "classifier=shirt": lambda device="cpu": load_value("shirt", device=device),
    }


def _value_net(process: Any) -> Any:
    from .value import ValueNet

    return ValueNet()


DOMAIN = Domain(
    name="images",
    summary="1x32x32 Fashion-MNIST DDPM (diffusers); rewards jpeg, classifier=<class> (default sneaker)",
    load_process=_load_process,
    rewards=_rewards,
    values=_values,
    value_net=_value_net,
    requires="pip install 'svdd[images]'",
    needs=("diffusers", "PIL", "safetensors"),
)
