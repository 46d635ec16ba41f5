"""Writing generated molecules: SDF (RDKit `SDWriter`) or a CSV of SMILES, with their rewards."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def write_smiles_csv(path: str | Path, smiles: Sequence[str], rewards: Sequence[float] | None = None) -> Path:
    """Write `smiles` (and `rewards`, NaN written as empty) to a CSV with columns smiles[,reward]."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if rewards is not None and len(rewards) != len(smiles):
        raise ValueError(f"got {len(smiles)} SMILES but {len(rewards)} rewards")
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["smiles"] + (["reward"] if rewards is not None else []))
        for i, s in enumerate(smiles):
            row = [s]
            if rewards is not None:
                r = float(rewards[i])
                row.append("" if np.isnan(r) else repr(r))
            w.writerow(row)
    return path


def write_sdf(
    path: str | Path, smiles: Sequence[str], rewards: Sequence[float] | None = None, *, reward_name: str = "reward"
) -> Path:
    """Write molecules to an SDF file (2-D, no coordinates computed) with RDKit's `SDWriter`.

    Each record is titled `sample_{i}` and carries the properties `index`, `smiles` and
    `{reward_name}` (absent when NaN). SMILES RDKit cannot parse are skipped; their index is
    missing from the file, so records stay traceable to the sample table.
    """
    from rdkit import Chem

    from .rewards import mol_from_smiles

    smiles = list(smiles)
    if rewards is not None and len(rewards) != len(smiles):
        raise ValueError(f"got {len(smiles)} SMILES but {len(rewards)} rewards")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = Chem.SDWriter(str(path))
    try:
        for i, s in enumerate(smiles):
            mol = mol_from_smiles(s)
            if mol is None:
                continue
            mol.SetProp("_Name", f"sample_{i}")
            mol.SetIntProp("index", i)
            mol.SetProp("smiles", s)
            if rewards is not None and np.isfinite(float(rewards[i])):
                mol.SetDoubleProp(reward_name, float(rewards[i]))
            writer.write(mol)
    finally:
        writer.close()
    return path
