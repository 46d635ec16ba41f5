"""`svdd generate`: runs, resumes, executors and fast failures on bad arguments."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from svdd.runs.cli import app

runner = CliRunner()
SMALL = ["-n", "6", "-M", "2", "--steps", "3", "--shard-size", "3", "--quiet"]


def generate(*args):
    return runner.invoke(app, ["generate", *args])


def test_generate_dna_writes_fasta_csv_and_run_record(tmp_path):
    result = generate("dna", "--reward", "gc", "--out", str(tmp_path), *SMALL)
    assert result.exit_code == 0, result.output
    assert "6 samples in" in result.output
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["status"] == "complete" and record["settings"]["num_candidates"] == 2
    assert record["settings"]["description"]["reward"] == "gc"
    fasta = (tmp_path / "samples.fasta").read_text().splitlines()
    assert len(fasta) >= 12 and fasta[0].startswith(">sample_0 reward=")
    # a second invocation resumes: nothing left to do, same samples
    before = (tmp_path / "samples.csv").read_text()
    again = generate("dna", "--reward", "gc", "--out", str(tmp_path), *SMALL)
    assert again.exit_code == 0 and "resuming: 2 of 2 shards" in again.output
    assert (tmp_path / "samples.csv").read_text() == before


def test_custom_reward_by_module_path(tmp_path):
    result = generate("dna", "--reward", "rewards_for_cli:count_a", "--out", str(tmp_path), *SMALL)
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "samples.csv").read_text().splitlines()[1:]
    for row in rows:
        _, seq, reward = row.split(",")
        assert float(reward) == seq.count("A")


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["dna", "--reward", "sweetness"],
            "unknown reward 'sweetness' for domain 'dna'; shipped rewards: ars1, gc, motif",
        ),
        (["weather", "--reward", "x"], "unknown domain 'weather'; installed domains: dna, images, molecules"),
        (["dna", "--reward", "gc", "-M", "0"], "num_candidates must be an integer >= 1"),
        (["dna", "--reward", "gc", "--method", "beam_search"], "unknown method 'beam_search'"),
        (["dna", "--reward", "gc", "--value", "mc"], "no shipped MC value network for reward 'gc'"),
        (  # not the PARP1 value of plain "docking"
            ["molecules", "--reward", "docking=DRD2", "--value", "mc"],
            "no shipped MC value network for reward 'docking=DRD2'",
        ),
        (["dna", "--reward", "gc", "--option", "oops"], "--option takes key=value"),
        (["dna", "--reward", "gc", "--executor", "gpu"], "executor must be one of none, processes, ray"),
        (["dna", "--reward", "rewards_for_cli:wrong_length"], "returned 1 values for 2 objects"),
    ],
)
def test_bad_arguments_fail_fast_with_a_clear_message(tmp_path, args, message):
    result = generate(*args, "--out", str(tmp_path / "out"), "-n", "4", "--steps", "3", "--quiet")
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "out").exists()  # nothing written before every check passed


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = generate("dna", "--reward", "gc", "--out", str(blocker / "out"), *SMALL)
    assert result.exit_code == 2 and "cannot write to the output directory" in result.output


@pytest.mark.slow
def test_ray_local_cluster_matches_process_pool(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (the 'distributed' extra)")
    common = ["dna", "--reward", "gc", "--method", "svdd", *SMALL, "--workers", "2"]
    pool = generate(*common, "--out", str(tmp_path / "pool"), "--executor", "processes")
    ray = generate(*common, "--out", str(tmp_path / "ray"), "--executor", "ray")
    assert pool.exit_code == 0, pool.output
    assert ray.exit_code == 0, ray.output
    assert (tmp_path / "pool" / "samples.csv").read_text() == (tmp_path / "ray" / "samples.csv").read_text()


def test_train_value_resumes_and_its_network_guides_generate(tmp_path):
    args = [
        "train-value",
        "dna",
        "--reward",
        "gc",
        "--out",
        str(tmp_path / "v"),
        "--rollouts",
        "48",
        "--held-out",
        "16",
        "--steps",
        "3",
        "--quiet",
    ]
    first = runner.invoke(app, [*args, "--epochs", "1"])
    assert first.exit_code == 0, first.output
    rollouts_mtime = (tmp_path / "v" / "rollouts.pt").stat().st_mtime
    second = runner.invoke(app, [*args, "--epochs", "3"])  # continues from epoch 1's checkpoint
    assert second.exit_code == 0, second.output
    assert (tmp_path / "v" / "rollouts.pt").stat().st_mtime == rollouts_mtime  # reused, not redone
    record = json.loads((tmp_path / "v" / "value.json").read_text())
    meta = record["metadata"]
    assert record["class"] == "ConvValue" and record["config"]["length"] == 150
    assert len(meta["train_loss"]) == 3 and meta["steps"] == 3 and meta["domain"] == "dna"
    assert not (tmp_path / "v" / "value.pt").exists()
    value = str(tmp_path / "v" / "value.safetensors")
    result = generate("dna", "--reward", "gc", "--value", value, "--out", str(tmp_path / "gen"), *SMALL)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "gen" / "run.json").read_text())
    assert record["stats"]["value_calls"] > 0
    by_dir = generate("dna", "--reward", "gc", "--value", str(tmp_path / "v"), "--out", str(tmp_path / "gen3"), *SMALL)
    assert by_dir.exit_code == 0, by_dir.output  # the --out directory of train-value names its value network
    assert (tmp_path / "gen3" / "samples.csv").read_text() == (tmp_path / "gen" / "samples.csv").read_text()
    wrong = generate("rna", "--reward", "gc", "--value", value, "--out", str(tmp_path / "gen2"), *SMALL)
    assert wrong.exit_code == 2 and "trained for domain 'dna', not 'rna'" in wrong.output
