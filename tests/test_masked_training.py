"""The MDLM training loop, its loss, checkpoint/resume, and the ELBO estimate."""

from __future__ import annotations

import json
import math
import time

import pytest
import torch

from svdd.processes.masked import MaskedDiffusion
from svdd.processes.nets import ConvDenoiser, ConvValue, TransformerDenoiser
from svdd.processes.training import (
    elbo,
    masked_loss,
    save_training_run,
    stratified_times,
    train_masked,
    validation_loss,
)
from svdd.processes.weights import load_net, save_net


def toy_corpus(n: int = 256, length: int = 12, seed: int = 0) -> torch.Tensor:
    """Two motifs (0 1 2 3 repeated, or all 2s) with 1 random substitution each: Long[n, L]."""
    g = torch.Generator().manual_seed(seed)
    a = torch.arange(length) % 4
    b = torch.full((length,), 2)
    rows = torch.stack([a if i % 2 else b for i in range(n)])
    pos = torch.randint(0, length, (n,), generator=g)
    rows[torch.arange(n), pos] = torch.randint(0, 4, (n,), generator=g)
    return rows


def small_net(length: int = 12) -> ConvDenoiser:
    torch.manual_seed(0)
    return ConvDenoiser(vocab_size=4, length=length, channels=24, num_blocks=2, dilations=(1, 2))


def test_stratified_times_cover_every_stratum():
    t = stratified_times(8, torch.Generator().manual_seed(0))
    strata = sorted(((t - 1e-3) / (1 - 1e-3) * 8).floor().long().tolist())
    assert strata == list(range(8)) and t.dtype == torch.float32


def test_denoiser_output_contract():
    net = small_net()
    x = torch.full((3, 12), 4)
    assert net(x, torch.rand(3)).shape == (3, 12, 4)
    with pytest.raises(ValueError, match=r"shape \[B, 12\]"):
        net(torch.zeros(3, 10, dtype=torch.long), torch.rand(3))


def test_tiny_denoiser_trains_to_lower_loss_and_beats_the_uniform_bound():
    data = toy_corpus()
    net = small_net()
    before = validation_loss(net, data[:64], mask_index=4)
    log = train_masked(
        net,
        data,
        mask_index=4,
        steps=150,
        batch_size=32,
        lr=3e-3,
        warmup=10,
        val_data=data[:64],
        log_every=50,
        seed=0,
        progress=False,
    )
    after = log.val_loss[-1]
    assert log.step == 150 and len(log.train_loss) == 3
    assert after < 0.6 * before
    assert after < math.log(4)  # better than a uniform guess at every masked token


def test_training_resumes_from_its_checkpoint(tmp_path):
    data = toy_corpus()
    ckpt = tmp_path / "run.ckpt"
    full = small_net()
    train_masked(full, data, mask_index=4, steps=40, batch_size=16, warmup=5, log_every=20, seed=3, progress=False)
    part = small_net()
    first = train_masked(
        part,
        data,
        mask_index=4,
        steps=40,
        batch_size=16,
        warmup=5,
        log_every=20,
        seed=3,
        checkpoint=ckpt,
        checkpoint_every=20,
        stop_at=20,
        progress=False,
    )
    assert first.step == 20 and ckpt.exists()
    resumed = small_net()
    log = train_masked(
        resumed,
        data,
        mask_index=4,
        steps=40,
        batch_size=16,
        warmup=5,
        log_every=20,
        seed=3,
        checkpoint=ckpt,
        checkpoint_every=20,
        progress=False,
    )
    assert log.step == 40 and len(log.train_loss) == 2
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5)


def test_a_training_run_is_saved_with_its_record(tmp_path):
    data = toy_corpus()
    net = small_net()
    started = time.time()
    log = train_masked(
        net, data[:48], mask_index=4, steps=20, batch_size=16, log_every=10, val_data=data[48:], progress=False
    )
    out = tmp_path / "weights" / "toy.safetensors"
    meta = save_training_run(net, log, out, train=data[:48], val=data[48:], started=started, data="toy", seed=0)
    loaded, stored = load_net(out)
    assert stored == {**meta, "train_loss": log.train_loss, "val_loss": log.val_loss}
    assert stored["data"] == "toy" and stored["train_size"] == 48
    assert stored["val_size"] == data.shape[0] - 48 and stored["final_val_nelbo_per_token"] == log.val_loss[-1]
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["class"] == "ConvDenoiser" and record["config"] == json.loads(json.dumps(net.config))
    assert record["metadata"]["train_loss"] == log.train_loss and len(record["metadata"]["val_loss"]) == 2
    for a, b in zip(net.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


def test_training_rejects_masked_or_float_data():
    with pytest.raises(ValueError, match="must not appear"):
        train_masked(small_net(), torch.full((4, 12), 4), mask_index=4, steps=1, progress=False)
    with pytest.raises(ValueError, match="Long"):
        train_masked(small_net(), torch.zeros(4, 12), mask_index=4, steps=1, progress=False)


def test_elbo_is_a_finite_bound_higher_for_corpus_like_sequences():
    data = toy_corpus()
    net = small_net()
    train_masked(net, data, mask_index=4, steps=150, batch_size=32, lr=3e-3, warmup=10, seed=0, progress=False)
    process = MaskedDiffusion(net, vocab_size=4, length=12, num_steps=4)
    g = torch.Generator().manual_seed(5)
    shuffled = torch.stack([row[torch.randperm(12, generator=g)] for row in data[:32]])
    real, fake = elbo(process, data[:32], num_times=8), elbo(process, shuffled, num_times=8)
    assert torch.isfinite(real).all() and torch.isfinite(fake).all()
    assert (real <= 1e-6).all()  # a log-probability bound
    assert real.mean() > fake.mean() + 3.0
    assert torch.equal(elbo(process, data[:4], num_times=8, seed=1), elbo(process, data[:4], num_times=8, seed=1))
    with pytest.raises(ValueError, match="clean token ids"):
        elbo(process, torch.full((2, 12), 4))


def test_masked_loss_weights_masked_positions_by_one_over_t():
    # a denoiser that is certain and right gives zero loss; a uniform one gives log V per token
    data = toy_corpus(32)

    def perfect(x_t, t):
        return torch.nn.functional.one_hot(data, 4).float() * 100.0

    def uniform(x_t, t):
        return torch.zeros(x_t.shape[0], 12, 4)

    assert masked_loss(perfect, data, 4).item() < 1e-6
    # E[(1/t)·#masked/L] = 1 when each token is masked w.p. t, so the loss ~ log 4
    values = [masked_loss(uniform, data, 4, generator=torch.Generator().manual_seed(s)).item() for s in range(20)]
    assert abs(sum(values) / 20 - math.log(4)) < 0.1


def test_nets_round_trip_through_save_and_load(tmp_path):
    nets = (
        small_net(),
        ConvValue(vocab_size=4, length=12, channels=16, num_blocks=1),
        TransformerDenoiser(vocab_size=4, length=12, channels=16, num_layers=1, num_heads=2),
    )
    for net in nets:
        save_net(net, tmp_path / "n", note="x")
        loaded, meta = load_net(tmp_path / "n.safetensors")
        x, t = torch.randint(0, 5, (2, 12)), torch.rand(2)
        net.eval()
        assert torch.allclose(net(x, t), loaded(x, t)) and meta == {"note": "x"}
    assert ConvValue(vocab_size=4, length=12)(torch.full((5, 12), 4), torch.rand(5)).shape == (5,)
