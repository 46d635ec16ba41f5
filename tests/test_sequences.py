"""DNA/RNA domain: alphabets, rewards on known sequences, shipped weights, sampling cost, FASTA."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import seeded

import svdd
from svdd.domains.sequences import (
    DNA,
    RNA,
    ARS1Activity,
    GCContent,
    MotifScore,
    RNAFold,
    load_pretrained,
    load_value,
    write_fasta,
)
from svdd.processes.training import elbo

# -- alphabets ---------------------------------------------------------------------------------


def test_invalid_characters_get_an_error_naming_the_character_and_the_alphabet():
    with pytest.raises(
        ValueError, match=r"invalid character 'X' at position 3 of DNA sequence 'ACGXT'; accepted: A, C, G, T"
    ):
        DNA.encode(["ACGT_", "ACGXT"][1:])
    with pytest.raises(ValueError, match=r"invalid character 'T' .* accepted: A, C, G, U"):
        RNA.encode("ACGT")
    with pytest.raises(ValueError, match="has 4 letters; this model takes exactly 150"):
        load_pretrained("dna-ars1").tokenizer.encode("ACGT", length=150)
    with pytest.raises(ValueError, match="unknown pretrained model 'dna'; choose one of dna-ars1, rna-hairpin"):
        load_pretrained("dna")


def test_encode_decode_round_trip_and_rna_padding():
    assert DNA.decode(DNA.encode(["acgt", "TTGA"])) == ["ACGT", "TTGA"]
    tokens = RNA.encode(["ACGU", "GG"], length=6)
    assert tokens.tolist() == [[0, 1, 2, 3, 4, 4], [2, 2, 4, 4, 4, 4]]
    assert RNA.decode(tokens) == ["ACGU", "GG"]
    with pytest.raises(ValueError, match="outside 0..3"):
        DNA.decode(torch.tensor([[0, 4]]))


# -- rewards -----------------------------------------------------------------------------------


def test_gc_content_is_exact_and_nan_for_invalid():
    r = GCContent()(["GGCA", "acgu", "AAAA", "ACGN", ""])
    assert r[:3].tolist() == [0.75, 0.5, 0.0] and np.isnan(r[3:]).all()


def test_rnafold_hairpin_beats_poly_a_and_ensemble_is_at_least_mfe():
    hairpin, poly_a = "GGGGGGGGAAAACCCCCCCC", "A" * 20
    mfe = RNAFold()([hairpin, poly_a, "ACGT", ""])
    assert mfe[0] > 5.0 and mfe[1] == 0.0  # reward = -MFE: the stem folds, poly-A does not
    assert np.isnan(mfe[2:]).all()
    ens = RNAFold(ensemble=True)([hairpin, poly_a])
    assert (ens >= mfe[:2] - 1e-6).all() and ens[0] > 5.0


def test_motif_score_is_highest_with_the_consensus_on_either_strand():
    from Bio.Seq import Seq

    score = MotifScore("MA0265.3")  # ABF1, which binds ARS1
    consensus = str(score.motif.consensus)
    rng = np.random.default_rng(0)
    background = "".join(rng.choice(list("ACGT"), 60))
    with_site = background[:20] + consensus + background[20 + len(consensus) :]
    with_rc = background[:30] + str(Seq(consensus).reverse_complement()) + background[30 + len(consensus) :]
    r = score([background, with_site, with_rc, "ACG", "ACGU" * 10])
    assert r[1] > r[0] + 5 and abs(r[1] - score.max_score) < 1e-4 and abs(r[2] - score.max_score) < 1e-4
    assert np.isnan(r[3:]).all()
    assert MotifScore("ABF1").length > 0
    with pytest.raises(ValueError, match="no motif 'NOT_A_TF'"):
        MotifScore("NOT_A_TF")


def test_ars1_activity_scores_valid_150bp_dna_and_nan_otherwise():
    oracle = ARS1Activity()
    process = load_pretrained("dna-ars1", num_steps=4)
    seqs = process.decode(torch.randint(0, 4, (3, 150), generator=seeded(0)))
    r = oracle([*seqs, "ACGT", "N" * 150])
    assert np.isfinite(r[:3]).all() and np.isnan(r[3:]).all()
    assert np.array_equal(r[:3], oracle(seqs))
    assert oracle.metadata["test_pearson"] > 0.2  # held-out fit recorded with the weights


# -- shipped models ----------------------------------------------------------------------------


@pytest.mark.parametrize("name, length, letters", [("dna-ars1", 150, "ACGT"), ("rna-hairpin", 100, "ACGU")])
def test_pretrained_models_load_offline_and_sample_strings(name, length, letters):
    process = load_pretrained(name, num_steps=8)
    assert process.length == length and process.num_steps == 8
    res = svdd.sample(process, GCContent(), method="pretrained", num_samples=8, generator=seeded(0), progress=False)
    assert all(isinstance(s, str) and set(s) <= set(letters) and 0 < len(s) <= length for s in res.samples)
    if name == "dna-ars1":
        assert all(len(s) == 150 for s in res.samples)


@pytest.mark.parametrize("name", ["dna-ars1", "rna-hairpin"])
def test_svdd_pm_model_calls_per_step_on_shipped_model(name):
    n, m, k = 3, 4, 5
    process = load_pretrained(name, num_steps=k)
    res = svdd.sample(
        process, GCContent(), method="svdd", num_samples=n, num_candidates=m, generator=seeded(0), progress=False
    )
    # N on the first step, then N·M per step for the children of the k-1 non-final steps
    assert res.stats["model_calls"] == n + n * m * (k - 1)
    assert len(res.samples) == n and np.isfinite(res.rewards).all()


@pytest.mark.parametrize(
    "value_name, model, reward",
    [("dna-ars1-activity", "dna-ars1", ARS1Activity), ("rna-hairpin-mfe", "rna-hairpin", RNAFold)],
)
def test_learned_value_loads_and_drives_svdd_mc(value_name, model, reward):
    value = load_value(value_name)
    assert isinstance(value, svdd.LearnedValue) and repr(value) == f"LearnedValue({value_name})"
    process = load_pretrained(model, num_steps=4)
    v = value(process.prior(2), 1.0)
    assert v.shape == (2,) and torch.isfinite(v).all()
    res = svdd.sample(
        process, reward(), value=value, num_samples=2, num_candidates=3, generator=seeded(0), progress=False
    )
    assert res.stats["model_calls"] == 2 * 4  # MC: one call per kept sample and step


def test_elbo_prefers_library_sequences_over_shuffled_ones():
    from svdd.domains.sequences.data import load_ars1

    process = load_pretrained("dna-ars1")
    x0 = DNA.encode(load_ars1(limit=16).sequences)
    g = seeded(2)
    shuffled = torch.stack([row[torch.randperm(150, generator=g)] for row in x0])
    real, fake = elbo(process, x0, num_times=8), elbo(process, shuffled, num_times=8)
    assert torch.isfinite(real).all() and real.mean() > fake.mean() + 50


def test_write_fasta_puts_rewards_in_descriptions(tmp_path):
    from Bio import SeqIO

    path = write_fasta(tmp_path / "out.fa", ["ACGT", "GGCC"], [0.5, float("nan")], reward_name="gc")
    records = list(SeqIO.parse(str(path), "fasta"))
    assert [str(r.seq) for r in records] == ["ACGT", "GGCC"]
    assert records[0].description == "sample_0 gc=0.5" and records[1].description.endswith("gc=nan")
    with pytest.raises(ValueError, match="2 sequences but 1 rewards"):
        write_fasta(tmp_path / "bad.fa", ["A", "C"], [1.0])
