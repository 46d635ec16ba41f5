"""Index, repeat and concatenate batch-first structures of tensors.

A model output may be a tensor, a tuple/list/dict of tensors, a dataclass of tensors, or None;
every tensor in it has the batch on dim 0. The sampler gathers the winning candidates, repeats
parents for their children and joins chunks with these three functions, so an adapter is free
to return whatever structure its `transition` and `denoised` need.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch


def map_tensors(fn: Callable[[torch.Tensor], torch.Tensor], tree: Any) -> Any:
    if tree is None:
        return None
    if isinstance(tree, torch.Tensor):
        return fn(tree)
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(map_tensors(fn, v) for v in tree))
    if isinstance(tree, (list, tuple)):
        return type(tree)(map_tensors(fn, v) for v in tree)
    if isinstance(tree, dict):
        return type(tree)((k, map_tensors(fn, v)) for k, v in tree.items())
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        return dataclasses.replace(
            tree, **{f.name: map_tensors(fn, getattr(tree, f.name)) for f in dataclasses.fields(tree) if f.init}
        )
    raise TypeError(
        f"cannot batch a {type(tree).__name__}: model outputs must be tensors or tuples, lists, "
        "dicts or dataclasses of batch-first tensors"
    )


def take(tree: Any, index: torch.Tensor | slice) -> Any:
    """Rows `index` (LongTensor[k], or a slice: a view) of every tensor in `tree` -> same structure, batch k."""
    if isinstance(index, slice):
        return map_tensors(lambda t: t[index], tree)
    return map_tensors(lambda t: t.index_select(0, index.to(t.device)), tree)


def repeat_rows(tree: Any, repeats: int) -> Any:
    """Each row repeated `repeats` times in place: [a, b] -> [a, a, b, b] for repeats=2."""
    return map_tensors(lambda t: t.repeat_interleave(repeats, dim=0), tree)


def cat(trees: Sequence[Any]) -> Any:
    """Concatenate structures of equal shape along the batch."""
    first = trees[0]
    if len(trees) == 1:
        return first
    if first is None:
        return None
    if isinstance(first, torch.Tensor):
        return torch.cat(list(trees), dim=0)
    if isinstance(first, tuple) and hasattr(first, "_fields"):
        return type(first)(*(cat([t[i] for t in trees]) for i in range(len(first))))
    if isinstance(first, (list, tuple)):
        return type(first)(cat([t[i] for t in trees]) for i in range(len(first)))
    if isinstance(first, dict):
        return type(first)((k, cat([t[k] for t in trees])) for k in first)
    if dataclasses.is_dataclass(first):
        names = [f.name for f in dataclasses.fields(first) if f.init]
        instance: Any = first  # a dataclass instance (not a class): its fields hold the batch
        return dataclasses.replace(instance, **{n: cat([getattr(t, n) for t in trees]) for n in names})
    raise TypeError(f"cannot concatenate {type(first).__name__} model outputs")


def rows(tree: Any) -> int | None:
    """Batch size of the first tensor found in `tree` (None if it holds no tensor)."""
    found: list[int] = []

    def record(t: torch.Tensor) -> torch.Tensor:
        found.append(t.shape[0] if t.dim() else -1)
        return t

    map_tensors(record, tree)
    return found[0] if found else None
