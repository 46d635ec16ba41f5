"""The images domain as a `svdd generate` plug-in (registered in pyproject.toml).

Samples are written as PNG files under `samples/` by the run itself (`svdd.runs.encode_sample`).
"""

from __future__ import annotations

from typing import Any

from svdd.runs.plugins import Domain

OPTIONS = {
    "model": "fashion-mnist-ddpm (default) or fashion-mnist-dit-flow (class-conditional DiT, flow matching)",
    "class_label": "the DiT's class, a Fashion-MNIST name or 0-9 (default: unconditional)",
}


def _load_process(*, steps: int | None = None, device: Any = "cpu", **options: str) -> Any:
    from .pretrained import DEFAULT_STEPS, MODELS, NULL_CLASS, load_pretrained
    from .rewards import class_index

    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown images options {unknown}; the domain takes {', '.join(OPTIONS)}")
    model = options.get("model") or "fashion-mnist-ddpm"
    if model not in MODELS:
        raise ValueError(f"unknown images model {model!r}; choose one of {', '.join(MODELS)}")
    label = options.get("class_label")
    if label is not None and model != "fashion-mnist-dit-flow":
        raise ValueError("class_label conditions the DiT flow model only (model=fashion-mnist-dit-flow)")
    class_label = NULL_CLASS if label is None else class_index(int(label) if label.isdigit() else label)
    return load_pretrained(model, num_steps=steps or DEFAULT_STEPS, device=device, class_label=class_label)


def _rewards() -> dict:
    from .rewards import REWARD_NAMES, load_reward

    return {name: (lambda arg, name=name: load_reward(f"{name}={arg}" if arg else name)) for name in REWARD_NAMES}


def _values(model: str | None = None, class_label: str | None = None) -> dict:
    from .value import load_value

    if class_label is not None:
        return {}  # the shipped DiT values were trained on unconditional rollouts
    prefix = "dit-flow-" if model == "fashion-mnist-dit-flow" else ""
    return {
        "jpeg": lambda device="cpu": load_value(f"{prefix}jpeg", device=device),
        "classifier=shirt": lambda device="cpu": load_value(f"{prefix}shirt", device=device),
    }


def _value_net(process: Any) -> Any:
    from .value import ValueNet

    channels, size = process.sample_shape[0], process.sample_shape[-1]
    return ValueNet(in_channels=channels, downsamples=3 if size >= 32 else 1)


DOMAIN = Domain(
    name="images",
    summary="1x32x32 Fashion-MNIST DDPM or DiT flow model (diffusers); rewards jpeg, classifier=<class>",
    load_process=_load_process,
    rewards=_rewards,
    values=_values,
    value_net=_value_net,
    options=OPTIONS,
    requires="pip install 'svdd[images]'",
    needs=("diffusers", "PIL", "safetensors"),
)
