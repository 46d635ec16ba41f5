"""FASTA output of designed sequences, with their reward and report columns in each header (Biopython)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _format(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        return "nan" if math.isnan(float(value)) else f"{float(value):.6g}"
    return str(value).replace(" ", "_")


def write_fasta(
    path: str | Path,
    sequences: Sequence[str],
    rewards: Sequence[float] | np.ndarray | None = None,
    columns: Mapping[str, Sequence[object]] | None = None,
    *,
    prefix: str = "design",
    reward_name: str = "reward",
) -> Path:
    """Write `sequences` to `path` as FASTA: ids `{prefix}_{i}`, then `reward_name=<r>` and `key=<value>`
    for every column (e.g. recovery, mpnn_score), one value per sequence. Returns the path.
    """
    from Bio import SeqIO
    from Bio.Seq import Seq
    from Bio.SeqRecord import SeqRecord

    sequences = list(sequences)
    fields: dict[str, list[object]] = {}
    if rewards is not None:
        fields[reward_name] = list(np.asarray(rewards, dtype=np.float64).reshape(-1))
    for key, values in (columns or {}).items():
        fields[str(key)] = list(values)
    for key, values in fields.items():
        if len(values) != len(sequences):
            raise ValueError(f"{len(sequences)} sequences but {len(values)} values of {key!r}; give one per sequence")
    records = []
    for i, s in enumerate(sequences):
        if not isinstance(s, str):
            raise TypeError(f"sequence {i} is {type(s).__name__}; write_fasta writes str sequences")
        desc = " ".join(f"{key}={_format(values[i])}" for key, values in fields.items())
        records.append(SeqRecord(Seq(s), id=f"{prefix}_{i}", description=desc))
    path = Path(path)
    with open(path, "w") as handle:
        SeqIO.write(records, handle, "fasta")
    return path
