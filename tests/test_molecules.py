"""Molecules domain: SELFIES tokenizer, RDKit / Vina rewards, the shipped MOSES model, SMILES CSV."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import seeded

import svdd
from svdd.domains.molecules import (
    QED,
    SA,
    Docking,
    LogP,
    SelfiesTokenizer,
    canonical,
    load_pretrained,
    mean_pairwise_tanimoto_distance,
    sample_smiles,
    tanimoto_distance,
    write_smiles_csv,
)

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
BENZENE = "c1ccccc1"
INVALID = ["", "C1CC", "not a smiles", "c1cccc1", None, 3.5]


@pytest.fixture(scope="module")
def process():
    return load_pretrained(num_steps=8)


# -- tokenizer -----------------------------------------------------------------------------------


def test_selfies_round_trip_on_shipped_moses_sample(process):
    smiles = sample_smiles()
    assert len(smiles) == 500
    tok = process.tokenizer
    ok = [s for s in smiles if tok.encodable(s)]
    assert len(ok) >= 495  # the vocabulary was built from MOSES train; the test split shares it
    tokens = tok.encode(ok)
    assert tokens.shape == (len(ok), 56) and tokens.dtype == torch.long
    assert int(tokens.max()) < tok.size and process.vocab_size == tok.size
    assert tok.decode(tokens) == [canonical(s) for s in ok]


def test_tokenizer_errors_name_the_problem():
    tok = SelfiesTokenizer.build([ASPIRIN, BENZENE], length=20)
    assert tok.symbols[-1] == "[nop]" and tok.pad_index == tok.size - 1
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.encode("CCCl")
    with pytest.raises(ValueError, match="has 24 SELFIES symbols; this model takes at most 20"):
        tok.encode("CCCCCCCCCCCCCCCCCCCCCCCC")
    with pytest.raises(ValueError, match=r"must lie in 0..5 \(masked or foreign"):
        SelfiesTokenizer(["[C]", "[O]", "[=O]", "[Ring1]", "[=C]"], 4).decode(torch.tensor([[6, 0, 0, 0]]))
    # only pads decode to the empty string, which every reward scores NaN
    assert tok.decode(torch.full((1, 20), tok.pad_index)) == [""]


# -- rewards -------------------------------------------------------------------------------------


@pytest.mark.parametrize("reward", [QED(), SA(), SA(raw=True), LogP()])
def test_invalid_smiles_score_nan_without_raising(reward):
    scores = reward([*INVALID, ASPIRIN])
    assert np.isnan(scores[:-1]).all() and np.isfinite(scores[-1])


def test_qed_sa_logp_match_rdkit_on_known_molecules():
    from rdkit import Chem
    from rdkit.Chem import QED as rdqed
    from rdkit.Chem import Crippen

    from svdd.domains.molecules.rewards import sascorer

    mols = [Chem.MolFromSmiles(s) for s in (BENZENE, ASPIRIN)]
    np.testing.assert_allclose(QED()([BENZENE, ASPIRIN]), [rdqed.qed(m) for m in mols], atol=1e-9)
    np.testing.assert_allclose(LogP()([BENZENE, ASPIRIN]), [Crippen.MolLogP(m) for m in mols], atol=1e-9)
    raw = [sascorer().calculateScore(m) for m in mols]
    np.testing.assert_allclose(SA(raw=True)([BENZENE, ASPIRIN]), [-r for r in raw], atol=1e-9)
    np.testing.assert_allclose(SA()([BENZENE, ASPIRIN]), [(10 - r) / 9 for r in raw], atol=1e-9)
    # published values for aspirin (RDKit): QED 0.550, SA 1.580, logP 1.310
    assert QED()([ASPIRIN])[0] == pytest.approx(0.550, abs=5e-3)
    assert SA(raw=True)([ASPIRIN])[0] == pytest.approx(-1.580, abs=5e-3)
    assert LogP()([ASPIRIN])[0] == pytest.approx(1.310, abs=5e-3)
    assert 0 < SA()([ASPIRIN])[0] <= 1


def test_molecules_over_the_size_limit_score_nan_quickly():
    from svdd.domains.molecules.rewards import MAX_ATOMS, MolWeight

    rewards = [QED(), SA(), SA(raw=True), LogP(), MolWeight()]
    at_limit, over = "C" * MAX_ATOMS, "C" * (MAX_ATOMS + 1)
    for reward in rewards:
        scores = reward([at_limit, over])
        assert math.isfinite(scores[0]) and math.isnan(scores[1]), reward.name
    assert canonical(at_limit) == at_limit and canonical(over) is None  # also the docking cache key
    start = time.perf_counter()
    assert np.isnan(SA()(["C" * 200_000])).all()  # RDKit's SA scorer alone would run for minutes
    assert time.perf_counter() - start < 5  # parsed and rejected (about 0.6 s)


@pytest.mark.slow
def test_docking_scores_a_small_ligand_within_its_timeout_and_nan_otherwise():
    pytest.importorskip("vina", reason="AutoDock Vina (pip install vina) is not installed")
    pytest.importorskip("meeko", reason="meeko (pip install meeko scipy gemmi) is not installed")
    reward = Docking("PARP1", exhaustiveness=1, timeout_s=60)
    scores = reward([BENZENE, "", "C1CC", BENZENE])
    assert math.isfinite(scores[0]) and 2.0 < scores[0] < 8.0  # negated kcal/mol: higher = better
    assert np.isnan(scores[1:3]).all() and scores[3] == scores[0]
    assert reward.calls == 3  # the duplicate benzene is scored once
    again = reward(["C1=CC=CC=C1"])  # the same molecule, another spelling: a cache hit
    assert again[0] == scores[0] and reward.cache_hits == 1
    with pytest.raises(ValueError, match="unknown docking target 'NOPE'; dockstring ships: .*PARP1"):
        Docking("NOPE")


# -- the shipped model ---------------------------------------------------------------------------


def test_pretrained_model_loads_offline_and_samples_mostly_valid_smiles(process):
    res = svdd.sample(process, QED(), method="pretrained", num_samples=16, generator=seeded(0), progress=False)
    assert all(isinstance(s, str) for s in res.samples)
    valid = [canonical(s) for s in res.samples]
    assert sum(v is not None for v in valid) >= 15
    assert np.isfinite(res.rewards).sum() >= 15 and np.nanmax(res.rewards) <= 1


def test_svdd_pm_and_sparse_selection_model_and_reward_calls(process):
    n, m = 3, 4
    k = process.num_steps
    res = svdd.sample(process, QED(), num_samples=n, num_candidates=m, generator=seeded(1), progress=False)
    # N on the first step, then N·M children per non-final step; N·M candidates scored per step
    assert res.stats["model_calls"] == n + n * m * (k - 1)
    assert res.stats["reward_calls"] + res.stats["reward_cache_hits"] == n * m * k
    sparse = svdd.sample(
        process, QED(), num_samples=n, num_candidates=m, select_steps=2, generator=seeded(1), progress=False
    )
    # 8 steps, selection at 1, 3, 5, 7: step 0 costs N; each of 1, 3, 5 costs N (its parents, after a
    # plain step) + N·M (children); plain steps 2, 4, 6 reuse the chosen child's output; step 7 costs N
    assert sparse.stats["model_calls"] == n + 3 * (n + n * m) + n
    assert sparse.stats["reward_calls"] + sparse.stats["reward_cache_hits"] == 4 * n * m
    assert len(sparse.samples) == n


def test_svdd_raises_qed_over_pretrained_at_equal_seed(process):
    base = svdd.sample(process, QED(), method="pretrained", num_samples=12, generator=seeded(3), progress=False)
    guided = svdd.sample(process, QED(), num_samples=12, num_candidates=6, generator=seeded(3), progress=False)
    assert np.nanmean(guided.rewards) > np.nanmean(base.rewards) + 0.05


def test_write_smiles_csv_and_diversity(tmp_path):
    path = write_smiles_csv(tmp_path / "m.csv", [ASPIRIN, ""], [0.5, float("nan")])
    assert path.read_text().splitlines() == ["smiles,reward", f"{ASPIRIN},0.5", ","]
    assert mean_pairwise_tanimoto_distance([ASPIRIN, ASPIRIN]) == 0.0
    assert 0.5 < mean_pairwise_tanimoto_distance([ASPIRIN, BENZENE, "CCCCO"]) <= 1.0
    assert math.isnan(mean_pairwise_tanimoto_distance([ASPIRIN, "C1CC"]))


def test_tanimoto_distance_to_a_seed():
    d = tanimoto_distance([ASPIRIN, BENZENE, "C1CC", "CC(=O)Oc1ccccc1C(=O)OC"], ASPIRIN)
    assert d[0] == 0.0 and 0.5 < d[1] <= 1.0 and math.isnan(d[2]) and 0.0 < d[3] < d[1]
    with pytest.raises(ValueError, match="not a valid SMILES"):
        tanimoto_distance([ASPIRIN], "C1CC")


def test_editing_a_seed_molecule_keeps_its_unmasked_tokens(process):
    seed = process.tokenizer.encode(ASPIRIN)[0]
    edited = process.from_seed(seed, mask_fraction=0.2)
    res = svdd.sample(edited, QED(), num_samples=8, num_candidates=4, generator=seeded(0), progress=False)
    assert (edited.hamming_to_seed(res.states) <= round(0.2 * process.length)).all()
    assert np.isfinite(tanimoto_distance(res.samples, ASPIRIN)).all()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_cli_generate_molecules_writes_a_table_and_an_sdf(tmp_path, fmt):
    import pandas as pd
    from rdkit import Chem
    from typer.testing import CliRunner

    from svdd.runs.cli import app

    result = CliRunner().invoke(
        app,
        [
            "generate",
            "molecules",
            "--reward",
            "qed",
            "--out",
            str(tmp_path),
            "-n",
            "4",
            "-M",
            "2",
            "--steps",
            "3",
            "--shard-size",
            "4",
            "--quiet",
            "--format",
            fmt,
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "samples.csv") if fmt == "csv" else pd.read_parquet(tmp_path / "samples.parquet")
    assert list(table.columns[:3]) == ["index", "sample", "reward"] and len(table) == 4
    assert table["reward"].dropna().between(0, 1).all()
    assert not (tmp_path / "smiles.csv").exists()  # one table, not the same data under two names
    records = [m for m in Chem.SDMolSupplier(str(tmp_path / "samples.sdf")) if m is not None]
    assert len(records) >= 1
    for mol in records:
        i = mol.GetIntProp("index")
        assert mol.GetProp("smiles") == table["sample"][i]
        assert mol.GetDoubleProp("reward") == pytest.approx(table["reward"][i], rel=1e-6)
    assert sorted(json.loads((tmp_path / "run.json").read_text())["outputs"]) == sorted(
        [f"samples.{fmt}", "samples.sdf"]
    )


def test_shipped_docking_value_network_drives_svdd_mc(process):
    from svdd.domains.molecules import load_value

    value = load_value("moses-selfies-docking")
    assert isinstance(value, svdd.LearnedValue) and value.fn.config["length"] == 56
    v = value(process.prior(2), 1.0)
    assert v.shape == (2,) and torch.isfinite(v).all()
    # a cheap final reward keeps the test fast; the value scores the intermediate states
    res = svdd.sample(process, QED(), value=value, num_samples=2, num_candidates=3, generator=seeded(0), progress=False)
    assert res.stats["model_calls"] == 2 * process.num_steps  # MC: one call per kept sample and step


@pytest.mark.parametrize("reward", ["qed", "sa"])
def test_shipped_qed_and_sa_value_networks_resolve_for_the_cli(process, reward):
    from svdd.runs.jobs import DomainJob

    _, _, value = DomainJob("molecules", reward, value="mc", steps=2).build()
    assert isinstance(value, svdd.LearnedValue)
    v = value(process.prior(3), 0.5)
    assert v.shape == (3,) and torch.isfinite(v).all()
    meta = json.loads(
        (
            Path(__file__).resolve().parents[1]
            / "domains"
            / "molecules"
            / "weights"
            / f"moses-selfies-{reward}-value.json"
        ).read_text()
    )["metadata"]
    assert meta["reward"] == reward and meta["rollouts"] >= 1024  # the training-set size is recorded
