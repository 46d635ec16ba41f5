"""A small Fashion-MNIST CNN (plain torch.nn), the model behind `ClassifierReward`.

Input: float [n, 1, 32, 32] in [-1, 1] (the DDPM's space; images in [0, 1] are mapped by the
reward). Output: logits [n, 10] over `CLASS_NAMES`. Weights: `weights/classifier.safetensors` (+
`.json`: config and test accuracy), trained by `python -m svdd.domains.images.train_classifier`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from svdd.processes.weights import load_net

from ..weights import shipped
from .data import CLASS_NAMES

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
CLASSIFIER_PATH = WEIGHTS_DIR / "classifier.safetensors"


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class FashionCNN(nn.Module):
    """Three conv blocks (32 -> 16 -> 8 -> 4 px) and a linear head; ~0.3 M parameters."""

    def __init__(self, width: int = 32, num_classes: int = len(CLASS_NAMES)):
        super().__init__()
        self.config = {"width": width, "num_classes": num_classes}
        self.features = nn.Sequential(_block(1, width), _block(width, 2 * width), _block(2 * width, 2 * width))
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(2 * width * 16, 128), nn.ReLU(), nn.Linear(128, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: float [n, 1, 32, 32] in [-1, 1] -> logits [n, num_classes]."""
        return self.head(self.features(x))


def load_classifier(path: Path | str = CLASSIFIER_PATH) -> FashionCNN:
    """The shipped classifier in eval mode (CPU)."""
    path = Path(path)
    if path == CLASSIFIER_PATH:
        shipped(WEIGHTS_DIR, "classifier.safetensors", "Fashion-MNIST classifier")
    elif not path.exists():
        raise FileNotFoundError(f"no classifier weights at {path}")
    net, _ = load_net(path, nets={"FashionCNN": FashionCNN})
    return net
