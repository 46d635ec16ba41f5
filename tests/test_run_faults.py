"""Run directories under faults: concurrent runs, killed parents, damaged files, a full disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from jobs import ToyJob

from svdd.runs.generation import RunSettings, generate, shard_path
from svdd.runs.rundir import HOST, RunDirectory

TESTS = Path(__file__).parent
SETTINGS = dict(num_samples=24, shard_size=4, num_candidates=2)


def quiet(job, out, **kw):
    return generate(job, RunSettings(**SETTINGS), out, progress=False, log=lambda m: None, **kw)


def script(out: Path, *, seed: int = 0, sleep_s: float = 0.0, cooperate: bool = False, workers: int = 0) -> str:
    """A run of the toy job into `out`, as a separate process (`workers` > 0: on a process pool)."""
    return textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(TESTS)!r})
        from jobs import ToyJob
        from svdd.runs.executors import process_pool
        from svdd.runs.generation import RunSettings, generate
        s = RunSettings(num_samples=24, shard_size=4, num_candidates=2, seed={seed})
        generate(ToyJob(sleep_s={sleep_s}), s, {str(out)!r}, progress=False, poll_s=0.1,
                 cooperate={cooperate}, log=lambda m: print(m, flush=True),
                 executor=process_pool({workers}) if {workers} else None)
    """)


def start(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout=60.0):
    end = time.time() + timeout
    while time.time() < end:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_a_second_run_on_a_busy_directory_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "run"
    # 6 shards x 1 s: still running while a loaded machine starts the second process
    first = start(script(out, seed=0, sleep_s=1.0))
    assert wait_for(lambda: (out / "run.json").exists())
    second = start(script(out, seed=1))
    _, err = second.communicate(timeout=60)
    assert second.returncode != 0
    assert f"is in use by another svdd run (PID {first.pid} on {HOST})" in err
    first.communicate(timeout=120)
    assert first.returncode == 0
    record = json.loads((out / "run.json").read_text())
    assert record["settings"]["seed"] == 0 and record["status"] == "complete"  # not mixed with seed 1
    quiet(ToyJob(), tmp_path / "alone")
    assert (out / "samples.csv").read_text() == (tmp_path / "alone" / "samples.csv").read_text()


@pytest.mark.slow
def test_cooperating_workers_share_shards_and_match_one_worker(tmp_path):
    quiet(ToyJob(), tmp_path / "alone")
    out = tmp_path / "shared"
    workers = [start(script(out, sleep_s=0.05, cooperate=True)) for _ in range(2)]
    logs = [w.communicate(timeout=180) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [e[-800:] for _, e in logs]
    written = [
        line.split()[1]
        for out_text, _ in logs
        for line in out_text.splitlines()
        if line.startswith("shard ") and " written:" in line
    ]
    assert sorted(written, key=int) == [str(k) for k in range(6)]  # each shard exactly once, over both
    assert all(any(" written:" in line for line in o.splitlines()) for o, _ in logs)  # both did work
    assert (out / "samples.csv").read_text() == (tmp_path / "alone" / "samples.csv").read_text()
    assert not list(out.glob("shards/*.claim")) and not list(out.glob("**/*.tmp-*"))


def test_a_cooperating_worker_keeps_the_temporary_files_of_live_writers(tmp_path):
    out = tmp_path / "run"
    (out / "shards").mkdir(parents=True)
    live = out / "shards" / f"shard-00003.json.tmp-{HOST}-{os.getpid()}"
    dead = out / "shards" / f"shard-00004.json.tmp-{HOST}-999999999"
    live.write_text("in flight")
    dead.write_text("left by a killed run")
    run_dir = RunDirectory(out)
    run_dir.acquire(shared=True)
    try:
        assert run_dir.clean_leftovers() == 1
    finally:
        run_dir.release()
    assert live.exists() and not dead.exists()


@pytest.mark.slow
def test_killing_the_parent_of_a_process_pool_kills_its_workers(tmp_path):
    parent = start(script(tmp_path / "run", sleep_s=0.3, workers=2))
    try:
        assert wait_for(lambda: len(_children(parent.pid)) >= 2, timeout=60), "the pool never started"
        children = _children(parent.pid)
        assert wait_for(lambda: list((tmp_path / "run" / "shards").glob("*.claim")), timeout=60)
        os.kill(parent.pid, signal.SIGKILL)
        parent.communicate(timeout=10)
        assert wait_for(lambda: not any(_alive(pid) for pid in children), timeout=10), (
            f"orphans alive: {[p for p in children if _alive(p)]}"
        )
    finally:
        if parent.poll() is None:
            parent.kill()


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"  # a zombie has exited


def test_damaged_files_are_named_and_redone(tmp_path):
    out = tmp_path / "run"
    clean = quiet(ToyJob(), out)
    payload = json.loads(shard_path(out, 1).read_text())
    del payload["stats"]
    shard_path(out, 1).write_text(json.dumps(payload))
    payload = json.loads(shard_path(out, 2).read_text())
    payload["stats"]["model_calls"] += 1000  # counters are covered by the checksum
    shard_path(out, 2).write_text(json.dumps(payload))
    shard_path(out, 3).unlink()
    shard_path(out, 3).mkdir()
    (out / "run.json").write_text("[]")
    (out / f"samples.csv.tmp-{HOST}-999999999").write_text("left over")
    messages: list[str] = []
    again = generate(ToyJob(), RunSettings(**SETTINGS), out, progress=False, log=messages.append)
    assert again.samples == clean.samples
    counts = ("model_calls", "reward_calls", "value_calls")
    assert [again.record["stats"][k] for k in counts] == [clean.record["stats"][k] for k in counts]
    text = "\n".join(messages)
    assert "run.json is damaged" in text and str(out / "run.json") in text
    assert "shard 1 is unusable (missing or malformed stats)" in text
    assert "shard 2 is unusable (checksum mismatch)" in text
    assert "shard 3 is unusable (not a file)" in text and str(shard_path(out, 3)) in text
    assert again.record["shards_done_this_invocation"] == 3
    assert list((out / "shards").glob("shard-00003.json.damaged-*"))  # the directory kept aside
    assert not list(out.glob("*.tmp-*"))


def test_a_full_disk_is_one_clear_line_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    cli = textwrap.dedent(f"""
        import resource, signal, sys
        sys.path.insert(0, {str(TESTS)!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1500, 1500))   # no file above 1.5 kB, like a full disk
        from svdd.runs.cli import main
        sys.argv = ["svdd", "generate", "--process", {str(TESTS / "toy_plugin.py")!r} + ":make_process",
                    "--reward", {str(TESTS / "toy_plugin.py")!r} + ":weighted_sum", "-n", "24", "-M", "2",
                    "--shard-size", "4", "--out", {str(out)!r}, "--quiet"]
        main()
    """)
    proc = subprocess.run([sys.executable, "-c", cli], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-1500:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "File too large" in errors[0] and "rerun the same command to resume" in errors[0]
    assert "Traceback" not in proc.stderr
    assert not list(out.glob("**/*.tmp-*"))  # the failed write left no temporary file
    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "svdd.runs.cli",
            "generate",
            "--process",
            f"{TESTS / 'toy_plugin.py'}:make_process",
            "--reward",
            f"{TESTS / 'toy_plugin.py'}:weighted_sum",
            "-n",
            "24",
            "-M",
            "2",
            "--shard-size",
            "4",
            "--out",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr[-1500:]
    assert len((out / "samples.csv").read_text().splitlines()) == 25
