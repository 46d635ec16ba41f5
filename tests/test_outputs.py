"""Run outputs: numbers as the shortest text that reads back, tables, Result in pandas and Jupyter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import svdd
from svdd.processes.toys import GaussianMixtureDiffusion
from svdd.runs.outputs import format_number, write_table


@pytest.mark.parametrize(
    "value, text",
    [
        (float(np.float32(66.1)), "66.1"),  # a float32 reward, not 66.0999984741211
        (0.1, "0.1"),
        (1 / 3, "0.3333333333333333"),
        (2.0, "2.0"),
        (7, "7"),
        (float("nan"), ""),
        (None, ""),
        (float("inf"), "inf"),
        (float("-inf"), "-inf"),
    ],
)
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
    res = svdd.sample(
        GaussianMixtureDiffusion(num_steps=5),
        lambda xs: [-((x - 3) ** 2) for x in xs],
        num_samples=6,
        num_candidates=2,
        generator=torch.Generator().manual_seed(0),
        progress=False,
    )
    frame = res.to_pandas()
    assert list(frame.columns) == ["sample", "reward"] and len(frame) == 6
    assert np.allclose(frame["reward"].to_numpy(), res.rewards)
    page = res._repr_html_()
    assert "svdd.Result" in page and "model_calls" in page and f"{res.rewards.max():.4g}" in page


def test_sample_reports_every_step_to_its_callback():
    seen = []
    process = GaussianMixtureDiffusion(num_steps=6)
    svdd.sample(
        process,
        lambda xs: [0.0] * len(xs),
        num_samples=3,
        num_candidates=2,
        progress=False,
        callback=seen.append,
        generator=torch.Generator().manual_seed(0),
    )
    assert [s["step"] for s in seen] == [1, 2, 3, 4, 5, 6] and {s["num_steps"] for s in seen} == {6}
    assert [s["t"] for s in seen] == list(process.timesteps)
    with pytest.raises(TypeError, match="callback must be callable"):
        svdd.sample(process, lambda xs: [0.0] * len(xs), num_samples=1, callback="print")


def test_a_shard_in_another_process_reports_its_progress_to_a_file(tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    from jobs import ToyJob

    from svdd.runs.shards import RunSettings, progress_path, run_shard

    settings = RunSettings(num_samples=4, shard_size=4, num_candidates=2)
    fractions = []
    run_shard(ToyJob(), settings, tmp_path, 0, report=fractions.append)
    assert fractions == pytest.approx([1 / 3, 2 / 3, 1.0])  # the toy has 3 steps
    real_write = Path.write_text
    written = []

    def spy(self, text, *a, **kw):
        if self.name.endswith(".progress"):
            written.append(text)
        return real_write(self, text, *a, **kw)

    monkeypatch.setattr(Path, "write_text", spy)
    run_shard(ToyJob(), settings, tmp_path, 0, report_to_file=True)
    monkeypatch.undo()
    assert written == ["0.3333", "0.6667", "1.0000"]
    assert not progress_path(tmp_path, 0).exists()  # removed once the shard is written
