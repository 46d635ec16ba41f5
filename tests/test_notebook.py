"""The molecule design notebook runs top to bottom (smoke-test budget: SVDD_NOTEBOOK_FAST=1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "molecule_design.ipynb"


@pytest.mark.slow
def test_molecule_design_notebook_executes(monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="the notebooks extra (nbformat) is not installed")
    nbclient = pytest.importorskip("nbclient", reason="the notebooks extra (nbclient) is not installed")
    pytest.importorskip("ipykernel", reason="the notebooks extra (ipykernel) is not installed")
    monkeypatch.setenv("SVDD_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(NOTEBOOK.parents[1]), os.environ.get("PYTHONPATH")]))
    )
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()
    outputs = [
        "".join(o.get("text", "") for o in cell.get("outputs", [])) for cell in nb.cells if cell.cell_type == "code"
    ]
    text = "\n".join(outputs)
    assert "SVDD (QED)" in text and "mean QED" in text and "dockings in" in text
    images = [o for cell in nb.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the molecule grid and the histograms
