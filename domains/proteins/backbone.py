"""Protein backbones (N, CA, C, O) read from PDB files the way ProteinMPNN's own parser lays them out.

A `Backbone` has one *slot* per residue number of each chain, from its first to its last
number: a residue number absent from the file (a gap) is a slot with NaN coordinates, and each
insertion code of a number is a slot of its own. Chains come in sorted order of their ids, and
ProteinMPNN's residue index is `100 * chain + slot`, counting slots over all chains, so gaps
and chain breaks show up as jumps, as in `protein_mpnn_utils.parse_PDB` + `tied_featurize`.
A slot is *present* when all four backbone atoms are there (ProteinMPNN's `mask`); only present
slots are designed. Residues come from ATOM records, plus selenomethionine (HETATM MSE, read as
MET); of alternate locations the first in the file is kept, as ProteinMPNN does.

Shipped backbones (backbone atoms only, in `data/`; sources and licence in `data/SOURCES.md`):

| name    | protein                                   | residues |
|---------|-------------------------------------------|----------|
| "1ejg"  | crambin (Crambe abyssinica), PDB 1EJG     | 46       |
| "1ubi"  | ubiquitin (human), PDB 1UBI               | 76       |
| "1cih"  | cytochrome c (yeast iso-1 mutant), 1CIH   | 108      |
| "1a0j"  | trypsin, PDB 1A0J chain A                 | 223      |
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .alphabet import MPNN_ALPHABET, ONE_TO_THREE, THREE_TO_ONE

DATA = Path(__file__).resolve().parent / "data"
SHIPPED: dict[str, str] = {"1ejg": "1ejg.pdb", "1ubi": "1ubi.pdb", "1cih": "1cih.pdb", "1a0j": "1a0j.pdb"}
BACKBONE_ATOMS = ("N", "CA", "C", "O")


@dataclass(frozen=True, eq=False)
class Backbone:
    """Backbone coordinates and native sequence of one or more chains, in ProteinMPNN's slot layout.

    Attributes (N = number of slots):
        name: a label (the file name without .pdb/.pdbqt/.gz, or the shipped name).
        coords: float32 [N, 4, 3], atoms N, CA, C, O in Å; NaN rows for gaps and incomplete residues.
        sequence: the native one-letter code of every slot (N letters; "X" for a gap or a
            non-standard residue).
        residue_ids: (chain id, residue number, insertion code) of every slot.
        residue_index: int64 [N], ProteinMPNN's residue index (100 * chain number + slot number).
        chain_encoding: int64 [N], 1 for the first chain, 2 for the second, ...
    """

    name: str
    coords: np.ndarray
    sequence: str
    residue_ids: tuple[tuple[str, int, str], ...]
    residue_index: np.ndarray
    chain_encoding: np.ndarray

    def __post_init__(self) -> None:
        n = self.coords.shape[0]
        if self.coords.shape != (n, 4, 3):
            raise ValueError(f"coords must have shape [N, 4, 3]; got {self.coords.shape}")
        for field, size in (
            ("sequence", len(self.sequence)),
            ("residue_ids", len(self.residue_ids)),
            ("residue_index", len(self.residue_index)),
            ("chain_encoding", len(self.chain_encoding)),
        ):
            if size != n:
                raise ValueError(f"{field} has {size} entries for {n} slots")

    @property
    def num_slots(self) -> int:
        return int(self.coords.shape[0])

    @property
    def present(self) -> np.ndarray:
        """bool [N]: slots with all four backbone atoms (ProteinMPNN's `mask`); these are designed."""
        return np.isfinite(self.coords).all(axis=(1, 2))

    @property
    def length(self) -> int:
        """L, the number of present (designed) residues."""
        return int(self.present.sum())

    @property
    def native(self) -> str:
        """The native sequence of the present residues (L letters; "X" where non-standard)."""
        return "".join(c for c, ok in zip(self.sequence, self.present) if ok)

    @property
    def chains(self) -> tuple[str, ...]:
        """The chain ids, in slot order."""
        return tuple(dict.fromkeys(cid for cid, _, _ in self.residue_ids))

    def features(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """ProteinMPNN's inputs for a batch of one, as `tied_featurize` builds them.

        X float32 [1, N, 4, 3] (NaN -> 0), mask float32 [1, N], residue_idx Long [1, N],
        chain_encoding_all Long [1, N], S Long [1, N] (native ids in ProteinMPNN's 21 letters).
        """
        present = self.present
        coords = np.where(np.isfinite(self.coords), self.coords, 0.0).astype(np.float32)
        native = [MPNN_ALPHABET.index(c) for c in self.sequence]
        return {
            "X": torch.from_numpy(coords)[None].to(device),
            "mask": torch.from_numpy(present.astype(np.float32))[None].to(device),
            "residue_idx": torch.from_numpy(self.residue_index.astype(np.int64))[None].to(device),
            "chain_encoding_all": torch.from_numpy(self.chain_encoding.astype(np.int64))[None].to(device),
            "S": torch.tensor([native], dtype=torch.long, device=device),
        }

    def crop(self, start: int, stop: int, name: str | None = None) -> Backbone:
        """The slots `start:stop` (residue index and chain numbers kept), e.g. a decoy of a given length."""
        if not (isinstance(start, int) and isinstance(stop, int) and 0 <= start < stop <= self.num_slots):
            raise ValueError(
                f"crop needs 0 <= start < stop <= {self.num_slots} (the number of slots); "
                f"got start={start!r}, stop={stop!r}"
            )
        return Backbone(
            name or f"{self.name}[{start}:{stop}]",
            self.coords[start:stop].copy(),
            self.sequence[start:stop],
            self.residue_ids[start:stop],
            self.residue_index[start:stop].copy(),
            self.chain_encoding[start:stop].copy(),
        )

    def to_pdb(self, path: str | Path, remarks: Sequence[str] = ()) -> Path:
        """Write the present residues' N, CA, C, O as a PDB file (residue numbers and chains kept)."""
        lines = [f"REMARK   1 {text}"[:80] for text in remarks]
        serial = 0
        previous_chain = None
        for (chain, number, icode), letter, xyz, ok in zip(self.residue_ids, self.sequence, self.coords, self.present):
            if previous_chain is not None and chain != previous_chain:
                lines.append("TER")
            previous_chain = chain
            if not ok:
                continue
            resname = ONE_TO_THREE.get(letter, "UNK")
            for atom, (x, y, z) in zip(BACKBONE_ATOMS, xyz):
                serial += 1
                lines.append(
                    f"ATOM  {serial:5d} {atom:^4s} {resname:3s} {chain:1s}{number:4d}{icode or ' ':1s}   "
                    f"{x:8.3f}{y:8.3f}{z:8.3f}{1.0:6.2f}{0.0:6.2f}          {atom[0]:>2s}"
                )
        lines += ["TER", "END"]
        path = Path(path)
        path.write_text("\n".join(lines) + "\n")
        return path


def _open_text(path: Path) -> io.StringIO:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return io.StringIO(data.decode("utf-8", errors="ignore"))


def _parse_chains(chains: str | Sequence[str] | None) -> list[str] | None:
    if chains is None:
        return None
    if isinstance(chains, str):
        ids = [c.strip() for c in chains.split(",")] if "," in chains else list(chains.strip())
    else:
        ids = list(chains)
    if not ids or any(not isinstance(c, str) or len(c) != 1 for c in ids):
        raise ValueError(f'chains must be chain ids of one character each ("A", "AB", "A,B" or a list); got {chains!r}')
    return ids


def read_backbone(path: str | Path, chains: str | Sequence[str] | None = None, name: str | None = None) -> Backbone:
    """The backbone of `chains` (default: every chain with protein residues) in a PDB file.

    `path`: a .pdb file (gzipped or not; PDBQT files with full backbones work too). `chains`:
    "A", "AB", "A,B" or ["A", "B"]; they are laid out in sorted order, as ProteinMPNN does.
    The first model of a multi-model (NMR) file is read.
    """
    from Bio.PDB import PDBParser
    from Bio.PDB.Residue import DisorderedResidue

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no PDB file at {path}")
    wanted = _parse_chains(chains)
    if name is None:
        name = path.name.removesuffix(".gz").removesuffix(".pdb").removesuffix(".pdbqt").removesuffix(".ent")
    try:
        structure = PDBParser(QUIET=True).get_structure(name, _open_text(path))
    except Exception as exc:  # Biopython: "Empty file.", IndexError on garbled ATOM lines, ...
        raise ValueError(f"{path} is not a readable PDB file ({type(exc).__name__}: {exc})") from None
    models = list(structure)
    if not models:
        raise ValueError(f"{path} has no ATOM records")
    residues: dict[str, dict[tuple[int, str], tuple[str, np.ndarray]]] = {}
    for chain in models[0]:
        for residue in chain:
            if isinstance(residue, DisorderedResidue):  # a point mutation: keep the first in the file
                residue = residue.disordered_get_list()[0]
            hetflag, number, icode = residue.id
            resname = residue.get_resname()
            if hetflag != " " and resname != "MSE":
                continue
            xyz = np.full((4, 3), np.nan)
            for k, atom_name in enumerate(BACKBONE_ATOMS):
                if atom_name in residue:
                    atom = residue[atom_name]
                    if atom.is_disordered():
                        atom = atom.disordered_get_list()[0]
                    xyz[k] = atom.coord
            letter = THREE_TO_ONE.get("MET" if resname == "MSE" else resname, "X")
            residues.setdefault(chain.id, {})[(number, icode.strip())] = (letter, xyz)
    found = sorted(residues)
    if wanted is not None:
        missing = [c for c in wanted if c not in residues]
        if missing:
            raise ValueError(f"chain(s) {', '.join(missing)} not in {path}; it has chains {', '.join(found) or 'none'}")
        found = sorted(wanted)
    if not found:
        raise ValueError(f"{path} has no protein residues")
    coords: list[np.ndarray] = []
    letters: list[str] = []
    ids: list[tuple[str, int, str]] = []
    index: list[int] = []
    encoding: list[int] = []
    for c, chain_id in enumerate(found):
        by_number: dict[int, list[str]] = {}
        for number, icode in residues[chain_id]:
            by_number.setdefault(number, []).append(icode)
        for number in range(min(by_number), max(by_number) + 1):
            # a number absent from the file is a gap: one empty slot
            for icode in sorted(by_number[number]) if number in by_number else [""]:
                letter, xyz = residues[chain_id].get((number, icode), ("X", np.full((4, 3), np.nan)))
                index.append(100 * c + len(coords))
                coords.append(xyz)
                letters.append(letter)
                ids.append((chain_id, number, icode))
                encoding.append(c + 1)
    return Backbone(
        name,
        np.asarray(coords, dtype=np.float32),
        "".join(letters),
        tuple(ids),
        np.asarray(index, dtype=np.int64),
        np.asarray(encoding, dtype=np.int64),
    )


def load_backbone(backbone: str | Path | Backbone, chains: str | Sequence[str] | None = None) -> Backbone:
    """A shipped backbone by name ("1ubi", "1ejg", "1cih", "1a0j"), a PDB file path, or a `Backbone` as is."""
    if isinstance(backbone, Backbone):
        if chains is not None:
            raise ValueError("chains selects chains while reading a file; got a Backbone, which is already read")
        return backbone
    if isinstance(backbone, str) and backbone.lower() in SHIPPED:
        return read_backbone(DATA / SHIPPED[backbone.lower()], chains, name=backbone.lower())
    path = Path(backbone)
    if not path.is_file():
        raise ValueError(
            f"backbone must be a shipped name ({', '.join(SHIPPED)}) or the path of a PDB file; got {backbone!r}"
        )
    return read_backbone(path, chains)
