"""Docking value networks trained on a label set (`docking_value.py`), on a stand-in label whose
value is known: the heavy-atom count of MOSES molecules (no docking here)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("rdkit", reason="the molecules domain needs the molecules extra")

from rdkit import Chem

from svdd.domains.molecules import sample_smiles
from svdd.domains.molecules.docking_value import EVAL_TIMES, main, read_labels, split
from svdd.processes.weights import load_net


def write_labels(folder, n: int = 240):
    smiles = sample_smiles()[:n]  # shipped MOSES test molecules (the full splits need molsets)
    folder.mkdir()
    rows = ["index,source,smiles"] + [f"{i},{'moses' if i % 2 else 'prior'},{s}" for i, s in enumerate(smiles)]
    (folder / "molecules.csv").write_text("\n".join(rows) + "\n")
    labels = ["index,smiles,score,seconds"]
    for i, s in enumerate(smiles):
        score = "nan" if i == 5 else f"{Chem.MolFromSmiles(s).GetNumHeavyAtoms() / 4:.3f}"
        labels.append(f"{i},{s},{score},1.0")
    (folder / "docking_PARP1.csv").write_text("\n".join(labels) + "\n")
    return smiles


def test_labels_join_the_molecule_list_and_drop_nan(tmp_path):
    write_labels(tmp_path / "labels", n=20)
    table = read_labels(tmp_path / "labels", "PARP1")
    assert len(table) == 19 and 5 not in set(table["index"])
    assert set(table.columns) >= {"index", "source", "smiles", "score"}
    train, held = split(100, 0.1, seed=0)
    assert len(held) == 10 and not set(train) & set(held) and len(train) + len(held) == 100


def test_a_value_trained_on_labels_tracks_them_at_every_time_and_records_how(tmp_path):
    write_labels(tmp_path / "labels")
    out = tmp_path / "value"
    meta = main([str(tmp_path / "labels"), "--target", "PARP1", "--out", str(out), "--epochs", "150",
                 "--channels", "32", "--blocks", "2", "--held-out", "0.2", "--dropout", "0"])  # fmt: skip
    _, saved = load_net(out.with_suffix(".safetensors"))
    corr = saved["held_out_correlation"]
    assert list(corr) == [f"{t:.3f}" for t in EVAL_TIMES]
    assert corr["0.000"] > 0.8, corr  # the atom count is visible in a clean molecule
    assert corr["0.875"] < corr["0.000"]  # mostly masked states say less
    assert saved["labels"] == 239 and saved["held_out_size"] == 48 and saved["target"] == "PARP1"
    assert saved["label_sources"] == {"moses": 119, "prior": 120}  # index 5 (moses) has no label
    assert meta["command"].startswith("python -m svdd.domains.molecules.docking_value")
    assert json.loads(out.with_suffix(".json").read_text())["class"] == "ConvValue"


def test_bad_label_folders_and_fractions_are_refused_before_training(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--target", "PARP1", "--out", str(tmp_path / "v")])
    assert "must be an output folder of docking_labels.py" in capsys.readouterr().err
    write_labels(tmp_path / "labels", n=20)
    with pytest.raises(SystemExit):
        main([str(tmp_path / "labels"), "--target", "PARP1", "--out", str(tmp_path / "v"), "--held-out", "1.5"])
    assert "--held-out must be a fraction in (0, 1)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(tmp_path / "labels"), "--target", "PARP1", "--out", str(tmp_path / "v")])
    assert "need >= 20" in capsys.readouterr().err
    assert not (tmp_path / "v.safetensors").exists()
