"""sampling: the machinery behind `svdd.sample`.

- `samplers`: the methods (pretrained, best_of_n, svdd, svdd_r, smc, refine, dps), one function
  each with one signature, `METHODS` the table `svdd.sample` dispatches on; `fk` (FK steering)
  and `beam` (beam search) are methods in modules of their own;
- `values`: soft value estimates (`PosteriorMean`, `LearnedValue`, the `Value` protocol);
  `value_training`: rollouts of a pretrained model and the regression of an MC value on them;
- `calls`: counted, timed calls into the process, reward and value (`Calls`); `scoring`:
  de-duplication, caches and overlap of reward work; `selection` and `particles`: choosing one
  candidate, resampling populations; `options`: method options checked before any work;
  `outcome`: what the methods hand back.

Imports: the shared base (`svdd.rng`, `svdd.batched`, `svdd.rewards`, `svdd.result`) and
`svdd.processes` (value training builds its network there); never `svdd.runs` or `svdd.diffusers`.
"""

from .calls import Calls
from .samplers import METHODS
from .selection import resample, select
from .value_training import Rollouts, collect_rollouts, fit_value, value_correlation
from .values import LearnedValue, PosteriorMean, Value

__all__ = [
    "METHODS",
    "Calls",
    "LearnedValue",
    "PosteriorMean",
    "Rollouts",
    "Value",
    "collect_rollouts",
    "fit_value",
    "resample",
    "select",
    "value_correlation",
]
