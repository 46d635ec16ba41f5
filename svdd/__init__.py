"""svdd: derivative-free, reward-guided sampling from pretrained diffusion models.

Soft Value-based Decoding in Diffusion models (SVDD; Li et al., arXiv 2408.08252): at every
denoising step draw M candidate next states from the pretrained model, score each with a soft
value estimate and keep one per sample. The reward may be any black box.

The package reads as a few wings, each importing only the ones below it:

    svdd.runs        batch generation: the `svdd` command, run directories, shards, plug-ins
    svdd.diffusers   the drop-in `SVDDScheduler` and the adapter for diffusers pipelines
    svdd.sampling    the methods behind `svdd.sample`, values, selection, counted calls
    svdd.processes   what is sampled: the process protocol, `MaskedDiffusion`, nets, toys
    svdd (base)      this public face (`api`) and the shared base: `rng`, `batched`,
                     `result`, `rewards`
"""

from . import masked, rewards  # masked: the documented path svdd.masked.MaskedDiffusion
from .api import check_arguments, sample
from .processes.masked import MaskedDiffusion
from .processes.protocol import DenoisingProcess
from .processes.uniform import UniformDiffusion
from .result import Result
from .sampling.scoring import RewardCache
from .sampling.values import LearnedValue, PosteriorMean, Value

__all__ = [
    "DenoisingProcess",
    "LearnedValue",
    "MaskedDiffusion",
    "PosteriorMean",
    "Result",
    "RewardCache",
    "UniformDiffusion",
    "Value",
    "check_arguments",
    "masked",
    "rewards",
    "sample",
]
__version__ = "0.1.0"
