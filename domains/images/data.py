"""Fashion-MNIST from the Debian package `dataset-fashion-mnist` (training scripts only).

Install with `apt-get install -y dataset-fashion-mnist` (or `make train-images`). The files are
idx-format, gzip-compressed: `/usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`.
Tests and runtime code never read them; they use the shipped weights.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")


def _read_idx(path: Path) -> np.ndarray:
    """Parse one gzip idx file (magic 0x0000_08_NN: unsigned bytes, NN dims) into a uint8 array."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    magic = int.from_bytes(raw[0:4], "big")
    if magic >> 8 != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file (magic {magic:#x})")
    ndim = magic & 0xFF
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(split: str = "train", data_dir: Path | str = DATA_DIR):
    """Return (images uint8 [n, 28, 28], labels int64 [n]) for split "train" (60k) or "test" (10k)."""
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    data_dir = Path(data_dir)
    img_path = data_dir / f"{prefix}-images-idx3-ubyte.gz"
    if not img_path.exists():
        raise FileNotFoundError(
            f"{img_path} not found: install the Debian package with "
            "`apt-get update && apt-get install -y dataset-fashion-mnist` (or run `make train-images`)"
        )
    images = _read_idx(img_path)
    labels = _read_idx(data_dir / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    return images, labels


def to_model_space(images: np.ndarray) -> torch.Tensor:
    """uint8 [n, 28, 28] -> float32 [n, 1, 32, 32] in [-1, 1] (zero-padded by 2 pixels = black)."""
    x = torch.from_numpy(np.array(images, copy=True)).float().div(127.5).sub(1.0)
    return F.pad(x[:, None], (2, 2, 2, 2), value=-1.0)
