"""Image rewards: JPEG compressibility (the paper's) and a Fashion-MNIST class log-probability.

Both follow the `svdd.rewards` protocol: `reward(images: list) -> np.ndarray float64 [n]`,
always maximized; an invalid image (a non-finite value) scores NaN and never crashes the batch;
an object that is not an image raises a `TypeError` naming it (see `svdd.domains.images.images`).
"""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .classifier import CLASSIFIER_PATH, load_classifier
from .data import CLASS_NAMES
from .images import as_list, is_valid, to_chw, to_uint8_hwc


class JPEGCompressibility:
    """r(x) = -(size of x as a JPEG at `quality`, in kB = 1000 bytes); higher = more compressible.

    As in the paper (and DDPO): images in [0, 1] are quantized to uint8 and encoded with PIL
    (grey images as mode "L", colour as "RGB"). Cost: ~50 µs per 32x32 image.
    """

    def __init__(self, quality: int = 95):
        if not isinstance(quality, int) or not 1 <= quality <= 100:
            raise ValueError(f"quality must be an int in [1, 100]; got {quality!r}")
        self.quality = quality
        self.name = f"jpeg_compressibility_q{quality}"

    def size_kb(self, x: torch.Tensor) -> float:
        """JPEG size in kB of one image float [C, H, W] in [0, 1]."""
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(to_uint8_hwc(x)).save(buf, format="JPEG", quality=self.quality)
        return buf.tell() / 1000.0

    def __call__(self, images: Any) -> np.ndarray:
        out = []
        for obj in as_list(images):
            x = to_chw(obj)
            out.append(-self.size_kb(x) if is_valid(x) else np.nan)
        return np.asarray(out, dtype=np.float64)

    def __repr__(self) -> str:
        return f"JPEGCompressibility(quality={self.quality})"


def _key(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


_ALIASES = {_key(n): i for i, n in enumerate(CLASS_NAMES)}
_ALIASES.update(
    {
        "tshirttop": 0,
        "top": 0,
        "tee": 0,
        "sweater": 2,
        "boot": 9,
        "boots": 9,
        "ankleboots": 9,
        "trousers": 1,
        "pants": 1,
        "sneakers": 7,
        "sandals": 5,
        "bags": 8,
    }
)


def class_index(class_: int | str) -> int:
    """The Fashion-MNIST class index of a name ("trouser", "Ankle boot", "t-shirt/top", ...) or int."""
    if isinstance(class_, (int, np.integer)) and not isinstance(class_, bool):
        if 0 <= int(class_) < len(CLASS_NAMES):
            return int(class_)
        raise ValueError(f"class index must be in [0, {len(CLASS_NAMES) - 1}]; got {class_}")
    if isinstance(class_, str) and _key(class_) in _ALIASES:
        return _ALIASES[_key(class_)]
    raise ValueError(
        f"unknown Fashion-MNIST class {class_!r}; accepted: an index 0-9 or one of {', '.join(CLASS_NAMES)}"
    )


def to_classifier_input(x: torch.Tensor) -> torch.Tensor:
    """float [C, H, W] in [0, 1] -> float [1, 32, 32] in [-1, 1] (grey; 28x28 padded, else resized)."""
    x = x.clamp(0.0, 1.0)
    if x.shape[0] == 3:
        x = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]
    if x.shape[-2:] == (28, 28):
        x = F.pad(x, (2, 2, 2, 2), value=0.0)
    elif x.shape[-2:] != (32, 32):
        x = F.interpolate(x[None], size=(32, 32), mode="bilinear", antialias=True, align_corners=False)[0]
    return x * 2.0 - 1.0


class ClassifierReward:
    """r(x) = log p(class_ | x) under the shipped Fashion-MNIST CNN (≤ 0; higher = more that class).

    class_: an index 0-9 or a name from `CLASS_NAMES` ("t-shirt", "trouser", "pullover", "dress",
    "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"; case, spaces and dashes ignored).
    Images go through the classifier in chunks of `batch_size`.
    """

    def __init__(self, class_: int | str, *, batch_size: int = 256, weights=CLASSIFIER_PATH):
        self.class_index = class_index(class_)
        self.class_name = CLASS_NAMES[self.class_index]
        self.batch_size = batch_size
        self.net = load_classifier(weights)
        self.name = f"log_p({self.class_name.replace(' ', '_')})"

    def log_probs(self, images: Any) -> np.ndarray:
        """Log-probabilities float64 [n, 10] of every class; rows of invalid images are NaN."""
        xs = [to_chw(obj) for obj in as_list(images)]
        out = np.full((len(xs), len(CLASS_NAMES)), np.nan)
        ok = [i for i, x in enumerate(xs) if is_valid(x)]
        with torch.no_grad():
            for s in range(0, len(ok), self.batch_size):
                idx = ok[s : s + self.batch_size]
                batch = torch.stack([to_classifier_input(xs[i]) for i in idx])
                out[idx] = F.log_softmax(self.net(batch).double(), dim=-1).numpy()
        return out

    def __call__(self, images: Any) -> np.ndarray:
        return self.log_probs(images)[:, self.class_index]

    def __repr__(self) -> str:
        return f"ClassifierReward({self.class_name!r})"


def load_reward(spec: str):
    """A reward by the name the command line uses: "jpeg", or "classifier=<class>" (default
    "sneaker"; a class name or index, see `CLASS_NAMES`)."""
    name, _, arg = spec.partition("=")
    if name == "jpeg":
        if arg:
            raise ValueError(f"jpeg takes no argument; got {spec!r}")
        return JPEGCompressibility()
    if name == "classifier":
        return ClassifierReward(arg or "sneaker")
    raise ValueError(f"unknown image reward {spec!r}; choose jpeg or classifier=<class>")


REWARD_NAMES = ("jpeg", "classifier")
