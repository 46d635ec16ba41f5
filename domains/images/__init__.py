"""Images domain: a Fashion-MNIST DDPM, JPEG-compressibility and classifier rewards, MC value nets.

    from svdd.domains.images import load_pretrained, load_value, JPEGCompressibility, ClassifierReward
    process = load_pretrained()             # svdd.diffusers.DiffusersProcess, 1x32x32, offline
    pipe = process.pipeline                 # the diffusers DDPMPipeline (or load_pipeline())
    r = JPEGCompressibility()               # -(JPEG kB at quality 95), the paper's reward
    c = ClassifierReward("sneaker")         # log p(sneaker | x) under the shipped CNN
    v = load_value("jpeg")                  # svdd.LearnedValue: SVDD-MC value for JPEGCompressibility()

All weights ship inside the package (`weights/`) and were trained by the scripts in this package
on the Debian `dataset-fashion-mnist` data (`make train-images` in a clone).
"""

from .classifier import FashionCNN, load_classifier
from .data import CLASS_NAMES
from .pretrained import DDPM_DIR, DIT_FLOW_DIR, load_pipeline, load_pretrained
from .rewards import ClassifierReward, JPEGCompressibility, class_index, load_reward
from .value import ValueNet, load_value, load_value_net, value_metadata

__all__ = [
    "CLASS_NAMES",
    "DDPM_DIR",
    "DIT_FLOW_DIR",
    "ClassifierReward",
    "FashionCNN",
    "JPEGCompressibility",
    "ValueNet",
    "class_index",
    "load_classifier",
    "load_pipeline",
    "load_pretrained",
    "load_reward",
    "load_value",
    "load_value_net",
    "value_metadata",
]
