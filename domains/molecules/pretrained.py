"""Loading the shipped molecule models offline.

| name            | what                                                                  | weights/ file             |
|-----------------|-----------------------------------------------------------------------|---------------------------|
| "moses-selfies" | masked diffusion over SELFIES of MOSES molecules (L = 56, pad "[nop]") | moses-selfies.safetensors |

Value network (SVDD-MC): "moses-selfies-docking", Docking("PARP1") (-Vina, exhaustiveness 1) of the
final sample regressed on 128 rollouts of "moses-selfies" (K = 32, states every 4th step); weak:
held-out correlation 0.0-0.35 on 32 rollouts (export_value.py).

The SELFIES vocabulary is stored in the metadata of the weights' .json record, so the pair of
files (.safetensors + .json) is the whole model.
"""

from __future__ import annotations

from pathlib import Path

import torch

import svdd
from svdd.processes.masked import MaskedDiffusion
from svdd.processes.weights import load_net

from ..weights import shipped
from .tokenizer import SelfiesTokenizer

WEIGHTS = Path(__file__).resolve().parent / "weights"
MODELS = {"moses-selfies": "moses-selfies.safetensors"}
VALUES: dict[str, str] = {  # see export_value.py
    "moses-selfies-docking": "moses-selfies-docking-value.safetensors",
    "moses-selfies-qed": "moses-selfies-qed-value.safetensors",
    "moses-selfies-sa": "moses-selfies-sa-value.safetensors",
}
DEFAULT_STEPS = 32


def _selfies_process(net: torch.nn.Module, meta: dict, num_steps: int, device: str | torch.device) -> MaskedDiffusion:
    """A SELFIES denoiser and its record (which holds the tokenizer) as a `MaskedDiffusion`."""
    tokenizer = SelfiesTokenizer.from_dict(meta["tokenizer"])
    return MaskedDiffusion(
        net.to(device),
        vocab_size=tokenizer.size,
        length=tokenizer.length,
        num_steps=num_steps,
        tokenizer=tokenizer,
        metadata=meta,
        device=device,
    )


def load_pretrained(
    name: str = "moses-selfies", num_steps: int = DEFAULT_STEPS, device: str | torch.device = "cpu"
) -> MaskedDiffusion:
    """The pretrained masked diffusion model `name` as a `svdd.masked.MaskedDiffusion`.

    `num_steps`: reverse steps K (32 keeps CPU sampling cheap). `decode` returns canonical SMILES
    strings ("" when a sequence decodes to no atoms; rewards give NaN). `process.tokenizer`
    (a `SelfiesTokenizer`) encodes SMILES to states Long[B, 56]; `process.metadata` records
    how the model was trained.
    """
    if name not in MODELS:
        raise ValueError(f"unknown pretrained model {name!r}; choose one of {', '.join(MODELS)}")
    net, meta = load_net(shipped(WEIGHTS, MODELS[name], f"{name} model"))
    return _selfies_process(net, meta, num_steps, device)


def load_value(
    name: str = "moses-selfies-docking", *, max_batch: int | None = 2048, device: str | torch.device = "cpu"
) -> svdd.LearnedValue:
    """A shipped MC value network as `svdd.LearnedValue`, scoring raw states Long[n, 56] at times t."""
    if name not in VALUES:
        raise ValueError(f"unknown value network {name!r}; choose one of {', '.join(VALUES)}")
    net, _ = load_net(shipped(WEIGHTS, VALUES[name], f"{name} value network"))
    return svdd.LearnedValue(net.to(device), max_batch=max_batch, name=name)


def load_process(
    model: str | Path, num_steps: int = DEFAULT_STEPS, device: str | torch.device = "cpu"
) -> MaskedDiffusion:
    """A shipped model by name (`load_pretrained`) or a denoiser snapshot file of `train_prior.py`
    (`.safetensors` + its `.json`) as a `MaskedDiffusion` with the snapshot's tokenizer."""
    path = Path(model)
    if str(model) in MODELS or not path.exists():
        return load_pretrained(str(model), num_steps=num_steps, device=device)
    from .denoiser import load_denoiser

    net, meta = load_denoiser(path)
    return _selfies_process(net, meta, num_steps, device)
