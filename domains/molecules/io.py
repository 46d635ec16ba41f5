"""Writing generated molecules: a CSV of SMILES with their rewards."""

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
