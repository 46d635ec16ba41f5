"""A domain whose packages are missing is refused before any work, naming what to install."""

from __future__ import annotations

import importlib.util

import pytest
from typer.testing import CliRunner

import svdd.runs.plugins
from svdd.runs.cli import app
from svdd.runs.plugins import PluginError, load_domain


@pytest.fixture
def without_biopython(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        svdd.runs.plugins.importlib.util,
        "find_spec",
        lambda name, *a, **kw: None if name == "Bio" else real(name, *a, **kw),
    )


def test_a_domain_missing_a_package_is_refused_by_name(without_biopython):
    with pytest.raises(
        PluginError, match=r"domain 'dna' needs Bio, which is not installed: pip install 'svdd\[sequences\]'"
    ):
        load_domain("dna")


def test_svdd_generate_refuses_it_before_writing(without_biopython, tmp_path):
    result = CliRunner().invoke(app, ["generate", "dna", "--reward", "gc", "-n", "2", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "needs Bio" in result.output
    assert not (tmp_path / "o").exists()
    listed = CliRunner().invoke(app, ["domains"])
    assert "dna: unavailable (domain 'dna' needs Bio" in listed.output
