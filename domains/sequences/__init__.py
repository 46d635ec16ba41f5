"""DNA and RNA: pretrained masked diffusion models, reward oracles, value networks (all offline).

from svdd.domains.sequences import load_pretrained, ARS1Activity, MotifScore, GCContent, RNAFold
process = load_pretrained("dna-ars1")          # svdd.masked.MaskedDiffusion; decode -> "ACGT" strings
res = svdd.sample(process, ARS1Activity(), num_samples=128, num_candidates=10)
load_reward("mfe=ensemble")                    # the rewards by their command-line names
write_fasta("out.fa", res.samples, res.rewards)
"""

from .alphabet import DNA, RNA, Alphabet
from .fasta import write_fasta
from .pretrained import load_pretrained, load_value
from .rewards import ARS1Activity, GCContent, MotifScore, RNAFold, load_reward

__all__ = [
    "DNA",
    "RNA",
    "ARS1Activity",
    "Alphabet",
    "GCContent",
    "MotifScore",
    "RNAFold",
    "load_pretrained",
    "load_reward",
    "load_value",
    "write_fasta",
]
