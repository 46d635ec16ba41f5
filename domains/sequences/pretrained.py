"""Loading the shipped models offline: pretrained masked diffusion models and value networks.

| name          | what                                                                | weights/ file           |
|---------------|---------------------------------------------------------------------|-------------------------|
| "dna-ars1"    | masked diffusion over 150-bp ARS1 variants, tokens A C G T          | dna-ars1.safetensors    |
| "rna-hairpin" | masked diffusion over miRBase hairpins 50-100 nt, ACGU + pad, L=100 | rna-hairpin.safetensors |

Each weights file has its .json next to it (architecture and training record); see
`svdd.processes.nets.load_net`.

Value networks (SVDD-MC), as `svdd.LearnedValue`: "dna-ars1-activity" (ARS1Activity of the
final sample, regressed on rollouts of "dna-ars1"), "rna-hairpin-mfe" (RNAFold() = -MFE, on
rollouts of "rna-hairpin").
"""

from __future__ import annotations

from pathlib import Path

import torch

import svdd
from svdd.processes.masked import MaskedDiffusion
from svdd.processes.weights import load_net

from ..weights import shipped
from .alphabet import DNA, RNA, Alphabet

WEIGHTS = Path(__file__).resolve().parent / "weights"
MODELS: dict[str, tuple[str, Alphabet]] = {
    "dna-ars1": ("dna-ars1.safetensors", DNA),
    "rna-hairpin": ("rna-hairpin.safetensors", RNA),
}
VALUES = {
    "dna-ars1-activity": "dna-ars1-activity-value.safetensors",
    "rna-hairpin-mfe": "rna-hairpin-mfe-value.safetensors",
}
DEFAULT_STEPS = 32


def load_pretrained(
    name: str = "dna-ars1", num_steps: int = DEFAULT_STEPS, device: str | torch.device = "cpu"
) -> MaskedDiffusion:
    """The pretrained masked diffusion model `name` ("dna-ars1" | "rna-hairpin") as a process.

    `num_steps`: reverse steps K (the paper uses 128; 32 keeps CPU sampling cheap). Its `decode`
    returns strings: "ACGT" DNA of 150 bp, or "ACGU" RNA with the pads dropped (<= 100 nt).
    `process.tokenizer` (an `Alphabet`) encodes user sequences (clear errors for invalid
    characters); `process.metadata` records how the model was trained.
    """
    if name not in MODELS:
        raise ValueError(f"unknown pretrained model {name!r}; choose one of {', '.join(MODELS)}")
    file, alphabet = MODELS[name]
    net, meta = load_net(shipped(WEIGHTS, file, f"{name} model"))
    return MaskedDiffusion(
        net.to(device),
        vocab_size=net.config["vocab_size"],
        length=net.config["length"],
        num_steps=num_steps,
        tokenizer=alphabet,
        metadata=meta,
        device=device,
    )


def load_value(
    name: str = "dna-ars1-activity", *, max_batch: int | None = 2048, device: str | torch.device = "cpu"
) -> svdd.LearnedValue:
    """A shipped MC value network as `svdd.LearnedValue`, scoring raw states Long[n, L] at times t."""
    if name not in VALUES:
        raise ValueError(f"unknown value network {name!r}; choose one of {', '.join(VALUES)}")
    net, _ = load_net(shipped(WEIGHTS, VALUES[name], f"{name} value network"))
    return svdd.LearnedValue(net.to(device), max_batch=max_batch, name=name)
