"""SELFIES tokens <-> ids for the molecule diffusion model, and SMILES decoding.

A `SelfiesTokenizer` has a fixed vocabulary (the SELFIES symbols seen in the training data, sorted,
then the pad symbol "[nop]", which the SELFIES decoder skips) and a fixed length L: a molecule is
its SELFIES symbols followed by pads. The diffusion mask is id `size` (one past the pad) and never
decodes. Every token sequence decodes to *some* SMILES string (SELFIES is robust); a sequence that
decodes to no atoms gives "" which the rewards score NaN.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import selfies as sf
import torch
from rdkit import Chem

from .rewards import mol_from_smiles

PAD = "[nop]"


def canonical(smiles: object) -> str | None:
    """RDKit canonical SMILES of `smiles`, or None when it is not a str that parses to a molecule with
    1 to `rewards.MAX_ATOMS` atoms (RDKit's canonical writer is quadratic in size and overflows the
    stack at about 20,000 atoms in a chain)."""
    mol = mol_from_smiles(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


class SelfiesTokenizer:
    """SELFIES symbols (plus the pad "[nop]", last) as token ids 0..size-1, sequences of `length`.

    Args:
        symbols: the SELFIES symbols, in token order (PAD is appended if missing).
        length: L, the number of positions (molecules with more symbols cannot be encoded).
    """

    def __init__(self, symbols: Sequence[str], length: int):
        symbols = [s for s in symbols if s != PAD] + [PAD]
        if len(set(symbols)) != len(symbols):
            raise ValueError("SELFIES symbols must be distinct")
        self.symbols = symbols
        self.length = int(length)
        self.size = len(symbols)
        self.pad_index = self.size - 1
        self._index = {s: i for i, s in enumerate(symbols)}

    @classmethod
    def build(cls, smiles: Iterable[str], length: int) -> SelfiesTokenizer:
        """The vocabulary of every SELFIES symbol in `smiles` (sorted), for sequences of `length`."""
        seen: set[str] = set()
        for s in smiles:
            seen.update(sf.split_selfies(sf.encoder(s)))
        return cls(sorted(seen), length)

    def to_dict(self) -> dict:
        return {"symbols": self.symbols, "length": self.length}

    @classmethod
    def from_dict(cls, d: dict) -> SelfiesTokenizer:
        return cls(d["symbols"], d["length"])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> SelfiesTokenizer:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def symbols_of(self, smiles: str) -> list[str]:
        """The SELFIES symbols of one SMILES; ValueError if it cannot be encoded with this vocabulary."""
        try:
            symbols = list(sf.split_selfies(sf.encoder(smiles)))
        except Exception as exc:  # selfies raises EncoderError (and RDKit-free parse errors)
            raise ValueError(f"cannot encode SMILES {smiles!r} as SELFIES: {exc}") from None
        unknown = [s for s in symbols if s not in self._index]
        if unknown:
            raise ValueError(f"SMILES {smiles!r} uses SELFIES symbols outside the vocabulary: {sorted(set(unknown))}")
        if len(symbols) > self.length:
            raise ValueError(
                f"SMILES {smiles!r} has {len(symbols)} SELFIES symbols; this model takes at most {self.length}"
            )
        return symbols

    def encodable(self, smiles: str) -> bool:
        try:
            self.symbols_of(smiles)
            return True
        except ValueError:
            return False

    def encode(self, smiles: Iterable[str] | str) -> torch.Tensor:
        """Token ids Long[B, L] for B SMILES (one str is a batch of one), right-padded with "[nop]"."""
        if isinstance(smiles, str):
            smiles = [smiles]
        rows = []
        for s in smiles:
            ids = [self._index[x] for x in self.symbols_of(s)]
            rows.append(ids + [self.pad_index] * (self.length - len(ids)))
        if not rows:
            raise ValueError("encode needs at least one SMILES")
        return torch.tensor(rows, dtype=torch.long)

    def to_selfies(self, tokens: torch.Tensor) -> list[str]:
        """SELFIES strings for ids Long[B, L] (pads dropped)."""
        if tokens.dim() != 2:
            raise ValueError(f"expected token ids Long[B, L]; got shape {tuple(tokens.shape)}")
        if (tokens < 0).any() or (tokens >= self.size).any():
            raise ValueError(f"token ids must lie in 0..{self.size - 1} (masked or foreign tokens cannot decode)")
        return ["".join(self.symbols[i] for i in row if i != self.pad_index) for row in tokens.tolist()]

    def decode(self, tokens: torch.Tensor) -> list[str]:
        """SMILES strings for ids Long[B, L]: SELFIES decoding, then RDKit canonical form when it
        parses; "" when the sequence decodes to nothing (rewards give NaN for it)."""
        out = []
        for s in self.to_selfies(tokens):
            try:
                smi = sf.decoder(s) or ""
            except Exception:
                smi = ""
            out.append(canonical(smi) or smi)
        return out

    def __repr__(self) -> str:
        return f"SelfiesTokenizer({self.size} symbols, length={self.length})"
