"""Gathering, repeating and joining batch-first model outputs of any structure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import pytest
import torch

from svdd import batched


@dataclass
class Out:
    eps: torch.Tensor
    extra: dict


class Pair(NamedTuple):
    a: torch.Tensor
    b: torch.Tensor


def test_take_repeat_cat_on_nested_structures():
    tree = Out(eps=torch.arange(3.0), extra={"p": Pair(torch.arange(3), torch.arange(6).view(3, 2)), "n": None})
    picked = batched.take(tree, torch.tensor([2, 0]))
    assert picked.eps.tolist() == [2.0, 0.0]
    assert picked.extra["p"].b.tolist() == [[4, 5], [0, 1]] and picked.extra["n"] is None
    rep = batched.repeat_rows(tree, 2)
    assert rep.extra["p"].a.tolist() == [0, 0, 1, 1, 2, 2]
    joined = batched.cat([picked, tree])
    assert joined.eps.tolist() == [2.0, 0.0, 0.0, 1.0, 2.0]
    assert batched.rows(joined) == 5


def test_unsupported_output_type_is_named():
    with pytest.raises(TypeError, match="cannot batch a str"):
        batched.take("eps", torch.tensor([0]))
