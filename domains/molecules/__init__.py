"""Molecules: a pretrained SELFIES masked diffusion model on MOSES, and RDKit / Vina rewards (offline).

from svdd.domains.molecules import load_pretrained, QED, SA, LogP, Docking
process = load_pretrained()                     # svdd.masked.MaskedDiffusion; decode -> SMILES
res = svdd.sample(process, QED(), num_samples=128, num_candidates=10)
write_smiles_csv("out.csv", res.samples, res.rewards)
"""

from .data import moses_smiles, sample_smiles
from .docking import Docking, vina_score
from .io import write_sdf, write_smiles_csv
from .metrics import distribution_metrics, mean_pairwise_tanimoto_distance, tanimoto_distance
from .pretrained import load_pretrained, load_value
from .rewards import QED, SA, LogP, MolWeight, load_reward
from .tokenizer import SelfiesTokenizer, canonical

__all__ = [
    "QED",
    "SA",
    "Docking",
    "LogP",
    "MolWeight",
    "SelfiesTokenizer",
    "canonical",
    "distribution_metrics",
    "load_pretrained",
    "load_reward",
    "load_value",
    "mean_pairwise_tanimoto_distance",
    "moses_smiles",
    "sample_smiles",
    "tanimoto_distance",
    "vina_score",
    "write_sdf",
    "write_smiles_csv",
]
