"""Real sequence data, read offline from installed packages (never downloaded at run time).

- ARS1 library: 603,569 yeast ARS1 variants of 150 bp with library / selected read counts,
  `logomaker/examples/datafiles/ars_sequences.txt.gz` inside the `logomaker` wheel (Kinney lab,
  an arsMut-seq style selection as in Liachko et al. 2013; the file says "unpublished").
- miRBase hairpins: `usr/share/doc/seqkit-examples/tests/hairpin.fa.gz` from the Debian package
  `seqkit-examples` (miRBase release 21 stem-loops), extracted by `make train-sequences` into
  `build/seqkit-examples/`. Only the training script needs it.
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ARS1_RELATIVE = Path("examples") / "datafiles" / "ars_sequences.txt.gz"
HAIRPIN_DEFAULT = Path("build/seqkit-examples/usr/share/doc/seqkit-examples/tests/hairpin.fa.gz")


def ars1_path() -> Path:
    """Path of the ARS1 library file inside the installed `logomaker` package."""
    spec = importlib.util.find_spec("logomaker")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "the ARS1 library ships in the logomaker wheel: pip install logomaker (or pip install -e '.[sequences]')"
        )
    path = Path(spec.origin).parent / ARS1_RELATIVE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; logomaker >= 0.8 ships ars_sequences.txt.gz")
    return path


@dataclass
class ARS1Library:
    """sequences: list of n 150-bp DNA strings; library_ct, selected_ct: int64 [n]."""

    sequences: list[str]
    library_ct: np.ndarray
    selected_ct: np.ndarray

    def enrichment(self) -> np.ndarray:
        """log((selected_ct + 1) / (library_ct + 1)), float64 [n]: the selection enrichment."""
        return np.log((self.selected_ct + 1.0) / (self.library_ct + 1.0))

    def __len__(self) -> int:
        return len(self.sequences)


def load_ars1(path: str | Path | None = None, limit: int | None = None) -> ARS1Library:
    """The ARS1 library (default: from the logomaker wheel); only the first `limit` variants if given.

    Lines starting with '#' are comments.
    """
    path = Path(path) if path is not None else ars1_path()
    seqs: list[str] = []
    lib: list[int] = []
    sel: list[int] = []
    with gzip.open(path, "rt") as handle:
        header = None
        for line in handle:
            if line.startswith("#") or not line.strip():
                continue
            fields = line.split()
            if header is None:
                header = fields
                if header != ["library_ct", "selected_ct", "sequence"]:
                    raise ValueError(f"{path}: unexpected header {header}")
                continue
            if limit is not None and len(seqs) >= limit:
                break
            lib.append(int(fields[0]))
            sel.append(int(fields[1]))
            seqs.append(fields[2])
    return ARS1Library(seqs, np.asarray(lib, dtype=np.int64), np.asarray(sel, dtype=np.int64))


def load_hairpins(
    path: str | Path = HAIRPIN_DEFAULT, min_length: int = 50, max_length: int = 100
) -> list[tuple[str, str]]:
    """(id, sequence) of the miRBase hairpins with min_length..max_length letters, all ACGU.

    Sequences are upper-cased; any with other letters (IUPAC codes such as R, W, Y) are skipped.
    """
    from Bio import SeqIO

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found. It comes from the Debian package seqkit-examples: run "
            "`make train-sequences`, or `apt-get download seqkit-examples && dpkg -x seqkit-examples_*.deb "
            "build/seqkit-examples`"
        )
    out = []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as handle:
        for record in SeqIO.parse(handle, "fasta"):
            s = str(record.seq).upper()
            if min_length <= len(s) <= max_length and set(s) <= set("ACGU"):
                out.append((record.id, s))
    return out
