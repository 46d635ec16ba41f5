"""The 20 amino acids as tokens, in ProteinMPNN's order, with clear errors for bad input.

Token ids 0..19 are the one-letter codes `ACDEFGHIKLMNPQRSTVWY` (ProteinMPNN's alphabet without
its 21st letter `X`, the unknown residue). The mask token of the diffusion process is id 20,
which is also ProteinMPNN's `X` slot; it never decodes.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
MPNN_ALPHABET = AMINO_ACIDS + "X"  # ProteinMPNN's 21 letters; X (id 20) = unknown residue
MASK_ID = 20
UNKNOWN_ID = 20

THREE_TO_ONE = {
    "ALA": "A",
    "CYS": "C",
    "ASP": "D",
    "GLU": "E",
    "PHE": "F",
    "GLY": "G",
    "HIS": "H",
    "ILE": "I",
    "LYS": "K",
    "LEU": "L",
    "MET": "M",
    "ASN": "N",
    "PRO": "P",
    "GLN": "Q",
    "ARG": "R",
    "SER": "S",
    "THR": "T",
    "VAL": "V",
    "TRP": "W",
    "TYR": "Y",
}
ONE_TO_THREE = {one: three for three, one in THREE_TO_ONE.items()}

_LOOKUP = np.full(256, -1, dtype=np.int64)
for _i, _c in enumerate(AMINO_ACIDS):
    _LOOKUP[ord(_c)] = _i
    _LOOKUP[ord(_c.lower())] = _i
_LETTERS = np.frombuffer(AMINO_ACIDS.encode("ascii"), dtype=np.uint8)


def is_protein(seq: object) -> bool:
    """True when `seq` is a non-empty str of the 20 standard one-letter codes (any case)."""
    return (
        isinstance(seq, str)
        and len(seq) > 0
        and seq.isascii()
        and bool((_LOOKUP[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)] >= 0).all())
    )


def encode(seqs: Iterable[str] | str, length: int | None = None) -> torch.Tensor:
    """Token ids Long[B, L] of B protein sequences of equal length (one str is a batch of one).

    `length`: the length every sequence must have (default: the first one's). ValueError names
    the first sequence with a letter outside the 20 amino acids or with another length.
    """
    if isinstance(seqs, str):
        seqs = [seqs]
    seqs = list(seqs)
    if not seqs:
        raise ValueError("encode needs at least one sequence")
    for i, s in enumerate(seqs):
        if not isinstance(s, str):
            raise TypeError(f"protein sequences must be str; sequence {i} is {type(s).__name__}")
    length = len(seqs[0]) if length is None else length
    for i, s in enumerate(seqs):
        if not s:
            raise ValueError(f"protein sequence {i} is empty")
        if not is_protein(s):
            bad = next(c for c in s if c.upper() not in AMINO_ACIDS)
            raise ValueError(
                f"protein sequence {i} ({s[:40]!r}) has the letter {bad!r}; accepted: the 20 "
                f"amino acids {AMINO_ACIDS} (any case)"
            )
        if len(s) != length:
            raise ValueError(f"protein sequence {i} has {len(s)} residues; expected {length}")
    ids = _LOOKUP[np.frombuffer("".join(seqs).encode("ascii"), dtype=np.uint8)]
    return torch.from_numpy(ids.reshape(len(seqs), length).copy())


def decode(tokens: torch.Tensor) -> list[str]:
    """One-letter strings of token ids Long[B, L] in 0..19 (ValueError for the mask or other ids)."""
    if tokens.dim() != 2:
        raise ValueError(f"decode takes token ids of shape [B, L]; got {tuple(tokens.shape)}")
    arr = tokens.detach().cpu().numpy()
    if arr.size and (arr.min() < 0 or arr.max() >= len(AMINO_ACIDS)):
        raise ValueError(
            f"token ids must be in 0..{len(AMINO_ACIDS) - 1} (the mask id {MASK_ID} never decodes); "
            f"got ids in {int(arr.min())}..{int(arr.max())}"
        )
    return [row.tobytes().decode("ascii") for row in _LETTERS[arr]]
