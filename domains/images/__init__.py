"""Images domain: a Fashion-MNIST DDPM, JPEG-compressibility and classifier rewards, an MC value net.

    from svdd.domains.images import load_pretrained, JPEGCompressibility, ClassifierReward, load_value
    pipe = load_pretrained()                  # diffusers DDPMPipeline, offline, 1x32x32
    r = JPEGCompressibility()                 # -(JPEG kB at quality 95), the paper's reward
    c = ClassifierReward("sneaker")           # log p(sneaker | x) under the shipped CNN
    v = svdd.LearnedValue(load_value("jpeg")) # SVDD-MC value for JPEGCompressibility()

All weights live in `domains/images/weights/` and were trained by the scripts in this package
on the Debian `dataset-fashion-mnist` data (`make train-images`).
"""
from .classifier import FashionCNN, load_classifier
from .data import CLASS_NAMES
from .pretrained import DDPM_DIR, load_pretrained
from .process import make_process
from .rewards import ClassifierReward, JPEGCompressibility, class_index
from .value import ValueNet, load_value, value_metadata

__all__ = ["load_pretrained", "JPEGCompressibility", "ClassifierReward", "load_value", "ValueNet",
           "value_metadata", "make_process", "load_classifier", "FashionCNN", "CLASS_NAMES", "class_index", "DDPM_DIR"]
