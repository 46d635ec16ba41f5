"""processes: what is sampled.

- `protocol`: the `DenoisingProcess` protocol (prior, timesteps, model, transition, denoised,
  decode) and its check;
- `masked`: `MaskedDiffusion`, masked (absorbing-state) discrete diffusion; `masked_lm`: the
  adapter that wraps a third-party masked model (`MaskedDiffusion.from_masked_lm`);
- `uniform`: `UniformDiffusion`, uniform-noise discrete diffusion (D3PM/SEDD-uniform);
- `nets`: small token-sequence networks (denoisers, value networks); `weights`: their weight
  files (safetensors + JSON, never unpickled) and resumable checkpoints;
  `training`: the masked-diffusion objective, training loop and ELBO;
- `toys`: processes where everything is exact (enumerable masked chains, Gaussian mixtures).

Imports: the shared base only (`svdd.rng`, `svdd.batched`); never `svdd.sampling`, `svdd.runs`
or `svdd.diffusers`.
"""

from .masked import MaskedDiffusion
from .protocol import DenoisingProcess, check_process
from .toys import ExactChain, GaussianMixtureDiffusion, MaskedToy, UniformToy
from .training import elbo
from .uniform import UniformDiffusion

__all__ = [
    "DenoisingProcess",
    "ExactChain",
    "GaussianMixtureDiffusion",
    "MaskedDiffusion",
    "MaskedToy",
    "UniformDiffusion",
    "UniformToy",
    "check_process",
    "elbo",
]
