"""Random draws that honour a single `torch.Generator` or one generator per batch row.

A `GeneratorLike` is `None`, a `torch.Generator`, or a sequence of generators with one entry
per batch row (the diffusers convention). With a list, row `i` of every draw comes from
`generator[i]` alone, so a sample's randomness does not depend on which other samples share
its batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeGuard

import torch

GeneratorLike = None | torch.Generator | Sequence[torch.Generator]


def is_per_row(generator: GeneratorLike) -> TypeGuard[Sequence[torch.Generator]]:
    """True when `generator` is a sequence with one generator per row."""
    return isinstance(generator, (list, tuple))


def check_generator(generator: GeneratorLike, rows: int, what: str = "generator") -> None:
    """Raise a clear error unless `generator` is None, a Generator, or `rows` Generators."""
    if generator is None or isinstance(generator, torch.Generator):
        return
    if not is_per_row(generator):
        raise TypeError(
            f"{what} must be None, a torch.Generator or a list of torch.Generator "
            f"(one per sample); got {type(generator).__name__}"
        )
    if len(generator) != rows:
        raise ValueError(
            f"{what} is a list of {len(generator)} generators but the batch has {rows} rows; "
            "pass exactly one generator per sample"
        )
    bad = [type(g).__name__ for g in generator if not isinstance(g, torch.Generator)]
    if bad:
        raise TypeError(f"{what} list must hold torch.Generator objects; found {bad[0]}")


def repeat_generators(generator: GeneratorLike, repeats: int) -> GeneratorLike:
    """Generators for a batch whose rows were `repeat_interleave`d `repeats` times.

    A per-row list `[g0, g1]` becomes `[g0]*repeats + [g1]*repeats`: the children of sample i
    draw, one after another, from sample i's generator. A single generator is returned as is.
    """
    if is_per_row(generator):
        return [g for g in generator for _ in range(repeats)]
    return generator


def select_generators(generator: GeneratorLike, index: torch.Tensor | slice) -> GeneratorLike:
    """The generators of the rows in `index` (a 1-D index into the batch, or a slice)."""
    if is_per_row(generator):
        return list(generator[index]) if isinstance(index, slice) else [generator[i] for i in index.tolist()]
    return generator


def batch_generator(generator: GeneratorLike) -> torch.Generator | None:
    """The generator for a draw that couples rows (resampling across the batch).

    With a per-row list this is the first sample's generator.
    """
    if is_per_row(generator):
        return generator[0] if len(generator) else None
    return generator if isinstance(generator, torch.Generator) else None


def _draw(fn, shape, generator, dtype, device) -> torch.Tensor:
    shape = tuple(shape)
    if not is_per_row(generator):
        return fn(shape, generator=generator, dtype=dtype, device=device)
    if len(generator) != shape[0]:
        raise ValueError(f"{len(generator)} generators for a draw of {shape[0]} rows; pass one per row")
    rows = [fn(shape[1:], generator=g, dtype=dtype, device=device) for g in generator]
    return torch.stack(rows) if rows else torch.empty(shape, dtype=dtype, device=device)


def randn(shape, generator: GeneratorLike = None, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """Standard normal draws of `shape`; row i from `generator[i]` when it is a list."""
    return _draw(torch.randn, shape, generator, dtype, device)


def rand(shape, generator: GeneratorLike = None, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """Uniform [0, 1) draws of `shape`; row i from `generator[i]` when it is a list."""
    return _draw(torch.rand, shape, generator, dtype, device)
