"""Sharded, resumable batch generation (svdd.runs)."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from jobs import ToyJob

from svdd.rewards import RewardError
from svdd.runs.generation import RunSettings, generate, read_shard, shard_path

TESTS = Path(__file__).parent


def settings(**kw):
    kw.setdefault("num_samples", 50)
    kw.setdefault("shard_size", 8)
    kw.setdefault("num_candidates", 4)
    return RunSettings(**kw)


def quiet(job, s, out, **kw):
    return generate(job, s, out, progress=False, log=lambda msg: None, **kw)


def test_a_clean_run_writes_every_sample_once(tmp_path):
    s = settings()
    run = quiet(ToyJob(), s, tmp_path)
    assert len(run.samples) == 50 and run.rewards.shape == (50,)
    assert len(list((tmp_path / "shards").glob("shard-*.json"))) == s.num_shards == 7
    rows = (tmp_path / "samples.csv").read_text().splitlines()
    assert rows[0] == "index,sample,reward" and len(rows) == 51
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["status"] == "complete" and record["settings"]["seed"] == 0
    assert record["stats"]["model_calls"] > 0 and "torch" in record["environment"]["versions"]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(tmp_path):
    clean = quiet(ToyJob(), settings(), tmp_path / "clean")
    out = tmp_path / "killed"
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(TESTS)!r})
        from jobs import ToyJob
        from svdd.runs.generation import RunSettings, generate
        s = RunSettings(num_samples=50, shard_size=8, num_candidates=4)
        # the reward is called 3 times per shard (2 PM steps + the last one) after 1 check call
        generate(ToyJob(die_after=1 + 3 * 3 + 2), s, {str(out)!r}, progress=False)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -9  # SIGKILL, in the middle of the fourth shard
    assert len(list((out / "shards").glob("shard-*.json"))) == 3
    assert not (out / "samples.csv").exists()
    resumed = quiet(ToyJob(), settings(), out)
    assert resumed.samples == clean.samples
    assert np.array_equal(resumed.rewards, clean.rewards)
    assert resumed.record["shards_done_this_invocation"] == 4


def test_corrupt_or_foreign_shards_are_redone(tmp_path):
    s = settings()
    clean = quiet(ToyJob(), s, tmp_path)
    path = shard_path(tmp_path, 2)
    payload = json.loads(path.read_text())
    payload["samples"][0] = "999"  # tampered content: checksum no longer matches
    path.write_text(json.dumps(payload))
    shard_path(tmp_path, 4).write_text('{"format": "svdd-shard/1", "shard": 4, "sam')  # truncated
    assert read_shard(tmp_path, s, 2)[1] == "checksum mismatch"
    assert read_shard(tmp_path, s, 4)[1].startswith("unreadable")
    messages = []
    again = generate(ToyJob(), s, tmp_path, progress=False, log=messages.append)
    assert again.samples == clean.samples
    assert again.record["shards_done_this_invocation"] == 2
    assert any("shard 2 is unusable (checksum mismatch)" in m for m in messages)


@pytest.mark.slow
def test_process_pool_matches_serial_run(tmp_path):
    serial = quiet(ToyJob(), settings(), tmp_path / "serial")
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        parallel = quiet(ToyJob(), settings(), tmp_path / "pool", executor=pool)
    assert parallel.samples == serial.samples
    assert np.array_equal(parallel.rewards, serial.rewards)


def test_samples_do_not_depend_on_the_shard_size_for_svdd(tmp_path):
    a = quiet(ToyJob(), settings(shard_size=8), tmp_path / "a")
    b = quiet(ToyJob(), settings(shard_size=13), tmp_path / "b")
    assert a.samples == b.samples


def test_other_settings_in_the_same_directory_are_refused(tmp_path):
    quiet(ToyJob(), settings(), tmp_path)
    with pytest.raises(ValueError, match="other settings.*num_candidates: 4 -> 5"):
        quiet(ToyJob(), settings(num_candidates=5), tmp_path)


def test_reward_failures_become_nan_and_are_counted(tmp_path):
    run = quiet(ToyJob(fail_on_two=True), settings(method="pretrained"), tmp_path)
    leading_two = [s.startswith("2") for s in run.samples]
    assert any(leading_two)
    assert np.isnan(run.rewards[leading_two]).all() and np.isfinite(run.rewards[~np.array(leading_two)]).all()
    # failures count the distinct objects the reward raised on (identical ones are scored once)
    assert 0 < run.record["reward_failures"] <= sum(leading_two)
    assert run.record["invalid_samples"] == sum(leading_two)


def test_bad_reward_output_fails_before_any_shard(tmp_path):
    with pytest.raises(RewardError, match="returned 1 values for 2 objects"):
        quiet(ToyJob(bad_output=True), settings(), tmp_path)
    assert not list(tmp_path.glob("shards/*"))


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises((PermissionError, OSError), match="cannot write|Not a directory|exists"):
        quiet(ToyJob(), settings(), blocker / "out")


def test_settings_are_validated():
    with pytest.raises(ValueError, match="shard_size must be an integer >= 1"):
        settings(shard_size=0)


@pytest.mark.slow
def test_two_ranks_split_the_shards_and_rank_zero_merges(tmp_path):
    """As under `accelerate launch --num_processes 2`: RANK/WORLD_SIZE split the shards."""
    quiet(ToyJob(), settings(), tmp_path / "clean")
    out = tmp_path / "ranks"
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(TESTS)!r})
        from jobs import ToyJob
        from svdd.runs.generation import RunSettings, generate
        s = RunSettings(num_samples=50, shard_size=8, num_candidates=4)
        result = generate(ToyJob(), s, {str(out)!r}, progress=False, poll_s=0.2)
        print("merged" if result is not None else "worker")
    """)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "RANK": str(r), "WORLD_SIZE": "2"},
        )
        for r in (1, 0)
    ]
    outputs = [p.communicate(timeout=120)[0].strip().splitlines()[-1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outputs == ["worker", "merged"]
    merged = (out / "samples.csv").read_text()
    assert merged == (tmp_path / "clean" / "samples.csv").read_text()
    assert json.loads((out / "run.json").read_text())["world_size"] == 2
