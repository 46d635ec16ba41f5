"""svdd.sample(method="svdd") equals SVDD-PM written as the paper's plain loop, for matched random streams.

The loop draws child j of every sample with one `transition` call on the N current states; the
batched sampler draws all N·M children in one call on the repeated rows. With one generator per
sample and a transition that makes one draw per row, child j of sample i is the j-th draw of
generator i either way, so the two must keep the same children.
"""

from __future__ import annotations

import pytest
import torch
from conftest import seeded, toy_probs, weighted_sum

import svdd
from benchmarks.loop import OneDrawPerRow
from svdd.processes.toys import GaussianMixtureDiffusion, MaskedToy


def plain_svdd_pm(process, reward, n, m, generators):
    """Per step: for j < M, one child per sample, its model call and the reward of its denoised
    decode (the clean child's own reward on the last step); keep each sample's best child and its
    model output. Returns the final states [n, ...] and their rewards float64 [n]."""
    ts = list(process.timesteps)
    rows = torch.arange(n)
    x = process.prior(n, generators)
    out = process.model(x, ts[0])
    for k, t in enumerate(ts):
        t_next = ts[k + 1] if k + 1 < len(ts) else None
        children, outs, values = [], [], []
        for _ in range(m):
            child = process.transition(x, t, out, generators)
            if t_next is None:
                objects = process.decode(child)
            else:
                outs.append(process.model(child, t_next))
                objects = process.decode(process.denoised(child, t_next, outs[-1]))
            children.append(child)
            values.append(torch.as_tensor(reward(list(objects)), dtype=torch.float64))
        table = torch.stack(values, dim=1)  # [n, M]
        assert not table.isnan().any()
        best = table.argmax(dim=1)  # ties go to the first child, as in svdd.sampling.selection.select
        x = torch.stack(children, dim=1)[rows, best]
        if t_next is not None:
            out = torch.stack(outs, dim=1)[rows, best]
    return x, table[rows, best]


def near_two(xs):
    return [-((x - 2.0) ** 2) for x in xs]


@pytest.mark.parametrize("toy", ["masked", "mixture"])
@pytest.mark.parametrize("max_batch", [None, 5])
def test_batched_svdd_equals_the_plain_loop(toy, max_batch):
    if toy == "masked":
        process, reward, n, m = (
            OneDrawPerRow(MaskedToy(toy_probs(), vocab_size=3, length=3, num_steps=3)),
            weighted_sum,
            16,
            5,
        )
    else:
        process, reward, n, m = GaussianMixtureDiffusion(num_steps=12), near_two, 8, 4
    with torch.no_grad():
        loop_states, loop_rewards = plain_svdd_pm(process, reward, n, m, [seeded(50 + i) for i in range(n)])
    res = svdd.sample(
        process,
        reward,
        method="svdd",
        num_samples=n,
        num_candidates=m,
        alpha=0.0,
        generator=[seeded(50 + i) for i in range(n)],
        max_batch=max_batch,
        progress=False,
    )
    assert torch.equal(res.states, loop_states)
    assert torch.equal(torch.from_numpy(res.rewards), loop_rewards)
    # the draws did matter: another seed keeps other samples
    other = svdd.sample(
        process,
        reward,
        method="svdd",
        num_samples=n,
        num_candidates=m,
        generator=[seeded(90 + i) for i in range(n)],
        progress=False,
    )
    assert not torch.equal(other.states, res.states)
