"""What designers report next to a reward: native sequence recovery and ProteinMPNN's score."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from .alphabet import encode, is_protein

if TYPE_CHECKING:
    from .denoiser import MPNNDenoiser


def recovery(sequences: Sequence[str], native: str) -> np.ndarray:
    """Fraction of positions where each sequence equals `native`, float64 [n].

    Positions where the native residue is unknown ("X") are left out. A sequence that is not
    the 20 amino acids, or not of the native's length, scores NaN.
    """
    if not isinstance(native, str) or not native:
        raise ValueError(f"native must be a non-empty one-letter sequence; got {native!r}")
    known = np.array([c != "X" for c in native.upper()])
    if not known.any():
        raise ValueError("native has no known residue (all 'X'); recovery is undefined")
    ref = np.frombuffer(native.upper().encode("ascii"), dtype=np.uint8)
    out = np.full(len(sequences), np.nan)
    for i, s in enumerate(sequences):
        if is_protein(s) and len(s) == len(native):
            seq = np.frombuffer(s.upper().encode("ascii"), dtype=np.uint8)
            out[i] = float((seq == ref)[known].mean())
    return out


def mpnn_score(
    denoiser: MPNNDenoiser, sequences: Sequence[str], num_orders: int = 4, seed: int = 0, batch: int = 8
) -> np.ndarray:
    """ProteinMPNN's "score" of each sequence on the denoiser's backbone: mean NLL per residue, float64 [n].

    As ProteinMPNN's command line computes it: its `forward()` with random decoding orders
    (here `num_orders` of them, seeded by `seed`, the same orders for every sequence), the
    negative log-probability of each residue over its 21 letters, averaged over the residues
    with coordinates and over the orders. Lower = more native-like. Invalid sequences, or ones
    of another length, score NaN.
    """
    if not isinstance(num_orders, int) or num_orders < 1:
        raise ValueError(f"num_orders must be a positive int; got {num_orders!r}")
    out = np.full(len(sequences), np.nan)
    ok = [i for i, s in enumerate(sequences) if is_protein(s) and len(s) == denoiser.length]
    if not ok:
        return out
    x = encode([sequences[i] for i in ok], length=denoiser.length).to(denoiser.device)
    f = denoiser.backbone.features(denoiser.device)
    n_slots = f["X"].shape[1]
    g = torch.Generator().manual_seed(seed)
    orders = [torch.randn(1, n_slots, generator=g) for _ in range(num_orders)]
    mask = f["mask"]
    total = torch.zeros(x.shape[0], dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, x.shape[0], batch):
            xb = x[start : start + batch]
            B = xb.shape[0]
            S = f["S"].expand(B, -1).clone()
            S[:, denoiser.positions] = xb
            args = (
                f["X"].expand(B, -1, -1, -1),
                S,
                mask.expand(B, -1),
                mask.expand(B, -1),
                f["residue_idx"].expand(B, -1),
                f["chain_encoding_all"].expand(B, -1),
            )
            for randn in orders:
                log_probs = denoiser.model(*args, randn.expand(B, -1).to(denoiser.device))
                nll = -log_probs.gather(-1, S.unsqueeze(-1)).squeeze(-1)
                total[start : start + B] += ((nll * mask).sum(-1) / mask.sum(-1)).double().cpu()
    out[ok] = (total / num_orders).numpy()
    return out


__all__ = ["mpnn_score", "recovery"]
