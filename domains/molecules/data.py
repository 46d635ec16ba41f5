"""Molecule data: MOSES SMILES from the `molsets` wheel, and the small MOSES sample shipped here.

MOSES (Polykovskiy et al. 2020, derived from ZINC Clean Leads; MIT licence) ships inside the
`molsets` 0.3.1 wheel. `pip install molsets` fails to build its dependencies and `import moses`
fails with modern RDKit, so install it with `pip install --no-deps molsets` and read the csv.gz
files by path (never import the package). The tests use only `sample_smiles()`: 500 molecules of
the MOSES test split shipped in data/moses_test_sample.csv (seed 0).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "data" / "moses_test_sample.csv"
SPLITS = ("train", "test", "test_scaffolds")


def moses_path(split: str = "train") -> Path:
    """Path of the MOSES `split` csv.gz inside the installed molsets wheel (not imported)."""
    if split not in SPLITS:
        raise ValueError(f"unknown MOSES split {split!r}; choose one of {', '.join(SPLITS)}")
    spec = importlib.util.find_spec("moses")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "MOSES data not found: install it with `pip install --no-deps molsets` "
            "(a plain `pip install molsets` fails to build)"
        )
    return Path(spec.submodule_search_locations[0]) / "dataset" / "data" / f"{split}.csv.gz"


def moses_smiles(split: str = "train", n: int | None = None, seed: int = 0) -> list[str]:
    """SMILES of the MOSES `split`; with `n`, a random subset of n (numpy seed `seed`), in random order."""
    import pandas as pd

    smiles = pd.read_csv(moses_path(split))["SMILES"].tolist()
    if n is not None:
        idx = np.random.default_rng(seed).choice(len(smiles), size=min(n, len(smiles)), replace=False)
        smiles = [smiles[i] for i in idx]
    return smiles


def sample_smiles() -> list[str]:
    """The 500 MOSES test-split SMILES shipped with the package (for tests and the notebook)."""
    lines = SAMPLE.read_text().splitlines()
    return [line.strip() for line in lines[1:] if line.strip()]
