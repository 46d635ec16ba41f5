"""Invariants of the masked discrete diffusion process."""

from __future__ import annotations

import pytest
import torch
from conftest import seeded

from svdd.processes.masked import MaskedDiffusion


def random_denoiser(x, t):
    """Logits that depend on the input (deterministic), over 4 tokens."""
    g = torch.Generator().manual_seed(int(x.sum()) % 1000)
    return torch.randn(x.shape[0], x.shape[1], 4, generator=g) * 3


def test_unmasked_tokens_never_change_and_samples_have_no_mask():
    process = MaskedDiffusion(random_denoiser, vocab_size=4, length=12, num_steps=8)
    x = process.prior(32)
    assert (x == process.mask_index).all()
    gen = seeded(0)
    for t in process.timesteps:
        out = process.model(x, t)
        x_next = process.transition(x, t, out, gen)
        was_clean = x != process.mask_index
        assert torch.equal(x_next[was_clean], x[was_clean])
        x = x_next
    assert not (x == process.mask_index).any()
    assert len(process.decode(x)) == 32


def test_denoised_takes_argmax_at_masked_positions_and_copies_the_rest():
    process = MaskedDiffusion(random_denoiser, vocab_size=4, length=6, num_steps=4)
    x = torch.tensor([[0, 4, 2, 4, 4, 3]])
    out = torch.zeros(1, 6, 4)
    out[..., 1] = 5.0
    assert process.denoised(x, 1.0, out).tolist() == [[0, 1, 2, 1, 1, 3]]


def test_transition_unmasks_at_the_schedule_rate():
    process = MaskedDiffusion(random_denoiser, vocab_size=4, length=200, num_steps=4)
    x = process.prior(50)
    t = process.timesteps[0]  # 1.0 -> 0.75: a quarter of the masks are lifted
    x_next = process.transition(x, t, torch.zeros(50, 200, 4), seeded(0))
    assert abs((x_next != process.mask_index).double().mean().item() - 0.25) < 0.01


def test_denoiser_shape_is_checked():
    process = MaskedDiffusion(lambda x, t: torch.zeros(x.shape[0], 3, 4), vocab_size=4, length=5)
    with pytest.raises(ValueError, match=r"logits of shape \(2, 3, 4\); expected \(2, 5, 4\)"):
        process.model(process.prior(2), 1.0)


def test_decode_refuses_masked_tokens_and_bad_config():
    process = MaskedDiffusion(random_denoiser, vocab_size=4, length=3)
    with pytest.raises(ValueError, match="masked tokens"):
        process.decode(process.prior(1))
    with pytest.raises(ValueError, match="vocab_size must be a positive int"):
        MaskedDiffusion(random_denoiser, vocab_size=0, length=3)


def test_add_mask_masks_at_rate_t():
    process = MaskedDiffusion(random_denoiser, vocab_size=4, length=1000, num_steps=4)
    x0 = torch.zeros(4, 1000, dtype=torch.long)
    xt = process.add_mask(x0, torch.tensor([0.0, 0.3, 0.7, 1.0]), seeded(0))
    rates = (xt == process.mask_index).double().mean(-1)
    assert torch.allclose(rates, torch.tensor([0.0, 0.3, 0.7, 1.0], dtype=torch.float64), atol=0.04)
