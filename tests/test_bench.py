"""`python -m benchmarks`: the Table 1 runner on tiny settings (a smoke run of the benchmark machinery).

The benchmarks live in the repository, not in the installed package: they run from a clone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )


def test_bench_refuses_an_unknown_table():
    result = bench("table7")
    assert result.returncode != 0
    assert "table1" in result.stderr and "table7" in result.stderr


@pytest.mark.slow
def test_table1_quick_writes_cells_with_intervals_and_reuses_them(tmp_path):
    pytest.importorskip("svdd.domains.sequences")
    args = ["table1", "--quick", "--rows", "dna_ars1", "--methods", "pretrained,svdd_pm,svdd_r", "--out", str(tmp_path)]
    first = bench(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    cell = json.loads((tmp_path / "table1" / "dna_ars1" / "svdd_pm.json").read_text())
    s = cell["summary"]
    assert s["median_ci"][0] <= s["median"] <= s["median_ci"][1]
    assert s["p90_ci"][0] <= s["p90"] <= s["p90_ci"][1]
    assert 0.0 < s["diversity"] <= 1.0 and s["elbo_nats"] < 0
    assert cell["settings"]["num_samples"] == 8 and len(cell["rewards"]) == 8
    table = (tmp_path / "table1.md").read_text()
    assert "| SVDD-PM |" in table and "n/a: the states are discrete" in table and "| SMC | not run |" in table
    again = bench(*args)
    assert again.returncode == 0 and "dna_ars1/svdd_pm: kept" in again.stdout
