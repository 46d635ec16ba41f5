"""Rewards for designed protein sequences, following the `svdd.rewards` protocol.

Each is a callable `list[str] -> np.ndarray[float64]`, always maximised. A sequence that is not
a non-empty string of the 20 standard amino acids (any case) scores NaN and never stops a batch.

Sequence descriptors from Biopython's `ProteinAnalysis` (ProtParam; composition only, no structure):

- `InstabilityIndex()`: -II (Guruprasad et al. 1990; II < 40 is called "stable"); lower II is
  better, so the reward is negated.
- `GRAVY()`: grand average of hydropathy (Kyte-Doolittle); higher = more hydrophobic. For
  soluble designs weight it negatively (as `developability` does).
- `IsoelectricTarget(target, window)`: -max(0, |pI - target| - window); 0 inside the window.
- `Charge(pH, target)`: net charge at pH (default 7); with a target, -|charge - target|.
- `Aromaticity()`: fraction of F, W, Y.
- `SecondaryStructureFraction(kind)`: fraction of residues ProtParam counts as helix-prone
  (V I Y F W L), turn-prone (N P G S) or sheet-prone (E M A L); a composition statistic, not a
  prediction of secondary structure.

From ProteinMPNN:

- `MPNNLogLikelihood(backbone)`: mean log p per residue (nats) of the sequence on a backbone,
  decoded N to C (deterministic). On the design's own backbone it is a naturalness /
  self-consistency reward; on a second backbone of the same length it is the term to *lower*
  for negative design: `WeightedSum([(MPNNLogLikelihood(a), 1.0), (MPNNLogLikelihood(b), -1.0)])`.

`developability()` combines instability, hydropathy and (optionally) ProteinMPNN's
log-likelihood with `svdd.rewards.WeightedSum`.

`load_reward("pi=9")` builds a reward from the name the command line uses (see `REWARDS`).

Composition rewards are easy to game (a handful of residues moves the instability index a lot):
report ProteinMPNN's likelihood and native recovery beside them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from svdd.rewards import WeightedSum
from svdd.runs.plugins import no_argument

from .alphabet import encode, is_protein
from .backbone import Backbone
from .denoiser import MPNNDenoiser
from .mpnn import DEFAULT_WEIGHTS


class _ProtParamReward:
    """Base: `value(ProteinAnalysis) -> float` on every valid sequence, NaN for the others."""

    name = "ProtParam"

    def value(self, analysis: Any) -> float:
        raise NotImplementedError

    def __call__(self, sequences: Sequence[str]) -> np.ndarray:
        from Bio.SeqUtils.ProtParam import ProteinAnalysis

        out = np.full(len(sequences), np.nan)
        for i, s in enumerate(sequences):
            if is_protein(s):
                out[i] = self.value(ProteinAnalysis(s.upper()))
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class InstabilityIndex(_ProtParamReward):
    """-(instability index) of Guruprasad et al. (1990): lower II is more stable, so the reward is -II.

    Proteins with II below 40 are called stable; native ubiquitin has II = 36.1 (reward -36.1).
    """

    name = "-InstabilityIndex"

    def value(self, analysis: Any) -> float:
        return -float(analysis.instability_index())


class GRAVY(_ProtParamReward):
    """Grand average of hydropathy (Kyte-Doolittle scale): higher = more hydrophobic (not negated)."""

    name = "GRAVY"

    def value(self, analysis: Any) -> float:
        return float(analysis.gravy())


class IsoelectricTarget(_ProtParamReward):
    """-max(0, |pI - target| - window): 0 when the isoelectric point is within `window` of `target`.

    Args:
        target: the wanted pI (e.g. 9 for a basic protein).
        window: the half-width of the band that counts as on target (0: exactly the distance).
    """

    def __init__(self, target: float = 7.0, window: float = 0.0):
        for arg, v in (("target", target), ("window", window)):
            if not isinstance(v, (int, float)) or not np.isfinite(v):
                raise ValueError(f"{arg} must be a finite number; got {v!r}")
        if not 0 <= target <= 14:
            raise ValueError(f"target must be a pH in [0, 14]; got {target!r}")
        if window < 0:
            raise ValueError(f"window must be >= 0; got {window!r}")
        self.target, self.window = float(target), float(window)
        self.name = f"-|pI-{self.target:g}|" + (f"(±{self.window:g})" if self.window else "")

    def value(self, analysis: Any) -> float:
        return -max(0.0, abs(float(analysis.isoelectric_point()) - self.target) - self.window)


class Charge(_ProtParamReward):
    """Net charge at `pH` (Henderson-Hasselbalch with ProtParam's pKa values), or -|charge - target|.

    Without `target` the reward is the charge itself (higher = more positive; negate it with
    `svdd.rewards.negated` for negatively charged designs).
    """

    def __init__(self, pH: float = 7.0, target: float | None = None):
        if not isinstance(pH, (int, float)) or not 0 <= pH <= 14:
            raise ValueError(f"pH must be a number in [0, 14]; got {pH!r}")
        if target is not None and (not isinstance(target, (int, float)) or not np.isfinite(target)):
            raise ValueError(f"target must be a finite number or None; got {target!r}")
        self.pH, self.target = float(pH), None if target is None else float(target)
        self.name = f"Charge(pH {self.pH:g})" if target is None else f"-|Charge(pH {self.pH:g})-{self.target:g}|"

    def value(self, analysis: Any) -> float:
        charge = float(analysis.charge_at_pH(self.pH))
        return charge if self.target is None else -abs(charge - self.target)


class Aromaticity(_ProtParamReward):
    """Fraction of aromatic residues (F, W, Y) (Lobry and Gautier 1994)."""

    name = "Aromaticity"

    def value(self, analysis: Any) -> float:
        return float(analysis.aromaticity())


class SecondaryStructureFraction(_ProtParamReward):
    """Fraction of helix-prone (V I Y F W L), turn-prone (N P G S) or sheet-prone (E M A L) residues.

    This is ProtParam's composition statistic, not a structure prediction.
    """

    KINDS = ("helix", "turn", "sheet")

    def __init__(self, kind: str = "helix"):
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {', '.join(self.KINDS)}; got {kind!r}")
        self.kind = kind
        self.name = f"{kind}_fraction"

    def value(self, analysis: Any) -> float:
        return float(analysis.secondary_structure_fraction()[self.KINDS.index(self.kind)])


class MPNNLogLikelihood:
    """ProteinMPNN's mean log-probability per residue (nats) of a sequence on a backbone, decoded N to C.

    One decoder pass per sequence (the structure encoder runs once, here). Deterministic: every
    residue is conditioned on the residues before it, so this is the autoregressive
    log-likelihood in the N->C order, over ProteinMPNN's 21 letters at T = 1 (the native of
    ubiquitin scores about -1.34). Sequences of another length than the backbone's, or not of
    the 20 amino acids, score NaN.

    Args:
        backbone: a shipped name, a PDB path, a `Backbone`, or an `MPNNDenoiser` to reuse.
        chains, weights, device, chunk: as in `load_pretrained` (ignored for an `MPNNDenoiser`).
    """

    def __init__(
        self,
        backbone: str | Path | Backbone | MPNNDenoiser = "1ubi",
        chains: str | None = None,
        *,
        weights: str = DEFAULT_WEIGHTS,
        device: str = "cpu",
        chunk: int = 4,
    ):
        if isinstance(backbone, MPNNDenoiser):
            self.denoiser = backbone
        else:
            self.denoiser = MPNNDenoiser(backbone, chains, weights=weights, device=device, chunk=chunk)
        self.length = self.denoiser.length
        self.name = f"MPNNLogLikelihood({self.denoiser.backbone.name})"

    def __call__(self, sequences: Sequence[str]) -> np.ndarray:
        out = np.full(len(sequences), np.nan)
        ok = [i for i, s in enumerate(sequences) if is_protein(s) and len(s) == self.length]
        if ok:
            x = encode([sequences[i] for i in ok], length=self.length)
            out[ok] = self.denoiser.log_likelihood(x).cpu().numpy()
        return out

    def __repr__(self) -> str:
        return f"MPNNLogLikelihood({self.denoiser.backbone.name!r}, L={self.length})"


def developability(
    backbone: str | Path | Backbone | MPNNDenoiser | None = None,
    *,
    instability: float = 1 / 40,
    hydropathy: float = 1.0,
    naturalness: float = 1.0,
) -> WeightedSum:
    """A composite developability reward: `svdd.rewards.WeightedSum` of

    - `instability` x (-II): -1 at the "stable" threshold II = 40 with the default weight 1/40;
    - `hydropathy` x (-GRAVY): favours hydrophilic, soluble sequences;
    - with a `backbone`, `naturalness` x ProteinMPNN's log-likelihood per residue on it, so that
      the design keeps fitting its fold while the composition terms move.
    """
    terms: list[tuple[Any, float]] = [(InstabilityIndex(), float(instability)), (GRAVY(), -float(hydropathy))]
    if backbone is not None:
        terms.append((MPNNLogLikelihood(backbone), float(naturalness)))
    return WeightedSum(terms, name="developability")


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} must be a number; got {text!r}") from None
    if not np.isfinite(value):
        raise ValueError(f"{what} must be finite; got {text!r}")
    return value


def _pi(arg: str | None) -> IsoelectricTarget:
    if not arg:
        raise ValueError("reward pi needs a target pI: pi=TARGET or pi=TARGET,WINDOW (e.g. pi=9 or pi=9,0.5)")
    target, _, window = arg.partition(",")
    return IsoelectricTarget(_number(target, "pi target"), _number(window, "pi window") if window else 0.0)


def _charge(arg: str | None) -> Charge:
    return Charge(target=_number(arg, "charge target") if arg else None)


REWARDS: dict[str, Callable[[str | None], Any]] = {
    "instability": no_argument("instability", InstabilityIndex),
    "gravy": no_argument("gravy", GRAVY),
    "pi": _pi,  # pi=TARGET[,WINDOW]
    "charge": _charge,  # charge[=TARGET]
    "aromaticity": no_argument("aromaticity", Aromaticity),
    "helix": no_argument("helix", lambda: SecondaryStructureFraction("helix")),
    "turn": no_argument("turn", lambda: SecondaryStructureFraction("turn")),
    "sheet": no_argument("sheet", lambda: SecondaryStructureFraction("sheet")),
    "mpnn": lambda arg: MPNNLogLikelihood(arg or "1ubi"),  # mpnn[=BACKBONE]
    "developability": lambda arg: developability(arg or None),  # developability[=BACKBONE]
}


def load_reward(spec: str) -> Any:
    """A reward by the name the command line uses: "instability", "gravy", "pi=9" or "pi=9,0.5",
    "charge" or "charge=-2", "aromaticity", "helix", "turn", "sheet", "mpnn" or "mpnn=BACKBONE"
    (a shipped name or a PDB path; default 1ubi), "developability" or "developability=BACKBONE"."""
    name, _, arg = spec.partition("=")
    if name not in REWARDS:
        raise ValueError(f"unknown protein reward {spec!r}; choose one of {', '.join(REWARDS)}")
    return REWARDS[name](arg or None)
