"""Picklable toy jobs for the batch-generation tests (importable by worker processes)."""

from __future__ import annotations

import math
import os
import signal
import time
from dataclasses import dataclass

import torch

from svdd.processes.toys import MaskedToy, all_sequences


def weighted_sum(seqs):
    return [1.0 * s[0] + 0.7 * s[1] + 0.4 * s[2] for s in seqs]


@dataclass(frozen=True)
class ToyJob:
    """The masked toy with the weighted-sum reward. `die_after` > 0 kills this process (SIGKILL)
    on that reward call; `fail_on_two` makes the reward raise on sequences starting with 2;
    `bad_output` makes it return one value too few; `sleep_s` slows every reward call."""

    die_after: int = 0
    fail_on_two: bool = False
    bad_output: bool = False
    sleep_s: float = 0.0

    def build(self):
        probs = torch.ones(27, dtype=torch.float64)
        probs[all_sequences(3, 3)[:, 0] == 1] = 3.0
        calls = {"n": 0}

        def reward(seqs):
            calls["n"] += 1
            if self.sleep_s:
                time.sleep(self.sleep_s)
            if self.die_after and calls["n"] >= self.die_after:
                os.kill(os.getpid(), signal.SIGKILL)
            if self.fail_on_two and any(s[0] == 2 for s in seqs):
                raise ValueError("cannot score a leading 2")
            values = weighted_sum(seqs)
            return values[:-1] if self.bad_output else values

        return MaskedToy(probs, vocab_size=3, length=3, num_steps=3), reward, None

    def encode(self, obj, index, out_dir):
        return "".join(map(str, obj))


def nan_if_invalid(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


@dataclass(frozen=True)
class PictureJob:
    """The masked toy whose samples decode to 3x3 grey images, so a run writes them as PNG files
    under samples/ (as the images domain does); the reward is an image's mean brightness."""

    def build(self):
        process, _, _ = ToyJob().build()
        decode = process.decode
        process.decode = lambda x0: [torch.full((3, 3), sum(s) / 6.0) for s in decode(x0)]
        return process, lambda images: [float(img.mean()) for img in images], None
