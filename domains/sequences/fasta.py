"""FASTA output of generated sequences, with their rewards in the record descriptions (Biopython)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def write_fasta(
    path: str | Path,
    sequences: Sequence[str],
    rewards: Sequence[float] | np.ndarray | None = None,
    *,
    prefix: str = "sample",
    reward_name: str = "reward",
    notes: Sequence[str] | None = None,
) -> Path:
    """Write `sequences` to a FASTA file at `path`: ids `{prefix}_{i}`, description
    `{reward_name}=<value>` followed by `notes[i]` when given (e.g. "mfe=-30.20 structure=((...)))").

    `rewards` (optional) must have one value per sequence; NaN is written as "nan".
    Returns the path.
    """
    from Bio import SeqIO
    from Bio.Seq import Seq
    from Bio.SeqRecord import SeqRecord

    sequences = list(sequences)
    if rewards is not None:
        rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
        if rewards.shape[0] != len(sequences):
            raise ValueError(f"{len(sequences)} sequences but {rewards.shape[0]} rewards; give one reward per sequence")
    if notes is not None and len(notes) != len(sequences):
        raise ValueError(f"{len(sequences)} sequences but {len(notes)} notes; give one note per sequence")
    records = []
    for i, s in enumerate(sequences):
        if not isinstance(s, str):
            raise TypeError(f"sequence {i} is {type(s).__name__}; write_fasta writes str sequences")
        desc = f"{reward_name}={rewards[i]:.6g}" if rewards is not None else ""
        if notes is not None:
            desc = f"{desc} {notes[i]}".strip()
        records.append(SeqRecord(Seq(s), id=f"{prefix}_{i}", description=desc))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        SeqIO.write(records, handle, "fasta")
    return path
