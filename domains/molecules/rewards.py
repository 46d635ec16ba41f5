"""Molecule rewards on SMILES strings, following the `svdd.rewards` protocol.

Each is a callable `list[str] -> np.ndarray[float64]`, always maximised. A string RDKit cannot
parse (or the empty string) scores NaN and never raises. So does a molecule with more than
`MAX_ATOMS` (1000) atoms: the cost of some RDKit computations grows quadratically with size (SA
on a 200,000-atom chain runs for minutes, canonical SMILES of a 20,000-atom chain overflows the
stack), and no drug-like molecule comes near the limit (MOSES molecules have at most 27 heavy atoms).

- `QED()`: RDKit quantitative estimate of drug-likeness, in [0, 1].
- `SA()`: synthetic accessibility (Ertl & Schuffenhauer; RDKit Contrib `sascorer`). By default
  reported as (10 - SA) / 9 in [0, 1] like the SVDD paper (higher = easier to make);
  `SA(raw=True)` gives the raw score in [1, 10] where LOWER is better, negated so that the
  reward is still maximised (i.e. -SA).
- `LogP()`: Crippen logP.
- `Docking(target="PARP1")`: negated AutoDock Vina score, see docking.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

import numpy as np
from rdkit import Chem, RDConfig, RDLogger

from svdd.runs.plugins import no_argument

MAX_ATOMS = 1000
"""Largest molecule the rewards score, in atoms of the parsed SMILES graph (heavy atoms plus any
hydrogens written as atoms); larger ones are treated as invalid (NaN). Parsing is linear in size
(about 3 µs per atom), so a huge SMILES is rejected in well under a second."""


def mol_from_smiles(smiles: object, max_atoms: int = MAX_ATOMS):
    """An RDKit molecule with 1 to `max_atoms` atoms, or None (no exception, no RDKit log spam)."""
    if not isinstance(smiles, str) or not smiles:
        return None
    RDLogger.DisableLog("rdApp.*")
    try:
        mol = Chem.MolFromSmiles(smiles)
    except Exception:
        return None
    if mol is None or not 0 < mol.GetNumAtoms() <= max_atoms:
        return None
    return mol


def _score_each(smiles: Sequence[str], fn: Callable) -> np.ndarray:
    out = np.full(len(smiles), np.nan)
    for i, s in enumerate(smiles):
        mol = mol_from_smiles(s)
        if mol is None:
            continue
        try:
            out[i] = float(fn(mol))
        except Exception:  # an RDKit failure on one odd molecule is an invalid molecule
            out[i] = np.nan
    return out


class QED:
    """RDKit QED of each SMILES in [0, 1]; NaN for invalid SMILES and molecules over `MAX_ATOMS` atoms."""

    name = "QED"

    def __call__(self, smiles: Sequence[str]) -> np.ndarray:
        from rdkit.Chem import QED as _qed

        return _score_each(smiles, _qed.qed)


class LogP:
    """Crippen logP of each SMILES; NaN for invalid SMILES and molecules over `MAX_ATOMS` atoms."""

    name = "LogP"

    def __call__(self, smiles: Sequence[str]) -> np.ndarray:
        from rdkit.Chem import Crippen

        return _score_each(smiles, Crippen.MolLogP)


def sascorer():
    """The `sascorer` module shipped in RDKit Contrib (SA_Score)."""
    path = os.path.join(RDConfig.RDContribDir, "SA_Score")
    if path not in sys.path:
        sys.path.append(path)
    import sascorer as module

    return module


class SA:
    """Synthetic accessibility. Default: (10 - SA) / 9 in [0, 1], higher = easier (the paper's
    normalisation). `raw=True`: -SA with SA in [1, 10] (raw SA: lower is better, so negated to
    keep the reward maximised). NaN for invalid SMILES and molecules over `MAX_ATOMS` atoms (the
    RDKit Contrib scorer is quadratic in size: 0.16 s at 8,000 atoms, minutes at 200,000)."""

    def __init__(self, raw: bool = False):
        self.raw = bool(raw)
        self.name = "-SA" if self.raw else "SA(normalised)"

    def __call__(self, smiles: Sequence[str]) -> np.ndarray:
        raw = _score_each(smiles, sascorer().calculateScore)
        return -raw if self.raw else (10.0 - raw) / 9.0


class MolWeight:
    """Molecular weight (Da) of each SMILES; NaN for invalid SMILES and molecules over `MAX_ATOMS` atoms
    (for reports)."""

    name = "MolWt"

    def __call__(self, smiles: Sequence[str]) -> np.ndarray:
        from rdkit.Chem import Descriptors

        return _score_each(smiles, Descriptors.MolWt)


def load_reward(spec: str):
    """A reward by the name the command line uses: "qed", "sa" or "sa=raw", "logp",
    "docking" or "docking=<DOCKSTRING target>" (default PARP1)."""
    from .docking import Docking

    name, _, arg = spec.partition("=")
    table: dict[str, Callable[[str | None], object]] = {
        "qed": no_argument("qed", QED),
        "sa": lambda a: SA(raw=_sa_mode(a)),
        "logp": no_argument("logp", LogP),
        "docking": lambda a: Docking(a or "PARP1"),
    }
    if name not in table:
        raise ValueError(f"unknown molecule reward {spec!r}; choose one of {', '.join(table)}")
    return table[name](arg or None)


REWARD_NAMES = ("qed", "sa", "logp", "docking")


def _sa_mode(arg: str | None) -> bool:
    if arg in (None, "normalised"):
        return False
    if arg == "raw":
        return True
    raise ValueError(f"sa takes no argument or =raw; got {arg!r}")
