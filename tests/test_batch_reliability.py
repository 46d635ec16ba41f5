"""`svdd generate` and `svdd.runs` under bad inputs, damaged run directories and failing user code.

Each test is a case that an adversarial pass over the batch side found handled badly (a
traceback, an unclear message, a silent wrong result, a hang): one clear `error:` line and
nothing written, or the damaged file named and redone.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from svdd.cli import app
from svdd.runs import RunSettings, generate

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


@pytest.mark.parametrize("device", ["meta", "mps", "xla"])
def test_a_device_this_machine_lacks_is_refused(device):
    from svdd.jobs import resolve_device

    with pytest.raises(ValueError, match=f"--device '{device}' is not available on this machine"):
        resolve_device(device)  # used to pass, then fail inside the model with a traceback


def test_a_garbled_local_rank_is_named(monkeypatch):
    from svdd.jobs import resolve_device

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
    from svdd.executors import check_reachable

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionError, match=f"cannot reach the Ray cluster at '127.0.0.1:{port}'"):
        check_reachable(f"127.0.0.1:{port}")  # ray.init itself retried for minutes
    with pytest.raises(ValueError, match="--ray-address must be host:port"):
        check_reachable("bogus")


def test_settings_bound_num_samples():
    with pytest.raises(ValueError, match="num_samples must be at most 2147483647"):
        RunSettings(num_samples=2**31)
    assert RunSettings(num_samples=2**31 - 1).num_shards == 33554432


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
