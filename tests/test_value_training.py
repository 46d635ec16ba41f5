"""An MC value network trained on rollouts learns to predict the final reward."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import seeded

import svdd
from svdd.sampling.value_training import collect_rollouts, fit_value, value_correlation


class TinyValue(torch.nn.Module):
    """v(x_t, t) for 1-D states: an MLP on (x, x², t/1000)."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(3, 64), torch.nn.SiLU(), torch.nn.Linear(64, 1))

    def forward(self, x, t):
        x = x.float()
        t = t.float().reshape(-1, 1) / 1000
        return self.net(torch.cat([x, x**2 / 4, t], dim=-1))[:, 0]


def near_two(xs):
    return [-((x - 2.0) ** 2) for x in xs]


def test_value_network_learns_the_reward_and_guides_sampling(mixture):
    torch.manual_seed(0)
    rollouts = collect_rollouts(mixture, near_two, 512, generator=seeded(0), every=2, progress=False)
    assert len(rollouts.states) == len(mixture.timesteps) // 2 and len(rollouts) == 512
    net = TinyValue()
    losses = fit_value(net, rollouts, epochs=20, lr=1e-2, generator=seeded(1), progress=False)
    assert losses[-1] < 0.5 * losses[0]
    corr = value_correlation(net, rollouts)
    assert corr[-1] > 0.8  # close to the clean end the value predicts the reward well

    kw = dict(num_samples=128, num_candidates=8, generator=seeded(2), progress=False)
    pre = svdd.sample(mixture, near_two, method="pretrained", **kw)
    mc = svdd.sample(mixture, near_two, method="svdd", value=svdd.LearnedValue(net), **kw)
    # all mass moves to the rewarded mode (pretrained: half), and the median reward rises
    assert (np.asarray(mc.samples) > 0).mean() > 0.95 and (np.asarray(pre.samples) > 0).mean() < 0.7
    assert np.median(mc.rewards) > np.median(pre.rewards) + 0.5
    assert mc.stats["model_calls"] == 128 * len(mixture.timesteps)


def test_fit_value_resumes_from_its_checkpoint(mixture, tmp_path):
    rollouts = collect_rollouts(mixture, near_two, 128, generator=seeded(0), every=4, progress=False)
    torch.manual_seed(0)
    straight = TinyValue()
    straight_losses = fit_value(straight, rollouts, epochs=4, generator=seeded(1), progress=False)

    torch.manual_seed(0)
    first = TinyValue()
    ckpt = tmp_path / "value.ckpt"
    fit_value(first, rollouts, epochs=2, generator=seeded(1), progress=False, checkpoint=ckpt)
    resumed = TinyValue()  # a fresh process: new weights, same checkpoint
    losses = fit_value(resumed, rollouts, epochs=4, generator=seeded(1), progress=False, checkpoint=ckpt)
    assert losses == pytest.approx(straight_losses)
    for a, b in zip(resumed.parameters(), straight.parameters()):
        assert torch.allclose(a, b)
