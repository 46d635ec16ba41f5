"""Turning the objects a reward receives into image tensors.

Accepted per object: a torch tensor [C, H, W] or [H, W] with values in [0, 1] (what the diffusers
adapter's `decode` returns), a numpy array [H, W], [H, W, C] or [C, H, W] (float in [0, 1] or
uint8 in [0, 255]), or a PIL image. C is 1 (grey), 3 (RGB) or 4 (RGBA, alpha dropped).
A whole batch may also be passed as one tensor/array [n, C, H, W].
An image with a non-finite value is *invalid* (its reward is NaN); an object that is not an
image at all is a `TypeError` naming what was received and what is accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

ACCEPTED = (
    "a torch tensor [C, H, W] or [H, W] in [0, 1], a numpy array [H, W], [H, W, C] or "
    "[C, H, W] (float in [0, 1] or uint8), or a PIL image; C in {1, 3, 4}"
)


def as_list(objects: Any) -> list:
    """A batch as a list of per-image objects (a 4-D tensor/array is split along dim 0)."""
    if isinstance(objects, (torch.Tensor, np.ndarray)):
        if objects.ndim == 4:
            return list(objects)
        raise TypeError(
            f"an image reward takes a list of images or one [n, C, H, W] batch; got a "
            f"{type(objects).__name__} of shape {tuple(objects.shape)}"
        )
    if isinstance(objects, (str, bytes)) or not isinstance(objects, Sequence):
        try:
            return list(objects)
        except TypeError:
            raise TypeError(f"an image reward takes a list of images; got {type(objects).__name__}") from None
    return list(objects)


def to_chw(obj: Any) -> torch.Tensor:
    """One image as float32 [C, H, W] in [0, 1], C in {1, 3}; may contain NaN (= invalid).

    Raises TypeError for objects that are not images (see `ACCEPTED`).
    """
    if isinstance(obj, torch.Tensor):
        x = obj.detach().to("cpu")
        x = x.float() if x.is_floating_point() else x.float() / 255.0
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[0] not in (1, 3, 4):
            raise TypeError(
                f"image tensor must be [C, H, W] with C in (1, 3, 4) or [H, W]; got shape "
                f"{tuple(obj.shape)}. Accepted: {ACCEPTED}"
            )
    elif isinstance(obj, np.ndarray):
        if obj.dtype == np.uint8:
            arr = obj.astype(np.float32) / 255.0
        elif np.issubdtype(obj.dtype, np.floating) or np.issubdtype(obj.dtype, np.integer):
            arr = obj.astype(np.float32)
        else:
            raise TypeError(f"image array has dtype {obj.dtype}; accepted: {ACCEPTED}")
        if arr.ndim == 2:
            arr = arr[None]
        elif arr.ndim == 3 and arr.shape[-1] in (1, 3, 4) and arr.shape[0] not in (1, 3, 4):
            arr = np.moveaxis(arr, -1, 0)
        if arr.ndim != 3 or arr.shape[0] not in (1, 3, 4):
            raise TypeError(
                f"image array must be [H, W], [H, W, C] or [C, H, W]; got shape {obj.shape}. Accepted: {ACCEPTED}"
            )
        x = torch.from_numpy(np.ascontiguousarray(arr))
    elif _is_pil(obj):
        mode = "L" if obj.mode in ("1", "L", "I", "F", "I;16") else "RGB"
        arr = np.asarray(obj.convert(mode), dtype=np.float32) / 255.0
        x = torch.from_numpy(arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0).copy())
    else:
        raise TypeError(f"cannot read a {type(obj).__name__} as an image; accepted: {ACCEPTED}")
    if x.shape[0] == 4:
        x = x[:3]
    return x


def is_valid(x: torch.Tensor) -> bool:
    """An image is valid when it is non-empty and all its values are finite."""
    return x.numel() > 0 and bool(torch.isfinite(x).all())


def to_uint8_hwc(x: torch.Tensor) -> np.ndarray:
    """float [C, H, W] in [0, 1] (clamped) -> uint8 [H, W] (C = 1) or [H, W, 3]."""
    arr = (x.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).numpy()
    return arr[0] if arr.shape[0] == 1 else np.moveaxis(arr, 0, -1)


def _is_pil(obj: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is in the images extra
        return False
    return isinstance(obj, Image.Image)
