"""Block-wise and confidence decoding of `MaskedDiffusion` (`unmasking=`, `block_length=`, `threshold=`).

The random-order rule keeps its exactness tests (test_exactness.py, test_masked*.py); the other
rules are checked here: one SVDD candidate equals the plain rule for matched noise, blocks open
left to right, and a confidence step commits the most confident positions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import count_threes, random_denoiser, seeded

import svdd
from svdd.processes.masked import MaskedDiffusion

N, M = 6, 4

RULES = {
    "confidence": {"unmasking": "confidence"},
    "confidence-blocks": {"unmasking": "confidence", "block_length": 4},
    "confidence-threshold": {"unmasking": "confidence", "block_length": 6, "threshold": 0.6},
    "random-blocks": {"unmasking": "random", "block_length": 3},
}


def make(rule="confidence-blocks", length=12, num_steps=12, denoiser=random_denoiser):
    return MaskedDiffusion(denoiser, vocab_size=4, length=length, num_steps=num_steps, **RULES[rule])


def uniform_over(counts):
    """A denoiser whose position l is uniform over its first counts[l] tokens (V = 4), so any token
    drawn there has probability 1/counts[l]: known confidences whatever the draw."""
    allowed = torch.arange(4) < torch.tensor(counts).unsqueeze(-1)  # [L, V]
    logits = torch.where(allowed, 0.0, -torch.inf)

    def denoiser(x, t):
        return logits.expand(x.shape[0], -1, -1).clone()

    return denoiser


def row_denoiser(x, t):
    """Logits [B, L, 4] where row b depends on x[b] alone (so samples do not depend on their batch)."""
    context = (x * torch.arange(1, x.shape[1] + 1)).sum(-1, keepdim=True).double()  # [B, 1]
    phase = context.unsqueeze(-1) * 0.37 + torch.arange(x.shape[1]).view(1, -1, 1) + torch.arange(4) * 1.7
    return 3 * torch.sin(phase)


def walk(process, x, generator):
    """Every state of a chain stepped by hand, the start included."""
    states = [x]
    for t in process.timesteps:
        x = process.transition(x, t, process.model(x, t), generator)
        states.append(x)
    return states


# -- (1) one candidate is the plain rule ---------------------------------------------------------


@pytest.mark.parametrize("rule", list(RULES))
def test_svdd_with_one_candidate_is_the_pretrained_sampler_for_matched_noise(rule):
    process = make(rule)
    kw = {"num_samples": N, "progress": False}
    plain = svdd.sample(process, count_threes, method="pretrained", generator=[seeded(i) for i in range(N)], **kw)
    one = svdd.sample(
        process, count_threes, method="svdd", num_candidates=1, generator=[seeded(i) for i in range(N)], **kw
    )
    assert torch.equal(one.states, plain.states)
    assert not (plain.states == process.mask_index).any()

    # with a row-wise denoiser, per-sample generators make a sample independent of its batch
    process = make(rule, denoiser=row_denoiser)
    batch = svdd.sample(
        process, count_threes, method="svdd", num_candidates=1, generator=[seeded(i) for i in range(N)], **kw
    )
    kw["num_samples"] = 1
    alone = svdd.sample(process, count_threes, method="pretrained", generator=[seeded(3)], **kw)
    assert torch.equal(alone.states[0], batch.states[3])


def test_candidates_of_one_parent_differ_under_the_confidence_rule():
    process = make("confidence-blocks")
    x = process.prior(1).expand(64, -1)
    t = process.timesteps[0]
    children = process.transition(x, t, process.model(x, t), seeded(0))
    assert len({tuple(row) for row in children.tolist()}) > 1  # stochastic through the token draws


# -- (2) blocks open left to right -------------------------------------------------------------


@pytest.mark.parametrize("rule", ["confidence-blocks", "random-blocks", "confidence-threshold"])
def test_each_block_is_decoded_in_its_own_steps_and_later_blocks_stay_masked(rule):
    process = make(rule)
    per_block, size = process.num_steps // process.num_blocks, process.block_length
    states = walk(process, process.prior(16), seeded(0))
    for k, x in enumerate(states[1:]):
        b = k // per_block  # the block step k decodes
        masked = x == process.mask_index
        assert not masked[:, : b * size].any()  # earlier blocks are clean
        assert masked[:, (b + 1) * size :].all()  # later blocks untouched
        if (k + 1) % per_block == 0:  # after the block's last step it is clean
            assert not masked[:, : (b + 1) * size].any()
        before = states[k]
        assert torch.equal(x[before != process.mask_index], before[before != process.mask_index])


def test_timesteps_keep_the_masked_fraction_under_the_even_schedule():
    process = MaskedDiffusion(
        uniform_over([4] * 12), vocab_size=4, length=12, num_steps=6, unmasking="confidence", block_length=4
    )
    assert process.timesteps == pytest.approx([1 - k / 6 for k in range(6)])
    states = walk(process, process.prior(2), seeded(0))
    for t, x in zip(process.timesteps, states):  # the denoiser sees t = the fraction still masked
        assert (x == process.mask_index).double().mean(-1).tolist() == pytest.approx([t, t])
    assert process.block_at(process.timesteps[3])[0].tolist() == [False] * 4 + [True] * 4 + [False] * 4
    assert process.block_at(process.timesteps[3])[1] == 1  # the last of block 1's two steps


# -- (3) confidence commits the most confident positions ---------------------------------------


def test_a_confidence_step_commits_the_most_confident_positions_ties_to_the_left():
    #          confidence: 1/4  1  1/2  1  1/3 1/2
    counts = [4, 1, 2, 1, 3, 2]
    process = MaskedDiffusion(uniform_over(counts), vocab_size=4, length=6, num_steps=3, unmasking="confidence")
    x = process.prior(5)
    t = process.timesteps[0]
    x1 = process.transition(x, t, process.model(x, t), seeded(0))
    assert ((x1 != process.mask_index).nonzero()[:, 1].view(5, -1) == torch.tensor([1, 3])).all()  # quota ceil(6/3)
    t = process.timesteps[1]
    x2 = process.transition(x1, t, process.model(x1, t), seeded(1))
    open_now = (x2 != process.mask_index) & (x1 == process.mask_index)
    assert open_now.nonzero()[:, 1].view(5, -1).tolist() == [[2, 5]] * 5  # 1/2 and 1/2, before 1/3
    with_threshold = MaskedDiffusion(
        uniform_over(counts), vocab_size=4, length=6, num_steps=3, unmasking="confidence", threshold=0.5
    )
    x1 = with_threshold.transition(x, 1.0, with_threshold.model(x, 1.0), seeded(0))
    assert (x1 != process.mask_index)[0].tolist() == [False, True, True, True, False, True]  # every p >= 0.5


def test_most_confident_takes_each_rows_quota_among_its_open_positions():
    process = MaskedDiffusion(random_denoiser, vocab_size=4, length=5, num_steps=5, unmasking="confidence")
    confidence = torch.tensor([[0.1, 0.9, 0.5, 0.5, 0.7], [0.9, 0.2, 0.3, 0.4, 0.8]], dtype=torch.float64)
    open_ = torch.tensor([[True, False, True, True, True], [False, True, True, True, False]])
    commit = process.most_confident(confidence, open_, steps_left=2)  # quotas ceil(4/2) = 2, ceil(3/2) = 2
    assert commit.tolist() == [[False, False, True, False, True], [False, False, True, True, False]]
    assert process.most_confident(confidence, open_, steps_left=1).tolist() == open_.tolist()  # the last step


def test_the_quota_follows_llada_transfer_schedule():
    """With equal confidences (uniform logits), positions open left to right, 3, 2, 2 of 7 over 3
    steps: LLaDA's get_num_transfer_tokens (the remainder first)."""
    process = MaskedDiffusion(uniform_over([4] * 7), vocab_size=4, length=7, num_steps=3, unmasking="confidence")
    states = walk(process, process.prior(1), seeded(0))
    opened = [int((x != process.mask_index).sum()) for x in states]
    assert opened == [0, 3, 5, 7]
    assert (states[1] != process.mask_index)[0].tolist() == [True] * 3 + [False] * 4


# -- (5) every method runs on a confidence / block process -------------------------------------


@pytest.mark.parametrize(
    ("method", "extra"),
    [
        ("svdd", {}),
        ("svdd_r", {}),
        ("best_of_n", {}),
        ("smc", {"alpha": 0.5}),
        ("fk", {"alpha": 0.5}),
        ("beam", {}),
        ("refine", {"iterations": 1}),
    ],
)
@pytest.mark.parametrize("rule", ["confidence-blocks", "random-blocks"])
def test_every_method_runs_on_a_confidence_or_block_process(method, extra, rule):
    process = make(rule)
    res = svdd.sample(
        process,
        count_threes,
        method=method,
        num_samples=N,
        num_candidates=M,
        generator=seeded(0),
        progress=False,
        **extra,
    )
    assert res.states.shape == (N, 12) and not (res.states == process.mask_index).any()
    assert len(res.samples) == N


@pytest.mark.parametrize("rule", ["confidence", "confidence-blocks", "random-blocks"])
def test_svdd_raises_the_mean_reward_over_pretrained(rule):
    process = make(rule)
    kw = {"num_samples": 32, "generator": seeded(0), "progress": False}
    pre = svdd.sample(process, count_threes, method="pretrained", **kw)
    guided = svdd.sample(process, count_threes, method="svdd", num_candidates=8, **kw)
    assert np.mean(guided.rewards) > np.mean(pre.rewards) + 1.0


# -- seeds, re-noising and the adapter ---------------------------------------------------------


def test_from_seed_keeps_the_rule_and_rounds_its_steps_to_the_blocks():
    process = make("confidence-blocks")  # 3 blocks of 4, 12 steps
    seed = torch.tensor([0, 1, 2, 3] * 3)
    edited = process.from_seed(seed, positions=[1, 6, 11])
    assert edited.unmasking == "confidence" and edited.block_length == 4
    assert len(edited.timesteps) == 3  # ceil(3/12 · 12) = 3, a multiple of 3 blocks
    assert len(process.from_seed(seed, positions=[1, 6, 9, 11]).timesteps) == 6  # 4 rounded up to 6
    res = svdd.sample(edited, count_threes, num_samples=N, num_candidates=M, generator=seeded(0), progress=False)
    assert (edited.hamming_to_seed(res.states) <= 3).all() and not (res.states == process.mask_index).any()
    with pytest.raises(ValueError, match="num_steps must be a multiple of the number of blocks, 3"):
        process.from_seed(seed, positions=[1, 6, 11], num_steps=4)


def test_block_renoise_keeps_the_prefix_and_masks_the_later_blocks():
    process = make("confidence-blocks", num_steps=6)  # 3 blocks of 4, 2 steps each
    x0 = torch.randint(0, 4, (20, 12), generator=seeded(0))
    x_t, steps = process.renoise(x0, 0.7, seeded(1))  # nearest timestep 2/3: block 1's first step
    assert steps == process.timesteps[2:]
    masked = x_t == process.mask_index
    assert torch.equal(x_t[:, :4], x0[:, :4]) and masked[:, 4:].all()
    x_t, steps = process.renoise(x0, 0.5, seeded(1))  # block 1's last step: half its positions
    assert steps == process.timesteps[3:]
    masked = x_t == process.mask_index
    assert not masked[:, :4].any() and (masked[:, 4:8].sum(-1) == 2).all() and masked[:, 8:].all()
    assert masked.double().mean() == pytest.approx(0.5)  # the masked fraction is the timestep
    assert torch.equal(x_t[~masked], x0[~masked])
    assert len({tuple(r) for r in masked[:, 4:8].tolist()}) > 1  # a fresh subset per row
    x = x_t
    for t in steps:  # the steps left finish the chain from there
        x = process.transition(x, t, process.model(x, t), seeded(2))
    assert not (x == process.mask_index).any() and torch.equal(x[:, :4], x0[:, :4])


def test_the_adapter_passes_the_rule_through():
    def model(ids):  # a callable over its own 6 ids: 0, 1 fixed specials, 2..5 the tokens
        g = torch.Generator().manual_seed(int(ids.sum()) % 997)
        return torch.randn(ids.shape[0], ids.shape[1], 6, generator=g)

    process = MaskedDiffusion.from_masked_lm(
        model,
        mask_token_id=1,
        token_ids=[2, 3, 4, 5],
        length=9,
        num_steps=4,
        fixed={0: 0},
        time=None,
        unmasking="confidence",
        block_length=4,
    )
    assert process.length == 8 and process.num_blocks == 2 and process.unmasking == "confidence"
    states = walk(process, process.prior(3), seeded(0))
    assert (states[2][:, :4] != process.mask_index).all() and (states[2][:, 4:] == process.mask_index).all()
    with pytest.raises(ValueError, match="block_length must be None"):
        MaskedDiffusion.from_masked_lm(
            model, mask_token_id=1, token_ids=[2, 3, 4, 5], length=9, fixed={0: 0}, time=None, block_length=3
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"unmasking": "topk"}, "unmasking must be one of 'random', 'confidence'; got 'topk'"),
        ({"block_length": 5}, "block_length must be None .* divisor of the length L = 12; got 5"),
        ({"block_length": 0}, "block_length must be None"),
        ({"block_length": 24}, "block_length must be None"),
        ({"unmasking": "confidence", "threshold": 0.0}, r"threshold must be None or a number in \(0, 1\]; got 0.0"),
        ({"unmasking": "confidence", "threshold": 1.5}, "threshold must be None or a number"),
        ({"threshold": 0.9}, "threshold applies to unmasking='confidence' only"),
        ({"block_length": 4, "num_steps": 10}, "num_steps must be a multiple of the number of blocks, 3"),
    ],
)
def test_bad_decoding_arguments_are_one_clear_error(kwargs, message):
    kwargs = {"num_steps": 12, **kwargs}
    with pytest.raises(ValueError, match=message):
        MaskedDiffusion(random_denoiser, vocab_size=4, length=12, **kwargs)


def test_exact_chain_refuses_the_rules_it_does_not_enumerate():
    from svdd.processes import ExactChain

    process = MaskedDiffusion(random_denoiser, vocab_size=4, length=4, num_steps=4, unmasking="confidence")
    with pytest.raises(ValueError, match="ExactChain enumerates the random-order unmasking rule"):
        ExactChain(process)
