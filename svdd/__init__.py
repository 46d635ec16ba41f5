"""svdd: derivative-free, reward-guided sampling from pretrained diffusion models.

Soft Value-based Decoding in Diffusion models (SVDD; Li et al., arXiv 2408.08252): at every
denoising step draw M candidate next states from the pretrained model, score each with a soft
value estimate and keep one per sample. The reward may be any black box.
"""

from . import rewards
from .api import sample
from .process import DenoisingProcess
from .result import Result
from .scoring import RewardCache
from .values import LearnedValue, PosteriorMean

__all__ = ["DenoisingProcess", "LearnedValue", "PosteriorMean", "Result", "RewardCache", "rewards", "sample"]
__version__ = "0.1.0"
