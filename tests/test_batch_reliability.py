"""`svdd generate` and `svdd.runs` under bad inputs, damaged run directories and failing user code.

Each test is a case that an adversarial pass over the batch side found handled badly (a
traceback, an unclear message, a silent wrong result, a hang): one clear `error:` line and
nothing written, or the damaged file named and redone.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import textwrap
from pathlib import Path

import pytest
from jobs import PictureJob, ToyJob
from typer.testing import CliRunner

from svdd.rewards import RewardError, evaluate
from svdd.runs.cli import app
from svdd.runs.generation import RunSettings, generate, read_record, read_shard
from svdd.runs.rundir import FINALIZE_LOCK, HOLDERS_DIR, HOST, LOCK_FILE, RunDirectory, RunWriteError

TESTS = Path(__file__).parent
TOY = str(TESTS / "toy_plugin.py")
runner = CliRunner()
SETTINGS = dict(num_samples=12, shard_size=4, num_candidates=2)


def quiet(job, out, messages=None, **kw):
    log = messages.append if messages is not None else (lambda m: None)
    return generate(job, RunSettings(**{**SETTINGS, **kw}), out, progress=False, log=log)


def cli(*args, process=f"{TOY}:make_process", reward=f"{TOY}:weighted_sum"):
    """`svdd generate` on the toy process: (exit code, the `error:` lines, all the output)."""
    common = ["-n", "4", "-M", "2", "--shard-size", "2", "--quiet"]
    result = runner.invoke(app, ["generate", "--process", process, "--reward", reward, *common, *args])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    return result.exit_code, errors, result.output


def refused(out: Path, *args, **kw) -> str:
    """The one `error:` line of a refused command; asserts nothing was written to `out`."""
    code, errors, output = cli("--out", str(out), *args, **kw)
    assert code == 2 and len(errors) == 1 and "Traceback" not in output, output
    assert not out.exists(), sorted(p.name for p in out.iterdir())
    return errors[0]


@pytest.fixture
def user_code(tmp_path):
    """A user module of process factories and values that fail in the ways the tests need."""
    path = tmp_path / "user_code.py"
    path.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from toy_plugin import make_process

        def model_raises(num_steps=3):
            process = make_process(num_steps)
            def model(x, t):
                raise RuntimeError("the model exploded")
            process.model = model
            return process

        def exits(num_steps=3):
            raise SystemExit(1)

        def objects(num_steps=3):
            process = make_process(num_steps)
            process.decode = lambda x0: [object() for _ in range(x0.shape[0])]
            return process

        def value_raises(x, t):
            raise RuntimeError("the value network is broken")

        def value_out_of_memory(x, t):
            raise MemoryError()
        """)
    )
    return str(path)


# -- bad inputs: one error line, nothing written -------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["-n", "abc"], "Invalid value for '-n' / '--num-samples'"),
        (["--alpha", ""], "Invalid value for '--alpha'"),
        (["--steps", "1.5"], "Invalid value for '--steps'"),
    ],
)
def test_a_value_of_the_wrong_type_is_one_error_line(tmp_path, args, message):
    assert message in refused(tmp_path / "out", *args)


def test_a_missing_out_is_one_error_line():
    code, errors, output = cli()
    assert code == 2 and errors == ["error: Missing option '--out' / '-o'."], output


def test_steps_past_any_schedule_are_refused_before_the_model_is_built(tmp_path):
    # a schedule of 10**9 steps used to be built (24 GB, the machine's memory) before failing
    assert "--steps must be at most 100000" in refused(tmp_path / "out", "--steps", "1000000000")


def test_more_samples_than_a_run_numbers_are_refused(tmp_path):
    # -n 10**12 used to start a run that never showed progress (a scan of 10**10 shard names)
    assert "num_samples must be at most 2147483647" in refused(tmp_path / "out", "-n", str(10**12))


def test_settings_bound_num_samples():
    with pytest.raises(ValueError, match="num_samples must be at most 2147483647"):
        RunSettings(num_samples=2**31)
    assert RunSettings(num_samples=2**31 - 1).num_shards == 33554432


def test_an_option_given_twice_is_refused(tmp_path):
    line = refused(
        tmp_path / "out",
        "--method",
        "svdd_r",
        "--option",
        "resample_fraction=0.2",
        "--option",
        "resample_fraction=0.5",
    )
    assert "--option resample_fraction is given twice" in line


def test_a_domain_option_given_twice_or_unknown_without_a_value_is_named(tmp_path):
    common = ["generate", "dna", "--reward", "gc", "-n", "2", "--steps", "2", "--out", str(tmp_path / "o")]
    twice = runner.invoke(app, [*common, "--motif=a", "--motif=b"])
    assert twice.exit_code == 2 and "option --motif is given twice" in twice.output
    typo = runner.invoke(app, [*common, "--quite"])  # a mistyped flag used to need "a value"
    assert typo.exit_code == 2 and "domain 'dna' has no option --quite" in typo.output
    assert not (tmp_path / "o").exists()


def test_a_shipped_reward_that_takes_no_argument_refuses_one(tmp_path):
    result = runner.invoke(app, ["generate", "dna", "--reward", "gc=abc", "-n", "2", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "gc takes no argument; got gc=abc" in result.output  # was ignored
    out = str(tmp_path / "o")
    result = runner.invoke(app, ["generate", "molecules", "--reward", "qed=abc", "-n", "2", "--out", out])
    assert result.exit_code == 2 and "qed takes no argument; got qed=abc" in result.output  # was ignored too
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("device", ["meta", "mps", "xla"])
def test_a_device_this_machine_lacks_is_refused(device):
    from svdd.runs.jobs import resolve_device

    with pytest.raises(ValueError, match=f"--device '{device}' is not available on this machine"):
        resolve_device(device)  # used to pass, then fail inside the model with a traceback


def test_a_garbled_local_rank_is_named(monkeypatch):
    from svdd.runs.jobs import resolve_device

    monkeypatch.setenv("LOCAL_RANK", "x")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="LOCAL_RANK must be an integer; got 'x'"):
        resolve_device(None)


def test_out_that_is_a_file_or_a_broken_link_is_named(tmp_path):
    (tmp_path / "file").write_text("x")
    code, errors, _ = cli("--out", str(tmp_path / "file"))
    assert code == 2 and "exists and is not a directory" in errors[0]
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    code, errors, _ = cli("--out", str(tmp_path / "link"))
    assert code == 2 and f"is a symbolic link to {tmp_path / 'nowhere'}, which does not exist" in errors[0]


def test_an_unreachable_ray_cluster_fails_fast():
    from svdd.runs.executors import check_reachable

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionError, match=f"cannot reach the Ray cluster at '127.0.0.1:{port}'"):
        check_reachable(f"127.0.0.1:{port}")  # ray.init itself retried for minutes
    with pytest.raises(ValueError, match="--ray-address must be host:port"):
        check_reachable("bogus")


# -- the user's code failing: one line, naming what and where ------------------------------------


def test_a_model_that_fails_on_the_trial_is_one_line(tmp_path, user_code):
    line = refused(tmp_path / "out", process=f"{user_code}:model_raises")
    assert "a trial run of the model (2 pretrained samples) failed: RuntimeError: the model exploded" in line
    assert "(at user_code.py:" in line
    assert line.endswith("; nothing was written") and "shards written so far" not in line


def test_a_factory_calling_sys_exit_is_one_line(tmp_path, user_code):
    line = refused(tmp_path / "out", process=f"{user_code}:exits")
    assert "raised SystemExit: 1" in line  # used to exit 1 without a word


def test_samples_that_cannot_be_recorded_are_refused_before_anything_is_written(tmp_path, user_code):
    assert "cannot record a sample of type object" in refused(tmp_path / "out", process=f"{user_code}:objects")


def test_a_value_failing_in_a_shard_is_one_line_and_does_not_bind_the_directory(tmp_path, user_code):
    out = tmp_path / "out"
    code, errors, output = cli("--out", str(out), "--value", f"{user_code}:value_raises")
    assert code == 2 and len(errors) == 1 and "Traceback" not in output, output
    assert "shard 0 failed: RuntimeError: the value network is broken (at user_code.py:" in errors[0]
    assert errors[0].endswith("the shards written so far are kept: fix the cause and rerun the same command to resume")
    # the corrected command on the same directory runs (the failed run wrote no shard to keep)
    code, errors, output = cli("--out", str(out))
    assert code == 0, output


def test_running_out_of_memory_in_a_shard_says_so(tmp_path, user_code):
    # a MemoryError has no message: the line used to read "MemoryError:  (at ...)"
    code, errors, output = cli("--out", str(tmp_path / "out"), "--value", f"{user_code}:value_out_of_memory")
    assert code == 2 and len(errors) == 1 and "Traceback" not in output, output
    assert "error: shard 0 failed: MemoryError (at user_code.py:" in errors[0]


def test_a_run_json_of_a_run_that_left_shards_or_completed_still_binds_the_directory(tmp_path):
    out = tmp_path / "run"
    quiet(ToyJob(), out)
    with pytest.raises(ValueError, match="other settings"):
        quiet(ToyJob(), out, seed=1)  # complete
    record = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**record, "status": "running"}))
    with pytest.raises(ValueError, match="other settings"):
        quiet(ToyJob(), out, seed=1)  # shards on disk
    for shard in (out / "shards").glob("shard-*.json"):
        shard.unlink()
    messages: list[str] = []
    quiet(ToyJob(), out, messages, seed=1)
    assert any("wrote no shard; this run replaces it" in m for m in messages)
    assert json.loads((out / "run.json").read_text())["settings"]["seed"] == 1


# -- damaged run directories: named and redone, or one clear line --------------------------------


def test_a_run_json_missing_keys_or_with_a_garbled_digest_is_damaged_not_fatal(tmp_path):
    out = tmp_path / "run"
    clean = quiet(ToyJob(), out)
    record = json.loads((out / "run.json").read_text())
    for damaged in (
        {k: v for k, v in record.items() if k != "started"},  # was a KeyError traceback
        {**record, "settings": 5, "settings_digest": "x"},  # was an AttributeError traceback
        {**record, "settings_digest": "0000"},  # was refused as "a run made with other settings"
    ):
        (out / "run.json").write_text(json.dumps(damaged))
        assert quiet(ToyJob(), out).samples == clean.samples


def test_a_directory_in_place_of_run_json_or_a_file_in_place_of_shards_is_set_aside(tmp_path):
    out = tmp_path / "run"
    clean = quiet(ToyJob(), out)
    (out / "run.json").unlink()
    (out / "run.json").mkdir()  # was refused: cannot write run.json: Is a directory
    assert quiet(ToyJob(), out).samples == clean.samples
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    assert list(out.glob("run.json.damaged-*"))
    for shard in (out / "shards").iterdir():
        shard.unlink()
    (out / "shards").rmdir()
    (out / "shards").write_text("not a directory")  # was refused: "File exists", no file named
    messages: list[str] = []
    assert quiet(ToyJob(), out, messages).samples == clean.samples
    assert any("shards is not a directory; it is kept as shards.damaged-" in m for m in messages)


def test_damaged_holders_registry_does_not_stop_a_run(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / HOLDERS_DIR).write_text("a file where the registry goes")  # was "cannot write ...: File exists"
    clean = quiet(ToyJob(), out)
    assert len(clean.samples) == 12 and (out / HOLDERS_DIR).is_dir()


def test_a_lock_file_that_is_a_directory_is_named(tmp_path):
    out = tmp_path / "run"
    (out / LOCK_FILE).mkdir(parents=True)
    with pytest.raises(RunWriteError, match=f"cannot open the lock file {out / LOCK_FILE}: is a directory"):
        quiet(ToyJob(), out)


def test_a_damaged_png_is_named_and_redone(tmp_path):
    out = tmp_path / "run"
    clean = quiet(PictureJob(), out, method="pretrained")
    png = out / "samples" / "0000005.png"
    good = png.read_bytes()
    png.write_bytes(good[: len(good) // 2])  # was used as it was: its shard only checked it existed
    settings = RunSettings(**SETTINGS, method="pretrained")
    assert (
        read_shard(out, settings, 1)[1]
        == "sample file samples/0000005.png is damaged (its content changed since the shard was written)"
    )
    messages: list[str] = []
    again = quiet(PictureJob(), out, messages, method="pretrained")
    assert png.read_bytes() == good and again.samples == clean.samples
    assert any("shard 1 is unusable (sample file samples/0000005.png is damaged" in m for m in messages)


def test_a_file_in_place_of_the_samples_directory_is_set_aside(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "samples").write_text("not a directory")  # was "File exists" with no file named
    run = quiet(PictureJob(), out, method="pretrained")
    assert (out / "samples" / "0000000.png").is_file() and len(run.samples) == 12
    assert list(out.glob("samples.damaged-*"))


def test_an_os_error_names_its_file(tmp_path, monkeypatch):
    import svdd.runs.rundir

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/somewhere/shards/shard-00000.claim.tmp")

    monkeypatch.setattr(svdd.runs.rundir.RunDirectory, "claim", no_space)
    code, errors, _ = cli("--out", str(tmp_path / "out"))
    assert code == 2 and "No space left on device: /somewhere/shards/shard-00000.claim.tmp" in errors[0]


# -- claims and cooperation --------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["", "garbage", "dir"])
def test_a_damaged_claim_is_taken_over(tmp_path, damage):
    """A worker killed between creating its claim and writing it left an empty claim, which
    every cooperating worker took for a live one and waited on forever."""
    run_dir = RunDirectory(tmp_path)
    path = run_dir.claim_path(3)
    path.parent.mkdir(parents=True)
    if damage == "dir":
        path.mkdir()
    else:
        path.write_text(damage)
    assert not run_dir.claimed_by_live_worker(3)
    assert run_dir.claim(3) and path.read_text().split()[:2] == [HOST, str(os.getpid())]
    assert not list(path.parent.glob("*.tmp-*"))


def test_a_claim_is_never_seen_half_written(tmp_path, monkeypatch):
    """Claims are complete files linked into place: the claim name never exists empty."""
    run_dir = RunDirectory(tmp_path)
    seen = []
    real_link = os.link

    def link(src, dst, **kw):
        seen.append(Path(src).read_text())
        return real_link(src, dst, **kw)

    monkeypatch.setattr(os, "link", link)
    assert run_dir.claim(0)
    assert seen == [f"{HOST} {os.getpid()} {seen[0].split()[2]}\n"]


@pytest.mark.parametrize("err", [errno.EPERM, errno.ENOTSUP])
def test_claims_work_where_the_file_system_has_no_hard_links(tmp_path, monkeypatch, err):
    """gcsfuse, s3fs and other FUSE mounts refuse hard links: claiming used to fail the run."""

    def no_links(src, dst, **kw):
        raise OSError(err, os.strerror(err), str(src), None, str(dst))

    clean = quiet(ToyJob(), tmp_path / "clean")
    monkeypatch.setattr(os, "link", no_links)
    run_dir = RunDirectory(tmp_path / "claims")
    assert run_dir.claim(0) and run_dir.claim_path(0).read_text().split()[:2] == [HOST, str(os.getpid())]
    assert not RunDirectory(tmp_path / "claims").claim(0)  # held by this live process: not taken twice
    assert not list(run_dir.shards.glob("*.tmp-*"))
    assert quiet(ToyJob(), tmp_path / "run").samples == clean.samples


def test_the_record_is_read_and_started_under_the_directory_s_short_lock(tmp_path, monkeypatch):
    """Two cooperating workers with other settings starting at once both found no run.json and
    both ran; reading and starting the record now happens under the finalize lock."""
    import svdd.runs.generation

    held = []

    def read(out_dir, settings, log, **kw):
        fd = os.open(Path(out_dir) / FINALIZE_LOCK, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held.append(False)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except BlockingIOError:
            held.append(True)
        finally:
            os.close(fd)
        return read_record(out_dir, settings, log, **kw)

    monkeypatch.setattr(svdd.runs.generation, "read_record", read)
    generate(ToyJob(), RunSettings(**SETTINGS), tmp_path, progress=False, log=lambda m: None, cooperate=True)
    assert held == [True]


def test_a_cooperating_run_clears_the_claims_a_killed_worker_left_on_written_shards(tmp_path):
    out = tmp_path / "run"
    quiet(ToyJob(), out)
    claim = RunDirectory(out).claim_path(1)  # killed after writing shard 1, before removing its claim
    claim.write_text(f"{HOST} 999999999 0\n")
    generate(ToyJob(), RunSettings(**SETTINGS), out, progress=False, log=lambda m: None, cooperate=True)
    assert not claim.exists()


def test_a_lone_run_leaves_files_that_only_look_temporary_alone(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    mine = out / "notes.tmp-backup"  # a user's file: not a name svdd gives its temporary files
    mine.write_text("keep me")
    dead = out / f"run.json.tmp-{HOST}-999999999"
    dead.write_text("left by a killed run")
    quiet(ToyJob(), out)
    assert mine.read_text() == "keep me" and not dead.exists()


def test_a_claim_from_another_host_is_live_while_it_is_touched_and_taken_over_after(tmp_path, monkeypatch):
    """A cooperating worker on another host that died left a claim every survivor waited on forever."""
    import svdd.runs.rundir

    run_dir = RunDirectory(tmp_path)
    path = run_dir.claim_path(2)
    path.parent.mkdir(parents=True)
    path.write_text("another_host 4242 0\n")
    assert run_dir.claimed_by_live_worker(2) and not run_dir.claim(2)  # touched just now: alive
    old = path.stat().st_mtime - svdd.runs.rundir.CLAIM_TIMEOUT_S - 1
    os.utime(path, (old, old))
    assert not run_dir.claimed_by_live_worker(2) and run_dir.claim(2)  # silent too long: taken over


def test_a_worker_touches_its_claims_while_it_samples(tmp_path, monkeypatch):
    import svdd.runs.rundir

    monkeypatch.setattr(svdd.runs.rundir, "CLAIM_REFRESH_S", 0.0)
    touched = []
    real_utime = os.utime
    monkeypatch.setattr(
        os, "utime", lambda path, *a, **kw: (touched.append(Path(path).name), real_utime(path, *a, **kw))
    )
    generate(ToyJob(), RunSettings(**SETTINGS), tmp_path, progress=False, log=lambda m: None, cooperate=True)
    assert {f"shard-0000{k}.claim" for k in range(3)} <= set(touched)


def test_a_worker_says_which_claims_it_waits_for_and_takes_them_over_when_silent(tmp_path, monkeypatch):
    import svdd.runs.rundir

    clean = quiet(ToyJob(), tmp_path / "clean")
    monkeypatch.setattr(svdd.runs.rundir, "CLAIM_TIMEOUT_S", 1.0)
    out = tmp_path / "run"
    claim = RunDirectory(out).claim_path(1)
    claim.parent.mkdir(parents=True)
    claim.write_text("another_host 4242 0\n")  # a worker on another host, which then died
    messages: list[str] = []
    run = generate(
        ToyJob(), RunSettings(**SETTINGS), out, progress=False, log=messages.append, cooperate=True, poll_s=0.05
    )
    assert run.samples == clean.samples and not claim.exists()
    assert any(m.startswith("waiting for shard 1, which PID 4242 on another_host is sampling") for m in messages)


# -- the real domains' own options ---------------------------------------------------------------


def test_proteins_refuse_an_infinite_temperature_and_name_an_empty_pdb(tmp_path):
    from svdd.domains.proteins.backbone import read_backbone
    from svdd.domains.proteins.pretrained import load_pretrained

    with pytest.raises(ValueError, match="temperature must be a positive number; got inf"):
        load_pretrained("1ubi", temperature=float("inf"))  # used to sample at an infinite temperature
    empty = tmp_path / "empty.pdb"
    empty.write_text("")
    with pytest.raises(ValueError, match=f"{empty} is not a readable PDB file"):
        read_backbone(empty)  # was "Empty file." and nothing else
    garbled = tmp_path / "garbled.pdb"
    garbled.write_text("ATOM  this is not\nreally a pdb\n")
    with pytest.raises(ValueError, match=f"{garbled} is not a readable PDB file \\(IndexError"):
        read_backbone(garbled)  # was a traceback ending in Biopython's IndexError


def test_a_reward_argument_left_empty_is_refused(tmp_path):
    result = runner.invoke(app, ["generate", "dna", "--reward", "motif=", "-n", "2", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "reward 'motif=' has nothing after '='" in result.output  # was the default motif
    assert not (tmp_path / "o").exists()


def test_a_reward_that_calls_sys_exit_is_one_error_line(tmp_path):
    path = tmp_path / "exits.py"
    path.write_text("import sys\n\ndef score(objects):\n    sys.exit(4)\n")
    code, errors, output = cli("--out", str(tmp_path / "o"), reward=f"{path}:score")  # was exit 4, no message
    assert code == 0 and not errors and "Traceback" not in output, output
    rows = (tmp_path / "o" / "samples.csv").read_text().splitlines()
    assert len(rows) == 5 and all(row.split(",")[-1] == "" for row in rows[1:]), rows  # NaN per item, as for a raise
    with pytest.raises(RewardError, match="raised SystemExit: 4"):
        evaluate(lambda objects: sys.exit(4), ["a"])  # outside a Reward(on_error=...) wrapper: one clear error
