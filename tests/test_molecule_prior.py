"""The v2 molecule prior's training script (domains/molecules/train_prior.py) on a tiny cache built
from the shipped MOSES sample: it trains, checkpoints, resumes to the same weights as an
uninterrupted run, and its EMA snapshot loads through svdd's weight files into a process that
samples valid molecules."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("selfies", reason="the molecules domain needs the molecules extra")

import svdd
from svdd.domains.molecules.data import sample_smiles
from svdd.domains.molecules.denoiser import load_denoiser
from svdd.domains.molecules.prior_data import NAME
from svdd.domains.molecules.tokenizer import SelfiesTokenizer
from svdd.domains.molecules.train_prior import main

TINY = ["--num-val", "20", "--channels", "16", "--layers", "1", "--heads", "2", "--batch-size", "8",
        "--warmup", "1", "--log-every", "1", "--val-every", "2", "--snapshot-minutes", "1000"]  # fmt: skip


def tiny_cache(out):
    """The cache train_prior reads, from the 500 shipped MOSES molecules."""
    smiles = sample_smiles()
    tokenizer = SelfiesTokenizer.build(smiles, 56)
    tokens = tokenizer.encode([s for s in smiles if tokenizer.encodable(s)]).numpy().astype(np.uint8)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / f"{NAME}.npy", tokens)
    (out / f"{NAME}.json").write_text(json.dumps({"tokenizer": tokenizer.to_dict()}))
    return tokenizer


def state(out):
    return torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)


def test_training_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    tokenizer = tiny_cache(whole)
    tiny_cache(split)
    main(["--out", str(whole), *TINY, "--max-steps", "6"])
    main(["--out", str(split), *TINY, "--max-steps", "3"])
    main(["--out", str(split), *TINY, "--max-steps", "6", "--resume"])
    a, b = state(whole), state(split)
    assert a["step"] == b["step"] == 6
    for key in ("model", "ema"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
    log = [json.loads(line) for line in (whole / "log.jsonl").read_text().splitlines()]
    assert any("val_nelbo_per_token" in row for row in log)
    snapshots = sorted((whole / "snapshots").glob("*.safetensors"))
    assert snapshots, "the run ends with an EMA snapshot"
    net, meta = load_denoiser(snapshots[-1])
    assert meta["step"] == 6
    process = svdd.MaskedDiffusion(net, vocab_size=tokenizer.size, length=56, num_steps=4, tokenizer=tokenizer)
    res = svdd.sample(process, lambda xs: [0.0] * len(xs), method="pretrained", num_samples=4, progress=False)
    assert len(res.samples) == 4 and all(isinstance(s, str) for s in res.samples)
