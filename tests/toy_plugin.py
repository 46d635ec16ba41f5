"""A toy domain plug-in and a user's own process factory and rewards, for the plug-in tests.

`DOMAIN` is what a third-party package would register in the `svdd.domains` entry-point group;
`make_process` is what `svdd generate --process tests/toy_plugin.py:make_process` calls.
"""

from __future__ import annotations

import torch

from svdd.processes.toys import MaskedToy, all_sequences
from svdd.runs.plugins import Domain


def make_process(num_steps: int = 3) -> MaskedToy:
    """The masked toy over 27 sequences of 3 tokens; sequences starting with 1 are likelier."""
    probs = torch.ones(27, dtype=torch.float64)
    probs[all_sequences(3, 3)[:, 0] == 1] = 3.0
    return MaskedToy(probs, vocab_size=3, length=3, num_steps=num_steps)


def weighted_sum(seqs):
    return [1.0 * s[0] + 0.7 * s[1] + 0.4 * s[2] for s in seqs]


class Target:
    """-|sum of the tokens - target|: a reward class taking one argument (`file.py:Target=3`)."""

    def __init__(self, target: str = "2"):
        self.target = float(target)
        self.name = f"target({self.target:g})"

    def __call__(self, seqs):
        return [-abs(sum(s) - self.target) for s in seqs]


def _load_process(*, steps=None, device="cpu", length="3"):
    if length != "3":
        raise ValueError(f"the toy has length 3; got --length {length}")
    return make_process(steps or 3)


def _columns(process, samples):
    return {"token_sum": [sum(s) for s in samples]}


DOMAIN = Domain(
    name="toy",
    summary="the 27-sequence masked toy",
    load_process=_load_process,
    rewards=lambda: {"weighted": lambda arg: weighted_sum, "target": lambda arg: Target(arg or "2")},
    columns=_columns,
    options={"length": "sequence length (only 3)"},
)
