"""`svdd.masked.MaskedDiffusion`, the documented path of `svdd.MaskedDiffusion`.

The class lives in `svdd.processes.masked`; this module keeps the path users already import.
"""

from .processes.masked import MaskedDiffusion, MaskedLMDiffusion

__all__ = ["MaskedDiffusion", "MaskedLMDiffusion"]
