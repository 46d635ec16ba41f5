"""Reward oracles for DNA and RNA strings, following the `svdd.rewards` protocol.

Each is a callable `list[str] -> np.ndarray[float64]`, always maximised; an invalid sequence
(a character outside the alphabet, the wrong length, empty) scores NaN and never stops a batch.

- `ARS1Activity()`: predicted selection enrichment of a 150-bp ARS1 variant (CNN fit on the
  library's read counts; plays the role of the paper's enhancer-activity oracle).
- `MotifScore(motif)`: best JASPAR PWM log-odds score (bits) of a motif on either strand.
- `GCContent()`: fraction of G and C.
- `RNAFold()`: negated ViennaRNA minimum free energy (kcal/mol), or the negated ensemble free
  energy with `ensemble=True`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from svdd.runs.plugins import no_argument

from ..weights import shipped
from .alphabet import DNA
from .oracle import load_oracle
from .pretrained import WEIGHTS


class GCContent:
    """Fraction of G and C letters in a DNA or RNA string (letters ACGTU, any case); NaN if empty/invalid."""

    name = "GCContent"

    def __call__(self, seqs: Sequence[str]) -> np.ndarray:
        out = np.full(len(seqs), np.nan)
        for i, s in enumerate(seqs):
            if isinstance(s, str) and s and set(s.upper()) <= set("ACGTU"):
                up = s.upper()
                out[i] = (up.count("G") + up.count("C")) / len(up)
        return out


class MotifScore:
    """Best log-odds score (bits) of a JASPAR motif over every window of a DNA string, both strands.

    Args:
        motif: a JASPAR matrix id ("MA0265.3") or a TF name ("ABF1": the first CORE match), or a
            `Bio.motifs.Motif`.
        release: the JASPAR release shipped in the pyjaspar wheel (read offline).
        pseudocounts: added to the counts before the log-odds (uniform background).

    Sequences shorter than the motif, or with letters other than ACGT, score NaN.
    """

    def __init__(self, motif="MA0265.3", release: str = "JASPAR2024", pseudocounts: float = 0.5):
        if isinstance(motif, str):
            from pyjaspar import jaspardb

            db = jaspardb(release=release)
            found = db.fetch_motif_by_id(motif) if motif.upper().startswith("MA") else None
            if found is None:
                with warnings.catch_warnings():  # pyjaspar warns on zero matches; we raise below
                    warnings.simplefilter("ignore")
                    matches = db.fetch_motifs_by_name(motif)
                if not matches:
                    raise ValueError(
                        f"no motif {motif!r} in {release}; give a matrix id such as 'MA0265.3' "
                        "or a TF name such as 'ABF1'"
                    )
                found = matches[0]
            motif = found
        self.motif = motif
        self.pssm = motif.counts.normalize(pseudocounts=pseudocounts).log_odds()
        self.rc_pssm = self.pssm.reverse_complement()
        self.length = motif.length
        self.name = f"MotifScore({getattr(motif, 'matrix_id', None) or motif.name} {motif.name})"

    @property
    def max_score(self) -> float:
        """The best score any window can reach (the consensus)."""
        return float(self.pssm.max)

    def __call__(self, seqs: Sequence[str]) -> np.ndarray:
        from Bio.Seq import Seq

        out = np.full(len(seqs), np.nan)
        for i, s in enumerate(seqs):
            if not DNA.is_valid(s) or len(s) < self.length:
                continue
            seq = Seq(s.upper())
            fwd = np.atleast_1d(self.pssm.calculate(seq))
            rev = np.atleast_1d(self.rc_pssm.calculate(seq))
            out[i] = float(max(np.nanmax(fwd), np.nanmax(rev)))
        return out


class ARS1Activity:
    """Predicted ARS1 selection enrichment of 150-bp DNA strings (higher = more replication-origin activity).

    The oracle is a CNN (`oracle.ARS1CNN`) fit on log((selected_ct + 1)/(library_ct + 1)) of the
    ARS1 variant library in the logomaker wheel, standardised (0 = library mean, 1 = one library
    standard deviation); its held-out correlation is in `metadata` and in
    `weights/ars1-oracle.json`. Strings that are not 150 letters of ACGT score NaN.
    """

    name = "ARS1Activity"

    def __init__(self, path: str | Path | None = None, batch_size: int = 2048):
        if path is None:
            path = shipped(WEIGHTS, "ars1-oracle.safetensors", "ARS1 activity oracle")
        elif not Path(path).is_file():
            raise FileNotFoundError(f"no ARS1 oracle weights at {path}")
        self.net, self.metadata = load_oracle(Path(path))
        self.length = self.net.config["length"]
        self.batch_size = batch_size

    def onehot(self, tokens: torch.Tensor) -> torch.Tensor:
        """Long[B, L] token ids (A C G T = 0..3) -> float[B, 4, L]."""
        return torch.nn.functional.one_hot(tokens, 4).float().transpose(1, 2)

    def __call__(self, seqs: Sequence[str]) -> np.ndarray:
        out = np.full(len(seqs), np.nan)
        ok = [i for i, s in enumerate(seqs) if DNA.is_valid(s) and len(s) == self.length]
        if not ok:
            return out
        tokens = DNA.encode([seqs[i] for i in ok], length=self.length)
        preds = []
        with torch.no_grad():
            for start in range(0, tokens.shape[0], self.batch_size):
                preds.append(self.net(self.onehot(tokens[start : start + self.batch_size])))
        out[ok] = torch.cat(preds).double().numpy()
        return out


class RNAFold:
    """Negated folding free energy of an RNA string (kcal/mol): higher reward = more stable fold.

    ViennaRNA's minimum free energy (MFE) is better when lower, so the reward is -MFE (e.g. 30.0
    for a hairpin of MFE -30 kcal/mol). With `ensemble=True` the reward is instead the negated
    ensemble free energy from the partition function (-G_ensemble <= ... always >= -MFE).
    Letters: ACGU (any case; T is not accepted). Empty or invalid strings score NaN.
    """

    def __init__(self, ensemble: bool = False, temperature: float = 37.0):
        import RNA

        self.ensemble = ensemble
        self.temperature = temperature
        self._md = RNA.md()
        self._md.temperature = temperature
        self.name = "RNAFold(ensemble)" if ensemble else "RNAFold(mfe)"

    def energy(self, seq: str) -> float:
        """The MFE (or ensemble free energy) in kcal/mol of one valid ACGU string (not negated)."""
        import RNA

        fc = RNA.fold_compound(seq, self._md)
        _, mfe = fc.mfe()
        if not self.ensemble:
            return float(mfe)
        fc.exp_params_rescale(mfe)
        _, g = fc.pf()
        return float(g)

    def fold(self, seq: str) -> tuple[str, float]:
        """(dot-bracket MFE structure, MFE in kcal/mol) of one valid ACGU string."""
        import RNA

        structure, mfe = RNA.fold_compound(seq.upper(), self._md).mfe()
        return structure, float(mfe)

    def __call__(self, seqs: Sequence[str]) -> np.ndarray:
        out = np.full(len(seqs), np.nan)
        for i, s in enumerate(seqs):
            if isinstance(s, str) and s and set(s.upper()) <= set("ACGU"):
                out[i] = -self.energy(s.upper())
        return out


REWARDS = {
    "ars1": no_argument("ars1", ARS1Activity),
    "motif": lambda arg: MotifScore(arg) if arg else MotifScore(),
    "gc": no_argument("gc", GCContent),
    "mfe": lambda arg: RNAFold(ensemble=_mfe_mode(arg)),
}


def _mfe_mode(arg: str | None) -> bool:
    if arg in (None, "mfe"):
        return False
    if arg == "ensemble":
        return True
    raise ValueError(f"mfe takes no argument or =ensemble; got {arg!r}")


def load_reward(spec: str):
    """A reward by the name the command line uses: "ars1", "motif" or "motif=MA0265.3",
    "gc", "mfe" or "mfe=ensemble"."""
    name, _, arg = spec.partition("=")
    if name not in REWARDS:
        raise ValueError(f"unknown sequence reward {spec!r}; choose one of {', '.join(REWARDS)}")
    return REWARDS[name](arg or None)
