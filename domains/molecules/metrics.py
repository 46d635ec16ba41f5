"""Sample-quality metrics for generated molecules: validity, uniqueness, novelty, property
distances to a reference set (Wasserstein-1 of QED / logP / SA / MW), and diversity."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .rewards import QED, SA, LogP, MolWeight, mol_from_smiles
from .tokenizer import canonical


def properties(smiles: Sequence[str]) -> dict[str, np.ndarray]:
    """QED, logP, raw SA and MW of each SMILES: float[n] each (NaN for invalid)."""
    return {"QED": QED()(smiles), "logP": LogP()(smiles), "SA": -SA(raw=True)(smiles), "MW": MolWeight()(smiles)}


def distribution_metrics(
    generated: Sequence[str], reference: Sequence[str], training: Iterable[str] | None = None
) -> dict[str, float]:
    """validity (parses), uniqueness (distinct canonical among valid), novelty (valid unique not in
    `training`, if given), and W1 distances of QED/logP/SA/MW between valid generated and reference."""
    from scipy.stats import wasserstein_distance

    canon = [canonical(s) for s in generated]
    valid = [c for c in canon if c is not None]
    out = {
        "n": len(generated),
        "validity": len(valid) / max(len(generated), 1),
        "uniqueness": len(set(valid)) / max(len(valid), 1),
    }
    if training is not None:
        train = set(training)
        uniq = set(valid)
        out["novelty"] = len([c for c in uniq if c not in train]) / max(len(uniq), 1)
    gen_p, ref_p = properties(valid), properties(list(reference))
    for k in gen_p:
        a, b = gen_p[k][~np.isnan(gen_p[k])], ref_p[k][~np.isnan(ref_p[k])]
        out[f"W1_{k}"] = float(wasserstein_distance(a, b)) if len(a) and len(b) else float("nan")
        out[f"mean_{k}"] = float(a.mean()) if len(a) else float("nan")
        out[f"ref_mean_{k}"] = float(b.mean()) if len(b) else float("nan")
    return out


def mean_pairwise_tanimoto_distance(smiles: Sequence[str], radius: int = 2, bits: int = 2048) -> float:
    """Mean of 1 - Tanimoto similarity over all pairs of valid molecules (Morgan fingerprints);
    NaN with fewer than two valid molecules. Higher = more diverse."""
    from rdkit import DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    fps = [gen.GetFingerprint(m) for m in (mol_from_smiles(s) for s in smiles) if m is not None]
    if len(fps) < 2:
        return float("nan")
    total, pairs = 0.0, 0
    for i in range(1, len(fps)):
        sims = DataStructs.BulkTanimotoSimilarity(fps[i], fps[:i])
        total += float(np.sum(1.0 - np.asarray(sims)))
        pairs += i
    return total / pairs


def tanimoto_distance(smiles: Sequence[str], reference: str, radius: int = 2, bits: int = 2048) -> np.ndarray:
    """1 - Tanimoto similarity (Morgan fingerprints) of each SMILES to `reference`: float[n] in [0, 1],
    NaN for an invalid molecule. 0 = the same fingerprint; a distance to a seed molecule."""
    from rdkit import DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    ref = mol_from_smiles(reference)
    if ref is None:
        raise ValueError(f"reference {reference!r} is not a valid SMILES")
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    ref_fp = gen.GetFingerprint(ref)
    out = np.full(len(smiles), np.nan)
    for i, s in enumerate(smiles):
        m = mol_from_smiles(s)
        if m is not None:
            out[i] = 1.0 - DataStructs.TanimotoSimilarity(gen.GetFingerprint(m), ref_fp)
    return out
