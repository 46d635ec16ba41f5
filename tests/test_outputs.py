"""Run outputs: numbers as the shortest text that reads back, tables, Result in pandas and Jupyter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import svdd
from svdd.outputs import format_number, write_table
from svdd.toys import GaussianMixtureDiffusion


@pytest.mark.parametrize("value, text", [
    (float(np.float32(66.1)), "66.1"),      # a float32 reward, not 66.0999984741211
    (0.1, "0.1"), (1 / 3, "0.3333333333333333"), (2.0, "2.0"), (7, "7"),
    (float("nan"), ""), (None, ""), (float("inf"), "inf"), (float("-inf"), "-inf"),
])
def test_format_number(value, text):
    assert format_number(value) == text
    if text not in ("", "inf", "-inf"):
        assert float(text) == pytest.approx(value, rel=1e-7)


def test_write_table_csv_and_parquet(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    columns = {"index": [0, 1], "sample": ["AC", "GT"], "reward": [float(np.float32(0.3)), None]}
    write_table(tmp_path / "t.csv", columns, "csv")
    assert (tmp_path / "t.csv").read_text().splitlines() == ["index,sample,reward", "0,AC,0.3", "1,GT,"]
    write_table(tmp_path / "t.parquet", columns, "parquet")
    frame = pd.read_parquet(tmp_path / "t.parquet")
    assert frame["sample"].tolist() == ["AC", "GT"] and np.isnan(frame["reward"][1])
    with pytest.raises(ValueError, match="differ in length"):
        write_table(tmp_path / "bad.csv", {"a": [1], "b": [1, 2]})


def test_result_to_pandas_and_html():
    pytest.importorskip("pandas")
    res = svdd.sample(GaussianMixtureDiffusion(num_steps=5), lambda xs: [-(x - 3) ** 2 for x in xs],
                      num_samples=6, num_candidates=2, generator=torch.Generator().manual_seed(0), progress=False)
    frame = res.to_pandas()
    assert list(frame.columns) == ["sample", "reward"] and len(frame) == 6
    assert np.allclose(frame["reward"].to_numpy(), res.rewards)
    page = res._repr_html_()
    assert "svdd.Result" in page and "model_calls" in page and f"{res.rewards.max():.4g}" in page
