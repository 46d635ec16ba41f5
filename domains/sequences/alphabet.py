"""Alphabets: strings <-> token ids for the sequence models, with clear errors for bad input.

`DNA` has tokens A C G T (ids 0-3). `RNA` has A C G U (ids 0-3) and a pad token "-" (id 4):
the RNA model works on length-100 windows, and a shorter sequence is its letters followed by pads.
Decoding drops every pad, so a decoded RNA sequence is a plain ACGU string (length <= 100).
The mask token of the diffusion model is id `size` (one past the last token) and never decodes.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch


class Alphabet:
    """Letters (and an optional pad letter) with `encode` / `decode`.

    Args:
        letters: the residues, in token order (e.g. "ACGT").
        pad: an optional pad letter appended as the last token (e.g. "-").
        name: used in error messages.
    """

    def __init__(self, letters: str, pad: str | None = None, name: str = "sequence"):
        self.letters = letters
        self.pad = pad
        self.name = name
        self.tokens = letters + (pad or "")
        self.size = len(self.tokens)
        self._index = {c: i for i, c in enumerate(self.tokens)}
        self._letter_set = set(letters)
        self._lookup = np.zeros(256, dtype=np.int64)
        for c, i in self._index.items():
            self._lookup[ord(c)] = i

    @property
    def pad_index(self) -> int | None:
        return self._index[self.pad] if self.pad else None

    def check(self, seq: str) -> str:
        """Upper-cased `seq`; ValueError naming the first bad character, its position and the alphabet."""
        if not isinstance(seq, str):
            raise TypeError(f"{self.name} sequences must be str; got {type(seq).__name__}")
        up = seq.upper()
        for i, c in enumerate(up):
            if c not in self.letters:
                raise ValueError(
                    f"invalid character {seq[i]!r} at position {i} of {self.name} sequence "
                    f"{_short(seq)}; accepted: {', '.join(self.letters)} (case-insensitive)"
                )
        return up

    def is_valid(self, seq: object) -> bool:
        """True when `seq` is a non-empty str of alphabet letters (any case)."""
        return isinstance(seq, str) and len(seq) > 0 and all(c in self.letters for c in seq.upper())

    def encode(self, seqs: Iterable[str] | str, length: int | None = None) -> torch.Tensor:
        """Token ids Long[B, length] for B sequences (one str is a batch of one).

        Without a pad letter every sequence must have exactly `length` letters (default: the
        first one's length); with one, shorter sequences are right-padded to `length`.
        """
        if isinstance(seqs, str):
            seqs = [seqs]
        seqs = [s.upper() if isinstance(s, str) and set(s.upper()) <= self._letter_set else self.check(s) for s in seqs]
        if not seqs:
            raise ValueError("encode needs at least one sequence")
        length = length if length is not None else max(len(s) for s in seqs)
        for s in seqs:
            if len(s) > length or (self.pad is None and len(s) != length):
                need = f"exactly {length}" if self.pad is None else f"at most {length}"
                raise ValueError(f"{self.name} sequence {_short(s)} has {len(s)} letters; this model takes {need}")
        fill = self.pad if self.pad is not None else self.letters[0]
        joined = "".join(s + fill * (length - len(s)) for s in seqs).encode("ascii")
        ids = self._lookup[np.frombuffer(joined, dtype=np.uint8)]
        return torch.from_numpy(ids.reshape(len(seqs), length).astype(np.int64))

    def decode(self, tokens: torch.Tensor) -> list[str]:
        """Strings for token ids Long[B, L] (pads dropped). Mask or out-of-range ids raise ValueError."""
        if tokens.dim() != 2:
            raise ValueError(f"decode expects Long[B, L]; got shape {tuple(tokens.shape)}")
        if (tokens < 0).any() or (tokens >= self.size).any():
            raise ValueError(f"decode got token ids outside 0..{self.size - 1} (masked or foreign tokens)")
        out = []
        for row in tokens.tolist():
            out.append("".join(self.tokens[i] for i in row if i != self.pad_index))
        return out

    def __repr__(self) -> str:
        return f"Alphabet({self.letters!r}, pad={self.pad!r})"


def _short(seq: str, limit: int = 40) -> str:
    return repr(seq if len(seq) <= limit else seq[: limit - 3] + "...")


DNA = Alphabet("ACGT", name="DNA")
RNA = Alphabet("ACGU", pad="-", name="RNA")
