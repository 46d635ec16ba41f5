"""ProteinMPNN on a fixed backbone as a masked-diffusion denoiser `(x_t, t) -> logits`.

ProteinMPNN is trained with random decoding orders, so its output at residue q given the
residues "decoded before" q is an any-order autoregressive conditional p(x_q | x_V, backbone).
Sequence information enters its decoder only through the order mask: node q reads the residue
type (and the decoder state) of neighbour j only when j comes before q in the order; otherwise
it reads j's structure features alone. So a partly masked sequence x_t is fed by building the
order mask from the visible set V = {i : x_t[i] != mask} instead of from a permutation:

- a masked q attends to every visible neighbour: ProteinMPNN's p(x_q | x_V) for the order
  "V first, then q"; masked neighbours contribute structure only, so they never leak;
- a visible q attends to the visible neighbours to its left (V decoded left to right), which
  makes the denoiser a deterministic function of x_t;
- slots without coordinates (numbering gaps, incomplete residues) are "decoded first", before
  every designed residue, with ProteinMPNN's unknown letter X, as in ProteinMPNN's own sampler.

The logits at every masked position then equal ProteinMPNN's `forward()` for the decoding order
(gaps, V left to right, q, the rest), and with everything masked they equal its
`unconditional_probs` (tests/test_proteins.py checks both). The time `t` is ignored: an any-order
model does not depend on how many residues are masked. The structure encoder runs once per
backbone, in the constructor; each call runs only the three decoder layers, `chunk` rows at a
time (about 4 rows per call is fastest on a CPU; per-row cost grows with the batch).

Token ids: 0..19 = `ACDEFGHIKLMNPQRSTVWY`, mask = 20 (ProteinMPNN's X slot, never read). The
logits drop X, as ProteinMPNN's samplers do by default, and are divided by the temperature.

The decoder layer is computed in an exactly rewritten form by default (`exact=False`): the first
linear map of each message is split into per-node products gathered onto the edges plus a
per-backbone edge term, and the last one is moved after the sum over neighbours. This is the
same function up to float rounding (|Δ log p| ~ 1e-5) at about half the CPU cost. `exact=True`
runs ProteinMPNN's own `DecLayer`, which reproduces `forward()` to the last bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from .alphabet import MASK_ID
from .backbone import Backbone, load_backbone
from .mpnn import DEFAULT_WEIGHTS, load_mpnn, mpnn_utils

NUM_LETTERS = 20


class MPNNDenoiser:
    """ProteinMPNN on one backbone: `denoiser(x Long[B, L], t float[B]) -> logits float[B, L, 20]`.

    Args:
        backbone: a `Backbone`, a shipped name ("1ubi") or a PDB path.
        chains: the chains to read when `backbone` is a file or a name (default: all).
        weights: ProteinMPNN weights "kind/name" (see `svdd.domains.proteins.mpnn`).
        temperature: the logits are divided by it (ProteinMPNN's sampling temperature; 0.1 is
            its usual design setting, 1.0 the model's own distribution).
        device: where the model runs.
        chunk: the most rows one decoder pass sees.
        exact: run ProteinMPNN's own decoder layers instead of the faster rewrite.

    L = `backbone.length`, the residues with coordinates; they are all designed.
    """

    def __init__(
        self,
        backbone: Backbone | str | Path,
        chains: str | Sequence[str] | None = None,
        *,
        weights: str = DEFAULT_WEIGHTS,
        temperature: float = 1.0,
        device: torch.device | str = "cpu",
        chunk: int = 4,
        exact: bool = False,
    ):
        if not isinstance(temperature, (int, float)) or not 0 < temperature < float("inf"):
            raise ValueError(f"temperature must be a positive number; got {temperature!r}")
        if not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"chunk must be a positive int; got {chunk!r}")
        self.backbone = load_backbone(backbone, chains)
        if self.backbone.length == 0:
            raise ValueError(f"backbone {self.backbone.name!r} has no residue with all of N, CA, C, O")
        self.weights = weights
        self.temperature = float(temperature)
        self.device = torch.device(device)
        self.chunk = chunk
        self.exact = exact
        self.model = load_mpnn(weights, str(self.device))
        self._encode()

    @property
    def length(self) -> int:
        """L, the number of designed residues."""
        return int(self.positions.numel())

    @torch.no_grad()
    def _encode(self) -> None:
        """Run the structure encoder once and keep what every decoder pass reuses (batch of one)."""
        utils = mpnn_utils()
        model = self.model
        f = self.backbone.features(self.device)
        mask = f["mask"]
        E, E_idx = model.features(f["X"], mask, f["residue_idx"], f["chain_encoding_all"])
        h_V = torch.zeros((1, E.shape[1], E.shape[-1]), device=self.device)
        h_E = model.W_e(E)
        attend = mask.unsqueeze(-1) * utils.gather_nodes(mask.unsqueeze(-1), E_idx).squeeze(-1)
        for layer in model.encoder_layers:
            h_V, h_E = layer(h_V, h_E, E_idx, mask, attend)
        self.E_idx = E_idx  # [1, N, K]
        self.h_V = h_V  # [1, N, H] encoder node states
        self.h_E = h_E  # [1, N, K, H]
        self.mask = mask  # [1, N]
        # [h_E_ij, 0, h_V_j]: what a node reads from a neighbour not decoded before it
        self.h_EXV_encoder = utils.cat_neighbors_nodes(
            h_V, utils.cat_neighbors_nodes(torch.zeros_like(h_V), h_E, E_idx), E_idx
        )
        present = mask[0].bool()
        self.positions = torch.nonzero(present).reshape(-1)  # [L] slots that are designed
        self.context = f["S"][0]  # [N] ProteinMPNN letters; X at slots without coordinates
        n = present.numel()
        # Decoding rank: undesigned slots first (slot order), then designed ones left to right.
        self.rank = torch.arange(n, device=self.device) + n * present.long()
        if not self.exact:
            self._prepare_fast()

    @torch.no_grad()
    def _prepare_fast(self) -> None:
        """Per-backbone pieces of the rewritten decoder layers (see the module docstring)."""
        H = self.h_V.shape[-1]
        self._fast = []
        for layer in self.model.decoder_layers:
            W = layer.W1.weight  # [H, 4H] acting on cat[h_V_i, h_E_ij, h_S_j, h_V_j]
            w_self, w_edge, w_seq, w_nb = W[:, :H], W[:, H : 2 * H], W[:, 2 * H : 3 * H], W[:, 3 * H :]
            edge = self.h_E[0] @ w_edge.T + layer.W1.bias  # [N, K, H], the same for every row
            self._fast.append((w_self, w_seq, w_nb, edge))
        self._enc_nb = [self.h_V[0] @ w_nb.T for (_, _, w_nb, _) in self._fast]  # [N, H] per layer

    # -- calls -----------------------------------------------------------------------------

    def __call__(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """Logits float[B, L, 20] / temperature for tokens x Long[B, L] (mask id 20); t is ignored."""
        return self.raw_logits(x)[..., :NUM_LETTERS] / self.temperature

    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """ProteinMPNN's own log-probabilities float[B, L, 21] (letters ACDEFGHIKLMNPQRSTVWYX, T = 1)."""
        return torch.log_softmax(self.raw_logits(x), dim=-1)

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """Mean log p per residue float64[B] of clean sequences x Long[B, L], decoded N to C.

        With nothing masked, residue i sees exactly the residues before it, so this is the
        N->C autoregressive log-likelihood under ProteinMPNN (21 letters, T = 1), deterministic.
        """
        if (x == MASK_ID).any():
            raise ValueError("log_likelihood takes clean sequences; x contains the mask id 20")
        lp = self.log_probs(x).double()
        return lp.gather(-1, x.unsqueeze(-1)).squeeze(-1).mean(dim=-1)

    def raw_logits(self, x: torch.Tensor) -> torch.Tensor:
        """ProteinMPNN's output logits float[B, L, 21] before any temperature, `chunk` rows at a time."""
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.length:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be token ids of shape [B, {self.length}]; got {got}")
        if x.dtype != torch.long:
            raise TypeError(f"x must hold Long token ids; got {x.dtype}")
        if x.numel() and (x.min() < 0 or x.max() > MASK_ID):
            raise ValueError(f"token ids must be in 0..{MASK_ID} (20 = mask); got {int(x.min())}..{int(x.max())}")
        x = x.to(self.device)
        with torch.no_grad():
            parts = [self._decode(x[s : s + self.chunk]) for s in range(0, x.shape[0], self.chunk)]
        if not parts:
            return torch.zeros((0, self.length, NUM_LETTERS + 1), device=self.device)
        return torch.cat(parts)

    # -- the decoder -----------------------------------------------------------------------

    def _inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Residue letters S Long[B, N] and the order mask float[B, N, K, 1] for tokens x [B, L]."""
        B = x.shape[0]
        S = self.context.expand(B, -1).clone()
        S[:, self.positions] = x
        visible = torch.ones_like(S, dtype=torch.bool)
        visible[:, self.positions] = x != MASK_ID
        E_idx = self.E_idx[0]  # [N, K]
        visible_nb = visible[:, E_idx]  # [B, N, K]
        before = (self.rank[E_idx] < self.rank[:, None]).unsqueeze(0)  # [1, N, K]
        attend = visible_nb & (before | ~visible.unsqueeze(-1))
        return S, attend.float().unsqueeze(-1)

    def _decode(self, x: torch.Tensor) -> torch.Tensor:
        """Logits float[B, L, 21] for one chunk."""
        S, mask_attend = self._inputs(x)
        out = self._decode_exact(S, mask_attend) if self.exact else self._decode_fast(S, mask_attend)
        return self.model.W_out(out[:, self.positions])

    def _decode_exact(self, S: torch.Tensor, mask_attend: torch.Tensor) -> torch.Tensor:
        """Decoder node states float[B, N, H] through ProteinMPNN's `DecLayer`s, as in its `forward()`."""
        utils = mpnn_utils()
        B = S.shape[0]
        E_idx = self.E_idx.expand(B, -1, -1)
        mask = self.mask.expand(B, -1)
        mask_1D = mask.view(B, -1, 1, 1)
        mask_bw = mask_1D * mask_attend
        mask_fw = mask_1D * (1.0 - mask_attend)
        h_ES = utils.cat_neighbors_nodes(self.model.W_s(S), self.h_E.expand(B, -1, -1, -1), E_idx)
        h_EXV_encoder_fw = mask_fw * self.h_EXV_encoder
        h_V = self.h_V.expand(B, -1, -1)
        for layer in self.model.decoder_layers:
            h_ESV = mask_bw * utils.cat_neighbors_nodes(h_V, h_ES, E_idx) + h_EXV_encoder_fw
            h_V = layer(h_V, h_ESV, mask)
        return h_V

    def _decode_fast(self, S: torch.Tensor, mask_attend: torch.Tensor) -> torch.Tensor:
        """The same node states, with W1 split per node and W3 applied after the neighbour sum.

        Message of edge (i, j) in `DecLayer`: W3 gelu(W2 gelu(W1 [h_V_i, h_E_ij, s_j, v_j]))
        with s_j = a_ij h_S_j and v_j = a_ij h_V_j + (1 - a_ij) h_Venc_j (a = order mask, for a
        node with coordinates; nodes without are zeroed by the layer's mask anyway). W1 is
        linear, so W1 [...] = A h_V_i + (B h_E_ij + b1) + a_ij (C h_S_j + D h_V_j - D h_Venc_j)
        + D h_Venc_j, where only the products A h_V, C h_S, D h_V are per row and per node.
        """
        B = S.shape[0]
        E_idx = self.E_idx[0]  # [N, K]
        a = mask_attend * self.mask.view(1, -1, 1, 1)  # [B, N, K, 1]
        h_S = self.model.W_s(S)  # [B, N, H]
        h_V = self.h_V.expand(B, -1, -1)
        mask = self.mask.view(1, -1, 1)
        K = E_idx.shape[1]
        for layer, (w_self, w_seq, w_nb, edge), enc_nb in zip(self.model.decoder_layers, self._fast, self._enc_nb):
            seen = h_S @ w_seq.T + h_V @ w_nb.T - enc_nb  # [B, N, H], what a decoded neighbour adds
            pre = (edge + enc_nb[E_idx]).unsqueeze(0) + a * seen[:, E_idx] + (h_V @ w_self.T).unsqueeze(2)
            hidden = layer.act(layer.W2(layer.act(pre)))  # [B, N, K, H]
            dh = (hidden.sum(dim=2) @ layer.W3.weight.T + K * layer.W3.bias) / layer.scale
            h_V = layer.norm1(h_V + dh)
            h_V = layer.norm2(h_V + layer.dense(h_V))
            h_V = mask * h_V
        return h_V
