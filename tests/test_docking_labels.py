"""The docking label script's resume bookkeeping and its refusals (no docking here: Vina takes
seconds per ligand; `python -m svdd.domains.molecules.docking_labels` is run by hand)."""

from __future__ import annotations

import pytest

pytest.importorskip("rdkit", reason="the molecules domain needs the molecules extra")

from svdd.domains.molecules.docking_labels import done_indices, main


def test_a_line_cut_by_a_kill_is_dropped_and_docked_again(tmp_path):
    path = tmp_path / "docking_PARP1.csv"
    path.write_text("index,smiles,score,seconds\n0,CCO,3.100,1.00\n1,CCN,nan,1.00\n2,CC")
    assert done_indices(path) == {0, 1}
    assert path.read_text().endswith("1,CCN,nan,1.00\n")  # the cut line is gone, the rest kept
    assert done_indices(tmp_path / "missing.csv") == set()


def test_bad_targets_and_sizes_are_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "labels"
    with pytest.raises(SystemExit):
        main([str(out), "--targets", "PARP1", "NOPE1"])
    assert "unknown DOCKSTRING targets ['NOPE1']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(out), "--moses", "0", "--prior", "0"])
    assert not out.exists()
